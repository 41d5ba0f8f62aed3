"""``outbox``: the event outbox's consumers and their lag, registering and pruning."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "outbox",
        help="the event outbox: consumers and their lag, register, prune",
        description="State changes that others must learn of (records queued, held, released, "
        "cancelled, issued; every blank and ribbon movement; reprint decisions) are events in "
        "the outbox, written with the change. Each consumer (SMS sender, kecamatan sync) keeps "
        "its own cursor.",
    )
    outbox_sub = p.add_subparsers(dest="outbox_command", required=True)
    s = outbox_sub.add_parser("status", help="every consumer, its position and its lag")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--zone", default="WIB", choices=("WIB", "WITA", "WIT"),
                   help="the time zone times are shown in (default WIB)")  # fmt: skip
    s.set_defaults(func=cmd_status)

    r = outbox_sub.add_parser("register", help="register a consumer (idempotent)")
    r.add_argument("name")
    r.add_argument("--from-now", action="store_true",
                   help="start after the newest event instead of at the first")  # fmt: skip
    r.set_defaults(func=cmd_register)

    u = outbox_sub.add_parser("unregister", help="remove a consumer and its cursor")
    u.add_argument("name")
    u.set_defaults(func=cmd_unregister)

    pr = outbox_sub.add_parser(
        "prune", help="delete events every consumer has had that are older than N days"
    )
    pr.add_argument("--older-than-days", type=int, default=90)
    pr.set_defaults(func=cmd_prune)


def cmd_status(args: argparse.Namespace) -> int:
    from printsrv import outbox
    from printsrv.db import unit_of_work
    from printsrv.localtime import ZONES
    from printsrv.terminal import table

    zone = ZONES[args.zone]
    with unit_of_work(load_settings()) as session:
        consumers = outbox.status(session)
        count, newest = outbox.totals(session)
    if args.json:
        print(json.dumps({
            "events": count,
            "newest_at": newest.isoformat() if newest else None,
            "consumers": [
                {"name": c.name, "position": list(c.position), "delivered": c.delivered,
                 "pending": c.pending, "lag_seconds": round(c.lag().total_seconds(), 3),
                 "delivered_at": c.delivered_at.isoformat() if c.delivered_at else None,
                 "error": c.error}
                for c in consumers
            ],
        }, indent=2))  # fmt: skip
        return 0
    print(f"outbox: {count} events, newest {zone.format(newest, seconds=True) or '—'}")
    if not consumers:
        print("no consumers registered")
        return 0
    rows = [
        {
            "consumer": c.name,
            "pending": c.pending,
            "lag": _duration(c.lag()),
            "delivered": c.delivered,
            "last delivery": zone.format(c.delivered_at, seconds=True) or "—",
            "error": (c.error or "")[:80],
        }
        for c in consumers
    ]
    print(table(rows))
    return 0


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def cmd_register(args: argparse.Namespace) -> int:
    from printsrv import outbox
    from printsrv.db import unit_of_work

    with unit_of_work(load_settings()) as session:
        consumer = outbox.register(session, args.name, from_now=args.from_now)
        position = (consumer.cursor_tx, consumer.cursor_id)
    print(f"consumer {args.name}: at {position[0]}/{position[1]}")
    return 0


def cmd_unregister(args: argparse.Namespace) -> int:
    from printsrv import outbox
    from printsrv.db import unit_of_work

    with unit_of_work(load_settings()) as session:
        outbox.unregister(session, args.name)
    print(f"consumer {args.name} removed")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from printsrv import outbox
    from printsrv.db import unit_of_work

    with unit_of_work(load_settings()) as session:
        removed = outbox.prune(session, older_than=timedelta(days=args.older_than_days))
    print(f"{removed} events removed")
    return 0
