"""Chip personalization benchmark: ``python bench/chip/run.py [--cards N] [--no-realstack]``.

Per card: APDUs, bytes on the wire versus payload bytes (excluding the fixed handshake: card
inspection and SCP03 opening), host-side time (everything but the time spent inside
``transmit``, i.e. without the card and its EEPROM model), and total time. Modes:

* ``memory``: the reference card in-process (no PC/SC);
* ``pcscd``: pyscard → pcscd → vpcd → simulator process (the real stack);
* ``pcscd+full``: same, every file read back under secure messaging: the standard check and
  the default (card profiles without HASH FILES); the other modes use the simulator's
  MAC-protected hash (profile ``ktp-simulator``);
* ``pcscd+eeprom``: same as ``pcscd`` with the EEPROM write-time model (1 ms per 64-byte page);
* ``pcscd+short``: a card without extended length (255-byte APDUs).

Goals: wire/payload ≤ 1.10 (plus the fixed handshake), host-side time ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from chip.personalization import (
    PersonalizationKeys,
    PersonalizationOptions,
    PersonalizationResult,
    ReadBack,
    personalize,
    personalize_reader,
)
from chip.samples import sample_holder
from chip.simulator.card import CardConfig, SimulatedCard, SimulatedChannel, default_uid
from chip.softkeys import (
    DEMO_BIOMETRIC_MASTER_HEX,
    DEMO_SCP03_MASTER_HEX,
    SoftKeyDiversifier,
    make_demo_cv_pki,
    make_demo_pki,
)


def _timed(run: Callable[[], PersonalizationResult]) -> PersonalizationResult:
    """Run one card and add the host process's CPU time (``host_cpu``) to its phases."""
    cpu0 = time.process_time()
    result = run()
    result.phases["host_cpu"] = time.process_time() - cpu0
    return result


def _row(mode: str, results: list[PersonalizationResult]) -> list[str]:
    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    wire = [r.bytes_sent + r.bytes_received for r in results]
    ratio = [(w - r.handshake_bytes) / r.payload_bytes for w, r in zip(wire, results, strict=True)]
    host = [(r.seconds - r.phases["wire"]) * 1000 for r in results]
    cpu = [r.phases["host_cpu"] * 1000 for r in results]
    total = [r.seconds * 1000 for r in results]
    return [
        mode, str(len(results)), f"{med([r.apdus for r in results]):.0f}",
        f"{med([r.payload_bytes for r in results]):.0f}", f"{med(wire):.0f}",
        f"{med([r.handshake_bytes for r in results]):.0f}", f"{med(ratio):.3f}",
        f"{med(host):.1f}", f"{max(host):.1f}", f"{med(cpu):.1f}", f"{med(total):.1f}",
        f"{max(total):.1f}",
    ]


HEADER = ["mode", "cards", "APDUs", "payload B", "wire B", "handshake B", "wire/payload",
          "host ms (med)", "host ms (max)", "host CPU ms", "total ms (med)", "total ms (max)"]


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    line = "  ".join(h.rjust(w) for h, w in zip(HEADER, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10)
    parser.add_argument("--no-realstack", action="store_true")
    args = parser.parse_args()

    pki = make_demo_pki()
    scp = SoftKeyDiversifier.from_hex(DEMO_SCP03_MASTER_HEX)
    # as the station does: AA and CA keys made on the card, the EAC trust point installed
    keys = PersonalizationKeys(pki.signer, scp,
                               SoftKeyDiversifier.from_hex(DEMO_BIOMETRIC_MASTER_HEX),
                               cvca_certificate=make_demo_cv_pki().cvca_certificate)
    holder = sample_holder()
    rows = []

    results = []
    hashed = PersonalizationOptions(readback=ReadBack.HASH)  # profile ktp-simulator
    for i in range(args.cards + 1):
        card = SimulatedCard(CardConfig(uid=default_uid(f"bench-{i}"), scp03_master=scp))
        r = _timed(partial(personalize, SimulatedChannel(card), holder, keys, hashed))
        if i:  # the first card warms up imports and caches
            results.append(r)
    rows.append(_row("memory", results))

    if not args.no_realstack:
        from printsrv.devstack.pcsc import PcscStack

        modes: list[tuple[str, list[str], PersonalizationOptions]] = [
            ("pcscd", [], hashed),
            ("pcscd+full", [], PersonalizationOptions(readback=ReadBack.FULL)),
            ("pcscd+eeprom", ["--eeprom-page-ms", "1"], hashed),
            ("pcscd+short", ["--short-only"], hashed),
        ]
        with (tempfile.TemporaryDirectory(prefix="bench-chip-") as logs,  # removed after
              PcscStack(sim_args=[[]], log_dir=Path(logs)) as stack):
            reader = stack.reader_name(0)
            for mode, sim_args, options in modes:
                run = partial(personalize_reader, reader, holder, keys, options)
                results = []
                for _ in range(args.cards):
                    stack.restart_simulator(0, sim_args)
                    results.append(_timed(run))
                rows.append(_row(mode, results))
    _print_table(rows)
    print("\nhost ms = wall time minus time inside transmit (card, pcscd, vpcd, EEPROM model);"
          "\nhost CPU ms = CPU time of this process per card (in 'memory' mode it includes the"
          " in-process card);\nwire/payload excludes the fixed handshake (inspection + SCP03"
          " opening).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
