"""``doctor``, ``backup``, ``restore`` and ``hold``: running an installation."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check a running installation (database, token, readers, printers, disk, clock, "
        "audit log); exit 1 on any failure",
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "backup",
        help="write a consistent, encrypted backup of the database and the key folder",
        description="A consistent snapshot (SQLite online backup API or pg_dump) sealed with "
        "AES-256-GCM under the backup key (default var/keys/backup.key, created on first use: "
        "keep a copy of it off the machine, a backup cannot be opened without it).",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="the backup file to write")
    where.add_argument(
        "--out-dir", type=Path, help="write printsrv-YYYYmmddTHHMMSSZ.ktpbak in this folder"
    )
    p.add_argument("--keep", type=int, default=0, help="with --out-dir: keep the N newest only")
    p.add_argument("--key-file", type=Path, help="the backup key (64 hex digits)")
    p.add_argument(
        "--with-token",
        action="store_true",
        help="include the SoftHSM token files (development tokens; a hardware HSM has its own "
        "backup procedure)",
    )
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "restore",
        help="restore a backup into an empty instance; stations stay held until a supervisor "
        "acknowledges ('hold acknowledge')",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--key-file", type=Path, required=True, help="the backup key")
    p.add_argument(
        "--anchor",
        type=Path,
        help="what the auditors hold: an audit export's checkpoints.jsonl, or a newer "
        "backup's manifest (JSON with 'heads'); the restore says which audit chains are "
        "behind it",
    )
    p.add_argument("--actor", default="cli")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("hold", help="print holds: list them, or acknowledge them (supervisor)")
    hold_sub = p.add_subparsers(dest="hold_command", required=True)
    h = hold_sub.add_parser("list", help="open holds")
    h.set_defaults(func=cmd_hold_list)
    h = hold_sub.add_parser("acknowledge", help="acknowledge every open hold (audited)")
    h.add_argument("--by", required=True, help="the supervisor who acknowledges")
    h.set_defaults(func=cmd_hold_acknowledge)


def cmd_doctor(args: argparse.Namespace) -> int:
    from printsrv.doctor import run_checks

    failed = 0
    for check in run_checks(load_settings()):
        print(check.line(), flush=True)
        failed += not check.ok
    return 1 if failed else 0


def cmd_backup(args: argparse.Namespace) -> int:
    from printsrv.backup import create_backup, default_key_path, key_id, load_key, rotate

    settings = load_settings()
    key_path = args.key_file or default_key_path(settings)
    created_key = not key_path.exists()
    key = load_key(key_path, create=args.key_file is None)
    if created_key:
        print(
            f"created backup key {key_path} (id {key_id(key)}): keep a copy off this machine",
            file=sys.stderr,
        )
    out = args.out
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.out_dir / f"printsrv-{stamp}.ktpbak"
    summary = create_backup(settings, out, key, with_token=args.with_token)
    events = sum(h["seq"] for h in summary.manifest["heads"].values())
    print(
        f"backup {summary.path}: {summary.bytes} bytes, revision {summary.manifest['revision']}, "
        f"{events} audit events, key {key_id(key)}"
    )
    if args.out_dir is not None and args.keep:
        for gone in rotate(args.out_dir, args.keep):
            print(f"removed old backup {gone}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from printsrv.backup import BackupError, load_key, restore_backup

    settings = load_settings()
    anchor, anchor_checkpoints = None, None
    if args.anchor and args.anchor.suffix == ".jsonl":
        anchor_checkpoints = args.anchor  # read once the restored keys are in place
    elif args.anchor:
        try:
            anchor = json.loads(args.anchor.read_text())
        except (OSError, ValueError) as exc:
            raise BackupError(f"anchor {args.anchor}: {exc}") from exc
    summary = restore_backup(
        settings, args.file, load_key(args.key_file), anchor=anchor,
        anchor_checkpoints=anchor_checkpoints, actor=args.actor,
    )
    print(f"restored the backup of {summary.manifest.get('created_utc')} "
          f"(revision {summary.manifest.get('revision')})")
    print(f"HELD: {summary.hold_reason}")
    print("no station prints until a supervisor runs: run.py hold acknowledge --by NAME")
    return 0


def cmd_hold_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from printsrv.db import unit_of_work
    from printsrv.models import PrintHold

    with unit_of_work(load_settings()) as session:
        holds = session.scalars(
            select(PrintHold).where(PrintHold.acknowledged_at.is_(None)).order_by(PrintHold.id)
        ).all()
        for hold in holds:
            print(f"{hold.id}  {hold.created_at:%Y-%m-%d %H:%M} UTC  {hold.reason}")
    if not holds:
        print("no open holds")
    return 0


def cmd_hold_acknowledge(args: argparse.Namespace) -> int:
    from printsrv.backup import acknowledge_holds
    from printsrv.db import unit_of_work

    settings = load_settings()
    with unit_of_work(settings) as session:
        count = acknowledge_holds(session, by=args.by, settings=settings)
    print(f"{count} hold(s) acknowledged by {args.by}")
    return 0
