"""``ikd``: digital KTP activations — import the daily CSV, the month beside the blanks."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "ikd",
        help="IKD (digital KTP) activations: import the daily CSV, the month beside the blanks",
    )
    ikd_sub = p.add_subparsers(dest="ikd_command", required=True)
    i = ikd_sub.add_parser("import", help="import a CSV: date,office_code,activations")
    i.add_argument("file", type=Path)
    i.add_argument("--by", default="cli", help="who imports it (audited)")
    i.set_defaults(func=cmd_import)
    r = ikd_sub.add_parser("report", help="a month per office: activations, blanks, share")
    r.add_argument("--month", required=True, help="YYYY-MM (the office's local month)")
    r.add_argument("--office", help="an office or regency code (default every office)")
    r.add_argument("--format", choices=("table", "csv"), default="table")
    r.set_defaults(func=cmd_report)


def cmd_import(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.desk import ikd
    from printsrv.errors import IntakeError

    settings = load_settings()
    try:
        with unit_of_work(settings) as session:
            count = ikd.import_file(session, args.file, actor=args.by)
    except IntakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{count} lines imported from {args.file}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sqlalchemy import or_, select

    from printsrv.db import unit_of_work
    from printsrv.desk import ikd
    from printsrv.models import Office
    from printsrv.terminal import table

    settings = load_settings()
    with unit_of_work(settings) as session:
        stmt = select(Office.id)
        if args.office:
            stmt = stmt.where(or_(Office.code == args.office,
                                  Office.code.startswith(args.office + ".")))  # fmt: skip
        months = ikd.month_summary(session, list(session.scalars(stmt)), args.month,
                                   target_percent=settings.ikd_target_percent)  # fmt: skip
    rows = [
        {"office": m.office_code, "name": m.office_name, "IKD activations": m.activations,
         "blanks received": m.blanks_received, "blanks issued": m.blanks_issued,
         "share": f"{m.share:.0%}" if m.share is not None else "—",
         f"target {settings.ikd_target_percent}%": "BELOW" if m.below_target else "ok"}
        for m in months
    ]  # fmt: skip
    if args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["office"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(table(rows))
    return 0
