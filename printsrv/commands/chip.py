"""``chip simulate``, ``chip personalize`` and ``chip verify``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printsrv.config import load_settings
from printsrv.errors import PrintSrvError

if TYPE_CHECKING:
    pass


def register(sub: Any) -> None:
    p = sub.add_parser("chip", help="personalize and verify e-KTP chips (PC/SC)")
    chip_sub = p.add_subparsers(dest="chip_command", required=True)

    from chip.simulator.__main__ import add_arguments

    s = chip_sub.add_parser("simulate", help="run the reference card on a vpcd port")
    add_arguments(s)
    s.set_defaults(func=cmd_simulate)

    s = chip_sub.add_parser("personalize", help="write a queued record to the card and lock it")
    s.add_argument("--reader", required=True, help="PC/SC reader name, e.g. 'Virtual PCD 00 00'")
    s.add_argument("--request-id", required=True)
    s.add_argument("--card-profile", default="generic-globalplatform",
                   help="the chip OS profile (chip/profiles/NAME.toml; default "
                   "generic-globalplatform: standard commands only)")
    s.add_argument("--readback", choices=["hash", "full"],
                   help="check writes by reading everything back under secure messaging "
                   "(the default) or by the card-side hash (profiles that declare it)")
    s.add_argument("--max-face-bytes", type=int, default=12_000)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_personalize)

    s = chip_sub.add_parser("verify", help="read a personalized card back and check it")
    s.add_argument("--reader", required=True)
    s.add_argument("--csca", type=Path, help="CSCA certificate (PEM/DER); default: the demo CSCA")
    s.add_argument("--crl", type=Path, help="the CSCA's CRL (PEM/DER); default: keys/csca.crl "
                   "with the demo CSCA")
    s.add_argument("--at", type=_moment, help="verify as of this moment (ISO 8601, e.g. "
                   "2045-06-01): the verifier's clock; signatures are checked at signing time")
    s.add_argument("--no-biometrics", action="store_true",
                   help="do not use the token's biometric master key")
    s.add_argument("--dump", type=Path, help="write every file read (and the CSCA) here")
    access = s.add_mutually_exclusive_group()
    access.add_argument("--request-id",
                        help="open BAC with the MRZ of this record (the card's own record)")
    access.add_argument("--mrz", help="open BAC with this MRZ (TD1 90 or TD3 88 characters)")
    access.add_argument("--can", help="open PACE with this card access number (6 digits)")
    s.add_argument("--no-access-control", action="store_true",
                   help="read without BAC (a locked card then answers 6982)")
    s.add_argument("--allow-no-aa", action="store_true",
                   help="accept a card without Active Authentication (DG15)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)


def cmd_simulate(args: argparse.Namespace) -> int:
    from chip.simulator.__main__ import run

    if args.scp03_master_file is None:
        candidate = load_settings().keys_dir / "scp03-demo-master.hex"
        if candidate.exists():
            args.scp03_master_file = candidate
    return run(args)


def _emit(payload: dict[str, object], as_json: bool, lines: list[str], stream: Any) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, default=str), file=stream)
    else:
        for line in lines:
            print(line, file=stream)


def cmd_personalize(args: argparse.Namespace) -> int:
    from chip.errors import ChipError
    from chip.personalization import PersonalizationKeys, personalize_reader
    from chip.profiles import ProfileError, get_profile
    from printsrv.keys import KeyStore
    from printsrv.products import holder_data
    from printsrv.records import load_card_input

    settings = load_settings()
    try:
        options = get_profile(args.card_profile).options(readback=args.readback,
                                                          max_face_bytes=args.max_face_bytes)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    card_input = load_card_input(settings, args.request_id, actor="cli", purpose="chip")
    holder = holder_data(card_input)
    with KeyStore.open(settings) as store:
        keys = PersonalizationKeys(store.document_signer(), store.scp03_master(),
                                   store.biometric_master(),
                                   cvca_certificate=store.cvca_certificate())
        try:
            result = personalize_reader(args.reader, holder, keys, options,
                                        can=card_input.card_access_number)
        except ChipError as exc:
            payload = {"ok": False, "error": type(exc).__name__, "message": str(exc),
                       "card_state": exc.card_state.value, "retryable": exc.retryable}
            _emit(payload, args.json,
                  [f"error: {exc}", f"card state: {exc.card_state.value}"
                   f" ({'retry allowed' if exc.retryable else 'do not retry on this card'})"],
                  sys.stdout if args.json else sys.stderr)
            return 1
    d = result.as_dict()
    _emit({"ok": True, **d}, args.json, [
        f"personalized and locked: chip UID {result.chip_uid} on {result.reader}",
        f"ATR {result.atr}",
        f"{result.apdus} APDUs, {result.bytes_sent} bytes sent, {result.bytes_received} received,"
        f" payload {result.payload_bytes} bytes, {result.seconds * 1000:.1f} ms",
        "files: " + ", ".join(f"{k} {v}" for k, v in result.files.items()),
    ], sys.stdout)
    return 0


def _moment(text: str) -> Any:
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def cmd_verify(args: argparse.Namespace) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from chip.api import KeyDiversifier
    from chip.bac import BacKey
    from chip.errors import ChipError
    from chip.pace import CanKey
    from chip.verification import sod_content_info, verify_reader

    settings = load_settings()
    master: KeyDiversifier | None = None
    csca_der: bytes | None = None
    access: BacKey | CanKey | None = None
    try:
        if args.can:
            if not (len(args.can) == 6 and args.can.isdigit()):
                print("error: --can: the card access number is 6 digits", file=sys.stderr)
                return 2
            access = CanKey(args.can)
        elif args.mrz:
            access = BacKey.from_mrz(args.mrz)
        elif args.request_id:
            from printsrv.products import record_bac_key

            access = record_bac_key(settings, args.request_id)
        elif not args.no_access_control:
            print("error: give --can (PACE), --request-id or --mrz (BAC),"
                  " or --no-access-control",
                  file=sys.stderr)
            return 2
    except (ChipError, PrintSrvError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.csca:
        raw = args.csca.read_bytes()
        cert = (x509.load_pem_x509_certificate(raw) if raw.startswith(b"-----")
                else x509.load_der_x509_certificate(raw))
        csca_der = cert.public_bytes(serialization.Encoding.DER)

    crl_der = args.crl.read_bytes() if args.crl else None

    def run(master: KeyDiversifier | None, csca: bytes | None,
            crl: bytes | None = crl_der, inspection: Any = None) -> int:
        try:
            report = verify_reader(args.reader, csca, master, crl_der=crl, at=args.at,
                                   access=access,
                                   require_active_authentication=not args.allow_no_aa,
                                   inspection=inspection)
        except ChipError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            for name, raw in report.raw_files.items():
                (args.dump / f"{name}.der").write_bytes(raw)
            if "EF.SOD" in report.raw_files:  # the bare ContentInfo, for openssl cms -verify
                (args.dump / "EF.SOD.cms").write_bytes(
                    sod_content_info(report.raw_files["EF.SOD"]))
            if csca is not None:
                (args.dump / "CSCA.der").write_bytes(csca)
                cert = x509.load_der_x509_certificate(csca)
                (args.dump / "CSCA.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        d = report.as_dict()
        pa: dict[str, Any] = d["passive_authentication"]  # type: ignore[assignment]
        bio: dict[str, Any] = d["biometrics"]  # type: ignore[assignment]
        _emit(d, args.json, [
            f"{'OK' if report.ok else 'FAILED'}: chip UID {report.chip_uid} on {report.reader}",
            f"ATR {report.atr}; locked: {report.locked}; access control:"
            f" {report.access_control}; active authentication: {report.active_authentication}",
            f"chip authentication: {report.chip_authentication}; terminal authentication:"
            f" {report.terminal_authentication}"
            + ("; DG3 withheld by the chip" if report.dg3_withheld else ""),
            f"document number {report.document_number}",
            f"passive authentication: signature {pa['signature_valid']}, chain"
            f" {pa['chain_valid']} (signed {pa['signing_time'] or 'at an unknown time'},"
            f" revocation checked: {pa['revocation_checked']}), hashes {pa['dg_hashes_valid']}",
            f"biometrics: checked {bio['checked']}, ok {bio['ok']},"
            f" fingers {bio['fingers_decrypted']}, face {bio['face_bytes']} bytes",
            *[f"problem: {p}" for p in report.problems],
            *[f"note: {n}" for n in report.notes],
        ], sys.stdout)
        return 0 if report.ok else 1

    if args.no_biometrics and csca_der is not None:
        return run(None, csca_der)
    from printsrv.keys import KeyStore

    with KeyStore.open(settings) as store:
        if not args.no_biometrics:
            master = store.biometric_master()
        # the station's IS key and certificates: Terminal Authentication opens DG3
        inspection = None if args.no_biometrics else store.inspection_system()
        if csca_der is None:  # the demo CSCA, and its CRL unless one was given
            return run(master, store.csca_certificate_der(),
                       crl_der if args.crl else store.csca_crl_der(), inspection)
        return run(master, csca_der, inspection=inspection)
