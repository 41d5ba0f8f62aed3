"""``python -m chip.simulator``: run the reference card against vpcd (also ``run.py chip
simulate``)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from chip.simulator.card import CardConfig, Faults, SimulatedCard, default_uid
from chip.simulator.vpcd import VpcdLink
from chip.softkeys import load_scp03_master


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's options (shared with ``run.py chip simulate``)."""
    parser.add_argument("--port", type=int, default=35963, help="vpcd port (35963, 35964)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state", type=Path, help="keep the card's memory in this JSON file")
    parser.add_argument("--uid", help="chip UID in hex (default: derived from the port)")
    parser.add_argument("--random-uid", action="store_true",
                        help="a new random 4-byte UID at every power-up (08 xx xx xx), as "
                        "real chips do; keys are diversified from the CPLC, never the UID")
    parser.add_argument("--capacity", type=int, default=32768, help="card memory in bytes")
    parser.add_argument("--max-apdu", type=int, default=8192,
                        help="largest command/response data field the card accepts")
    parser.add_argument("--short-only", action="store_true",
                        help="no extended length (ATR says so; 255-byte APDUs)")
    parser.add_argument("--scp03-master-file", type=Path,
                        help="demo SCP03 master key (hex); default var/keys/scp03-demo-master.hex"
                             " if present, else chip.softkeys.DEMO_SCP03_MASTER_HEX")
    parser.add_argument("--eeprom-page-ms", type=float, default=0.0,
                        help="EEPROM model: milliseconds per 64-byte page written (0 = off)")
    parser.add_argument("--tear-after", type=int,
                        help="fault: tear the link after executing the Nth APDU")
    parser.add_argument("--reinsert-after", type=float, default=1.0,
                        help="seconds until a torn card returns (>= 0.6 so pcscd sees it gone)")
    parser.add_argument("--refuse-writes", action="store_true",
                        help="fault: UPDATE BINARY fails with 6581")
    parser.add_argument("--overstate-free", type=int, default=0,
                        help="fault: claim this many bytes more free memory (runs out mid-write)")
    parser.add_argument("--foreign", action="store_true",
                        help="be a foreign card without the e-KTP application (wrong card)")
    parser.add_argument("-v", "--verbose", action="store_true")


def build_card(args: argparse.Namespace) -> SimulatedCard:
    config = CardConfig(
        uid=bytes.fromhex(args.uid) if args.uid else default_uid(f"vpcd-{args.port}"),
        scp03_master=load_scp03_master(args.scp03_master_file),
        capacity=args.capacity,
        max_command_data=255 if args.short_only else args.max_apdu,
        max_response_data=256 if args.short_only else args.max_apdu,
        extended_length=not args.short_only,
        profile="foreign" if args.foreign else "ktp",
        eeprom_page_seconds=args.eeprom_page_ms / 1000.0,
        state_file=args.state,
        random_uid=args.random_uid,
    )
    faults = Faults(tear_after=args.tear_after, refuse_writes=args.refuse_writes,
                    overstate_free=args.overstate_free)
    return SimulatedCard(config, faults)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="simulator[%(process)d] %(message)s")
    card = build_card(args)
    link = VpcdLink(card, args.port, args.host, args.reinsert_after)

    def _stop(signum: int, frame: FrameType | None) -> None:
        link.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"simulator: card UID {card.config.uid.hex().upper()} on vpcd port {args.port}",
          flush=True)
    link.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chip.simulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
