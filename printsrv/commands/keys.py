"""``keys rotate-ds`` and ``keys crl``: the document-signer life cycle and the CSCA's CRL;
``keys eac-init`` / ``keys eac-rotate``: the EAC CV PKI (CVCA → DV → inspection system)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="document-signer rotation, the CSCA's CRL, the EAC CV PKI")
    keys_sub = p.add_subparsers(dest="keys_command", required=True)

    s = keys_sub.add_parser("rotate-ds", help="retire the document-signer key and issue a new "
                            "one (a short private-key usage period)")
    s.add_argument("--usage-days", type=int, default=90,
                   help="private-key usage period of the new key in days (default 90)")
    s.set_defaults(func=cmd_rotate_ds)

    s = keys_sub.add_parser("crl", help="issue the CSCA's next CRL (keys/csca.crl), "
                            "optionally revoking document signers first")
    s.add_argument("--revoke", action="append", default=[], metavar="SERIAL|CERT",
                   help="a document signer to revoke: serial number in hex, or its certificate")
    s.add_argument("--reason", default="keyCompromise",
                   choices=["keyCompromise", "superseded", "cessationOfOperation",
                            "affiliationChanged", "unspecified"])
    s.add_argument("--days", type=int, default=90, help="until the next update (default 90)")
    s.set_defaults(func=cmd_crl)

    s = keys_sub.add_parser("import-perso", help="key ceremony: assemble the SCP03 master "
                            "from key components (XOR) and import it into the token")
    s.add_argument("--components", type=int, default=3, choices=[2, 3, 4, 5],
                   help="number of components (default 3), each 32 hex digits, optionally "
                   "followed by ':KCV' to check it as entered")
    s.add_argument("--replace", action="store_true", help="replace an existing scp03-master")
    s.set_defaults(func=cmd_import_perso)

    s = keys_sub.add_parser("eac-init", help="EAC: create the demo CVCA and DV and the "
                            "station's inspection-system key (token) where missing; show them")
    s.set_defaults(func=cmd_eac_init)
    s = keys_sub.add_parser("eac-rotate", help="EAC: a new IS key and certificate; 'dv' also "
                            "a new DV, 'cvca' also a new CVCA with a link certificate")
    s.add_argument("level", choices=["is", "dv", "cvca"])
    s.add_argument("--days", type=int, help="validity of the new top certificate in days "
                   "(defaults: IS 30, DV 90, CVCA 1095)")
    s.set_defaults(func=cmd_eac_rotate)


def _serial(text: str) -> int:
    from cryptography import x509

    path = Path(text)
    if path.is_file():
        raw = path.read_bytes()
        cert = (x509.load_pem_x509_certificate(raw) if raw.startswith(b"-----")
                else x509.load_der_x509_certificate(raw))
        return cert.serial_number
    try:
        return int(text.replace(":", ""), 16)
    except ValueError:
        raise SystemExit(f"error: --revoke {text!r} is neither a hex serial nor a file") from None


def cmd_rotate_ds(args: argparse.Namespace) -> int:
    from chip.pki import private_key_usage_period
    from printsrv import audit
    from printsrv.audit import AuditTag
    from printsrv.db import unit_of_work
    from printsrv.keys import KeyStore

    settings = load_settings()
    with KeyStore.open(settings) as store:
        old, new = store.rotate_document_signer(args.usage_days)
    period = private_key_usage_period(new)
    until = period[1] if period else None
    details = {"old_serial": f"{old.serial_number:x}" if old else None,
               "new_serial": f"{new.serial_number:x}",
               "usage_until": until.isoformat() if until else None}
    with unit_of_work(settings) as session:
        audit.record(session, AuditTag.SYSTEM_KEYS_CREATE, actor="keys rotate-ds",
                     details=details)
    print(f"document signer {details['new_serial']} signs until {details['usage_until']}"
          + (f"; {details['old_serial']} retired" if old else ""))
    return 0


def cmd_crl(args: argparse.Namespace) -> int:
    from cryptography import x509

    from printsrv import audit
    from printsrv.audit import AuditTag
    from printsrv.db import unit_of_work
    from printsrv.errors import KeyStoreError
    from printsrv.keys import issue_crl, revoke_document_signer

    settings = load_settings()
    reason = x509.ReasonFlags(args.reason)
    revoked = []
    try:
        for item in args.revoke:
            serial = _serial(item)
            if revoke_document_signer(settings, serial, reason):
                revoked.append(f"{serial:x}")
        crl = issue_crl(settings, args.days)
    except KeyStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    with unit_of_work(settings) as session:
        audit.record(session, AuditTag.SYSTEM_KEYS_CREATE, actor="keys crl",
                     details={"crl_number": number, "revoked": revoked,
                              "entries": len(list(crl))})
    print(f"CRL {number}: {len(list(crl))} revoked document signer(s), next update "
          f"{crl.next_update_utc:%Y-%m-%d}; {settings.keys_dir / 'csca.crl'}"
          + (f"; newly revoked {', '.join(revoked)}" if revoked else ""))
    return 0


def _read_component(i: int) -> str:
    import getpass

    prompt = f"component {i} (32 hex digits[:KCV]): "
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(f"error: component {i} missing on standard input")
    return line.strip()


def cmd_import_perso(args: argparse.Namespace) -> int:
    """Each custodian enters a component; its KCV is printed for them to compare with their
    sealed form; the master is the XOR of the components, its KCV printed last."""
    from chip.scp03 import key_check_value
    from printsrv import audit
    from printsrv.audit import AuditTag
    from printsrv.db import unit_of_work
    from printsrv.errors import KeyStoreError
    from printsrv.keys import SCP03_MASTER, KeyStore

    settings = load_settings()
    master = bytes(16)
    kcvs = []
    for i in range(1, args.components + 1):
        text, _, expected = _read_component(i).replace(" ", "").partition(":")
        try:
            component = bytes.fromhex(text)
        except ValueError:
            print(f"error: component {i} is not hex", file=sys.stderr)
            return 1
        if len(component) != 16:
            print(f"error: component {i} has {len(component)} bytes, expected 16",
                  file=sys.stderr)
            return 1
        kcv = key_check_value(component).hex().upper()
        if expected and expected.upper() != kcv:
            print(f"error: component {i} KCV is {kcv}, not {expected.upper()}: re-enter it",
                  file=sys.stderr)
            return 1
        print(f"component {i} KCV {kcv}")
        kcvs.append(kcv)
        master = bytes(a ^ b for a, b in zip(master, component, strict=True))
    kcv = key_check_value(master).hex().upper()
    try:
        with KeyStore.open(settings) as store:
            store.import_scp03_master(master, replace=args.replace)
    except KeyStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with unit_of_work(settings) as session:
        audit.record(session, AuditTag.SYSTEM_KEYS_CREATE, actor="keys import-perso",
                     details={"key": SCP03_MASTER, "component_kcvs": kcvs, "kcv": kcv,
                              "replaced": args.replace})
    print(f"{SCP03_MASTER} KCV {kcv} imported into the token")
    return 0


def _show_cv_chain(store: Any) -> None:
    from chip import cvc

    cvca = store.cvca_certificate()
    inspection = store.inspection_system()
    chain = ([cvc.parse_cv_certificate(cvca)] if cvca else []) + (
        inspection.chain if inspection else [])
    for cert in chain:
        print(f"{cert.role.name:12} CHR {cert.chr:16} CAR {cert.car:16} CHAT {cert.chat:02X}"
              f"  {cert.effective} .. {cert.expiration}")


def cmd_eac_init(args: argparse.Namespace) -> int:
    from printsrv.keys import KeyStore

    settings = load_settings()
    with KeyStore.open(settings) as store:
        created = store.create_missing_cv_pki()
        print("created: " + (", ".join(created) if created else "nothing (all present)"))
        _show_cv_chain(store)
    return 0


def cmd_eac_rotate(args: argparse.Namespace) -> int:
    from printsrv import audit
    from printsrv.audit import AuditTag
    from printsrv.db import unit_of_work
    from printsrv.keys import KeyStore, rotate_cv_authority

    settings = load_settings()
    with KeyStore.open(settings) as store:
        store.create_missing_cv_pki()
        made = rotate_cv_authority(store, args.level, args.days)
        _show_cv_chain(store)
    with unit_of_work(settings) as session:
        audit.record(session, AuditTag.SYSTEM_KEYS_CREATE, actor=f"keys eac-rotate {args.level}",
                     details={"new": made})
    print("new: " + ", ".join(made))
    return 0
