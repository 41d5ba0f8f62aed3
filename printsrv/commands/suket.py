"""``suket``: Surat Keterangan pengganti KTP-el — issue one, check one, list them."""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "suket",
        help="Surat Keterangan pengganti KTP-el: issue (no blanks), verify its QR code, list",
        description="When an office has no blanks, a supervisor issues a Suket for a queued "
        "record: an A4 PDF with the data of the card, the photo, six months' validity and a QR "
        "code signed by the server's key. It is revoked when the real card is issued.",
    )
    suket_sub = p.add_subparsers(dest="suket_command", required=True)
    i = suket_sub.add_parser("issue", help="issue a Suket for a queued record (supervisor)")
    i.add_argument("--request-id", required=True)
    i.add_argument("--by", required=True, help="the supervisor who issues it")
    i.add_argument("--head-name", required=True, help="the head of office who signs it")
    i.add_argument("--head-nip", required=True)
    i.add_argument("--head-title", default="Kepala Dinas Kependudukan dan Pencatatan Sipil")
    i.add_argument("--out", type=Path, help="the PDF (default suket-NUMBER.pdf here)")
    i.set_defaults(func=cmd_issue)
    v = suket_sub.add_parser("verify", help="check a Suket's QR code (text, or read from a PDF)")
    where = v.add_mutually_exclusive_group(required=True)
    where.add_argument("--text", help="the QR code's text")
    where.add_argument("--pdf", type=Path, help="a Suket PDF (needs pdftoppm and zbarimg)")
    v.add_argument("--offline", action="store_true",
                   help="the public key only: signature and validity, not revocation")  # fmt: skip
    v.set_defaults(func=cmd_verify)
    ls = suket_sub.add_parser("list", help="every Suket with its state")
    ls.set_defaults(func=cmd_list)


def qr_text_of_pdf(pdf: Path) -> str:
    """The QR code's text in a Suket PDF (rendered with pdftoppm, read with zbarimg)."""
    from printsrv.desk.suket import SuketError

    with tempfile.TemporaryDirectory(prefix="suket-") as tmp:
        subprocess.run(["pdftoppm", "-r", "200", "-png", "-f", "1", "-l", "1", str(pdf),
                        f"{tmp}/page"], check=True, capture_output=True)  # fmt: skip
        [page] = sorted(Path(tmp).glob("page*.png"))
        out = subprocess.run(["zbarimg", "--quiet", "--raw", str(page)], capture_output=True,
                             text=True, check=False)  # fmt: skip
        if out.returncode != 0 or not out.stdout.strip():
            raise SuketError(f"no QR code found in {pdf}")
        return out.stdout.strip().splitlines()[0]


def cmd_issue(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.desk import suket
    from printsrv.keys import KeyStore
    from printsrv.records import get_record

    settings = load_settings()
    with KeyStore.open(settings) as keys, unit_of_work(settings) as session:
        record = get_record(session, args.request_id)
        row = suket.issue(session, keys, record, by=args.by, head_name=args.head_name,
                          head_nip=args.head_nip, head_title=args.head_title)  # fmt: skip
        pdf = suket.suket_pdf(session, keys, row, actor=args.by)
        number = row.number
    out = args.out or Path(f"suket-{number.replace('/', '-')}.pdf")
    out.write_bytes(pdf)
    print(f"Suket {number} for {args.request_id}: {out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from datetime import date

    from printsrv.desk import suket

    settings = load_settings()
    text = args.text if args.text else qr_text_of_pdf(args.pdf)
    if args.offline:
        result = suket.check_offline(text, suket.load_public_key(settings), date.today())
    else:
        result = suket.check(settings, text)
    p = result.payload
    print(f"{result.reason.upper()}: {p.get('no', '?')} {p.get('nama', '')} "
          f"NIK {p.get('nik', '?')}, berlaku s.d. {p.get('berlaku', '?')}")  # fmt: skip
    return 0 if result.ok else 1


def cmd_list(_args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from printsrv.db import unit_of_work
    from printsrv.desk import suket
    from printsrv.desk.models import Suket
    from printsrv.terminal import table

    settings = load_settings()
    suket.revoke_issued(settings)
    with unit_of_work(settings) as session:
        rows = [
            {"number": s.number, "request": s.request_id, "issued": f"{s.issue_day:%d-%m-%Y}",
             "valid until": f"{s.valid_until:%d-%m-%Y}",
             "state": "revoked: " + (s.revoked_reason or "") if s.revoked_at else "valid"}
            for s in session.scalars(select(Suket).order_by(Suket.id))
        ]  # fmt: skip
    print(table(rows))
    return 0

