"""``records purge``: crypto-shred the biometrics whose reprint window has ended."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser("records", help="records: shred biometrics after the reprint window")
    records_sub = p.add_subparsers(dest="records_command", required=True)
    purge = records_sub.add_parser(
        "purge",
        help="crypto-shred the biometrics of issued records whose reprint window has ended",
        description="Delete the wrapped data key and the encrypted media of every issued record "
        "whose media_purge_due (issue time + reprint_window_days) has passed, one audit event "
        "per record. Records queued or printing again for a reprint are left alone. Stations "
        "do the same when idle; this command is for cron or a server without a station.",
    )
    purge.add_argument("--actor", default="cli", help="who shreds (recorded in the audit log)")
    purge.set_defaults(func=cmd_purge)


def cmd_purge(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.records import purge_expired_media

    settings = load_settings()
    with unit_of_work(settings) as session:
        shredded = purge_expired_media(session, now=datetime.now(UTC), actor=args.actor)
    print(f"shredded the biometrics of {shredded} record{'' if shredded == 1 else 's'}")
    return 0
