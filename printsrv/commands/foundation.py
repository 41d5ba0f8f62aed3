"""``init``, ``demo-data``, ``import`` and ``audit verify``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create or upgrade the database; create development keys")
    p.add_argument("--dev", action="store_true",
                   help="development: import the published SCP03 development key (the "
                   "simulator's); without it the production key comes by 'keys import-perso'")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo-data", help="write a signed batch of synthetic residents")
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--out", required=True, type=Path, help="directory, or a path ending in .zip")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-id")
    p.add_argument("--office", action="append", help="office code PP.KK.CC (repeatable)")
    p.add_argument("--held", type=int, default=0,
                   help="records whose NIK does not match the birth date (held for review)")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("import", help="import a signed batch (directory or .zip)")
    p.add_argument("path", type=Path)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--accept-valid",
        action="store_true",
        help="import the valid records and write the rejected ones to a report",
    )
    p.add_argument("--actor", default="cli", help="who imports (recorded in the audit log)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("audit", help="the audit log")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    v = audit_sub.add_parser("verify", help="verify the hash chains of the audit log against "
                             "every signed checkpoint (exit 1 on any problem)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_audit_verify)
    v = audit_sub.add_parser("checkpoint", help="sign every chain's head now (in the database "
                             "and appended to audit/checkpoints.jsonl)")
    v.add_argument("--reason", default="manual")
    v.add_argument("--if-due", action="store_true",
                   help="only when 1000 events or 10 minutes passed since the last (a timer)")
    v.set_defaults(func=cmd_audit_checkpoint)
    v = audit_sub.add_parser("export", help="write the events, the checkpoints and the public "
                             "key for an auditor to verify offline "
                             "(scripts/verify_audit_export.py)")
    v.add_argument("--out", type=Path, required=True, help="a new folder")
    v.set_defaults(func=cmd_audit_export)


def cmd_init(args: argparse.Namespace) -> int:
    from printsrv import audit, schema
    from printsrv.audit import AuditTag
    from printsrv.db import unit_of_work
    from printsrv.keys import create_demo_registry_pki, init_token

    settings = load_settings()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    before = schema.current_revision(settings)
    revision = schema.upgrade(settings)
    from printsrv.errors import KeyStoreError

    dev = bool(getattr(args, "dev", False))
    try:
        created = init_token(settings, dev=dev)
    except KeyStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not settings.registry_ca:
        created += create_demo_registry_pki(settings.keys_dir)
    with unit_of_work(settings) as session:
        if before != revision:
            audit.record(
                session,
                AuditTag.SYSTEM_DATABASE_UPGRADE,
                actor="init",
                details={"from": before, "to": revision},
            )
        if created:
            audit.record(
                session, AuditTag.SYSTEM_KEYS_CREATE, actor="init", details={"created": created}
            )
    from printsrv.instance import secure_instance
    from printsrv.web.auth_service import TotpSecrets

    with unit_of_work(settings) as session:
        sealed = TotpSecrets(settings).seal_clear_secrets(session)
    tightened = secure_instance(settings)
    print(f"database {settings.sqlalchemy_url.split('@')[-1]} at revision {revision}")
    for item in created:
        print(f"created {item}")
    if not dev:
        from printsrv.keys import KeyStore

        with KeyStore.open(settings) as store:
            if "scp03-master" in store.missing_keys():
                print("no personalization key yet: import it with 'python run.py keys "
                      "import-perso' (or use 'init --dev' for development)")
    if sealed:
        print(f"sealed {sealed} TOTP secret(s) stored in clear under the token's key")
    if tightened:
        shown = ", ".join(tightened[:8]) + (" …" if len(tightened) > 8 else "")
        print(f"made private (0700 folders, 0600 files) {len(tightened)} path(s) under "
              f"{settings.instance_dir}: {shown}")
    return 0


def _progress_bar(total: int, desc: str, enabled: bool, unit: str = "rec") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from printsrv.intake.demo import write_demo_batch

    settings = load_settings()
    with _progress_bar(args.count, "generating", sys.stderr.isatty()) as bar:
        out = write_demo_batch(
            settings,
            args.count,
            args.out,
            seed=args.seed,
            batch_id=args.batch_id,
            office_codes=args.office,
            progress=bar.update,
            held=args.held,
        )
    print(f"wrote {args.count} records to {out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from printsrv.intake.pipeline import import_batch

    settings = load_settings()
    with _progress_bar(0, "importing", sys.stderr.isatty() and not args.json) as bar:
        result = import_batch(
            settings,
            args.path,
            accept_valid=args.accept_valid,
            actor=args.actor,
            progress=bar.update,
            on_total=lambda n: setattr(bar, "total", n),
        )
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
    else:
        for problem in result.problems:
            print(problem, file=sys.stderr)
        if result.accepted:
            print(
                f"batch {result.batch_id}: imported {result.imported} "
                f"({result.held} held for review), {result.already_imported} already imported, "
                f"{result.rejected} rejected"
            )
            for office in result.offices:
                print(f"  office {office['code']} {office['name']}: {office['records']} records")
            for hold in result.holds:
                print(f"  held {hold['request_id']}: {hold['reason']}")
            if result.rejection_report:
                print(f"rejected records written to {result.rejection_report}")
        else:
            print(
                f"batch {result.batch_id or args.path} REJECTED: "
                f"{len(result.problems)} problem(s); nothing imported",
                file=sys.stderr,
            )
    return 0 if result.accepted else 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from printsrv import rawdb

    settings = load_settings()
    # a long log is shared between processes, one per core this process may use
    workers = min(len(os.sched_getaffinity(0)), 8) if hasattr(os, "sched_getaffinity") else 1
    db = rawdb.connect(settings.sqlalchemy_url)
    if db is None:  # a URL only the engine handles
        return _print_verified(args, *_audit_verify_engine(settings, workers))
    from printsrv import auditscan, checkpoints

    with db:
        total = int(db.rows("SELECT coalesce(sum(last_seq), 0) FROM audit_head")[0][0])
        cursor = db.conn.cursor()
        try:
            with _maybe_bar(total) as update:
                report = auditscan.verify_fast(cursor, db.postgresql, db.url, update, workers)
        finally:
            cursor.close()
        if report is not None:  # plainly right; else the walk below words what is wrong
            return _print_verified(args, report, checkpoints.verify_rows(db.rows, settings))
    return _print_verified(args, *_audit_verify_engine(settings, 1))


@contextlib.contextmanager
def _maybe_bar(total: int) -> Iterator[Any]:
    """A progress bar's ``update`` where it helps (a terminal and a log long enough to take
    a while), else ``None``."""
    if sys.stderr.isatty() and total >= 200_000:
        with _progress_bar(total, "verifying", True, unit="event") as bar:
            yield bar.update
    else:
        yield None


def _audit_verify_engine(settings: Any, workers: int) -> tuple[Any, Any]:
    """``audit verify`` through the engine: the fast scan, then the chain-by-chain walk that
    words every problem."""
    from printsrv import audit, checkpoints
    from printsrv.db import session_factory

    with session_factory(settings)() as session:
        total = audit.event_count(session)
        with _maybe_bar(total) as update:
            report = audit.verify(session, progress=update, workers=workers)
        return report, checkpoints.verify(session, settings)


def _print_verified(args: argparse.Namespace, report: Any, anchored: Any) -> int:
    ok = report.ok and anchored.ok
    if args.json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "events": report.events,
                    "last_seq": report.last_seq,
                    "chains": report.chains,
                    "problems": [{"seq": p.seq, "reason": p.reason} for p in report.problems],
                    "checkpoints": anchored.checkpoints,
                    "newest_checkpoint": anchored.newest,
                    "checkpoint_problems": anchored.problems,
                },
                indent=1,
            )
        )
    else:
        for p in report.problems:
            print(f"event {p.seq}: {p.reason}", file=sys.stderr)
        for problem in anchored.problems:
            print(problem, file=sys.stderr)
        status = "OK" if ok else "BROKEN"
        print(
            f"audit chain {status}: {report.events} events in {report.chains} chain(s), "
            f"last {report.last_seq}; held to {anchored.checkpoints} signed checkpoint(s)"
            + (f", newest {anchored.newest}" if anchored.newest else "")
        )
    return 0 if ok else 1


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from printsrv import checkpoints
    from printsrv.db import session_factory
    from printsrv.keys import KeyStore

    settings = load_settings()
    if args.if_due:
        with session_factory(settings)() as session:
            if not checkpoints.due(session):
                print("no checkpoint due")
                return 0
    with KeyStore.open(settings) as keys:
        row = checkpoints.checkpoint_now(settings, keys, reason=args.reason)
    heads = json.loads(row.body)["heads"]
    print(f"checkpoint {row.id}: {len(heads)} chain(s) signed, appended to "
          f"{checkpoints.anchor_file(settings)}")
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from printsrv.audit_export import export_audit
    from printsrv.db import session_factory

    settings = load_settings()
    with session_factory(settings)() as session:
        counts = export_audit(session, settings, args.out)
    print(f"exported {counts['events']} events and {counts['checkpoints']} checkpoints to "
          f"{args.out}; verify with: python3 scripts/verify_audit_export.py {args.out}")
    return 0
