"""``notify``: the pickup SMS — status, one sending round, and the sender daemon."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "notify",
        help="pickup SMS: status, send what is due, run the sender",
        description="When a card is issued, the resident gets an SMS with the pickup day "
        "(the first day the office is open and has room), the hours and what to bring. "
        "Messages wait for the morning outside 07:00-21:00 local time, and are retried when "
        "the gateway is down. Settings: [sms] and [pickup] (docs/pickup.md).",
    )
    notify_sub = p.add_subparsers(dest="notify_command", required=True)
    s = notify_sub.add_parser("status", help="messages per state, and the last failures")
    s.add_argument("--request-id", help="the messages of one record")
    s.set_defaults(func=cmd_status)
    sp = notify_sub.add_parser(
        "send-pending", help="turn new issued cards into messages and send what is due, once"
    )
    sp.set_defaults(func=cmd_send_pending)
    r = notify_sub.add_parser("run", help="the sender daemon (SIGTERM stops it between rounds)")
    r.add_argument("--interval", type=float, default=5.0, help="seconds between idle rounds")
    r.set_defaults(func=cmd_run)


def _round_line(collected: int, result: Any) -> str:
    line = (f"{collected} new cards read; {result.sent} sent, {result.retry} to retry, "
            f"{result.failed} failed, {result.deferred} wait for the morning")  # fmt: skip
    return line + "".join(f"\n  {error}" for error in result.errors[:10])


def cmd_send_pending(_args: argparse.Namespace) -> int:
    from printsrv.notify.sender import collect, send_due

    settings = load_settings()
    collected = collect(settings)
    while True:
        result = send_due(settings)
        print(_round_line(collected, result), flush=True)
        collected = 0
        if result.handed_over == 0:
            return 0


def cmd_run(args: argparse.Namespace) -> int:
    from printsrv.notify.sender import run

    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("notify: sender running (Ctrl-C stops it)", flush=True)
    run(load_settings(), interval=args.interval, stop=lambda: stopping,
        on_round=lambda n, result: print(_round_line(n, result), flush=True))  # fmt: skip
    print("notify: stopped", flush=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from printsrv.db import unit_of_work
    from printsrv.localtime import office_zone
    from printsrv.notify.models import Notification, NotificationState
    from printsrv.notify.sender import counts, for_record
    from printsrv.terminal import table

    settings = load_settings()
    with unit_of_work(settings) as session:
        if args.request_id:
            rows = [
                {
                    "message": n.message_id[:8],
                    "state": n.state.value,
                    "phone": n.phone or "—",
                    "pickup day": f"{n.pickup_day:%d-%m-%Y}" if n.pickup_day else "—",
                    "attempts": n.attempts,
                    "sent": office_zone(n.office_code).format(n.sent_at) or "—",
                    "report": n.report or "—",
                    "error": (n.error or "")[:60],
                }
                for n in for_record(session, args.request_id)
            ]
            print(table(rows))
            return 0
        per_state = counts(session)
        problems = session.scalars(
            select(Notification)
            .where(Notification.state.in_([NotificationState.FAILED, NotificationState.INVALID]))
            .order_by(Notification.id.desc())
            .limit(10)
        ).all()
        lines = [{"request": n.request_id, "state": n.state.value, "why": (n.error or "")[:80]}
                 for n in problems]  # fmt: skip
    order = [s.value for s in NotificationState]
    print(table([{"state": s, "messages": per_state.get(s, 0)} for s in order]))
    if lines:
        print("\nlast failures:")
        print(table(lines))
    return 0
