"""``station NAME``, ``station resolve``, ``station status``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from printsrv.config import load_settings

SUBCOMMANDS = {"resolve", "status"}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "station",
        add_help=False,
        help="run a print station, resolve its interrupted cards, show station status",
        description="station NAME [--once] [--max-cards N] [--on-request] | "
        "station batch NAME --count N | station resume NAME | "
        "station resolve NAME --job ID "
        "--outcome issued|spoiled|released [--cause C] | station status [--json]",
    )
    p.add_argument("-h", "--help", action="store_true",
                   help="show this help, or a subcommand's (station status --help)")
    p.add_argument("name", nargs="?", help="station name (from settings [stations.NAME]), or "
                   "'status' / 'batch' / 'resume' / 'resolve'")
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--once", action="store_true", help="make one card, then stop")
    p.add_argument("--max-cards", type=int, help="stop after N cards")
    p.add_argument("--until-empty", action="store_true", help="stop when the queue is empty")
    p.add_argument(
        "--on-request",
        action="store_true",
        help="make cards only when an operator asks for a batch (web page or 'station batch')",
    )
    p.add_argument("--count", type=int, help="batch: how many cards to make")
    p.add_argument("--job", type=int, help="resolve: the card job id")
    p.add_argument("--outcome", choices=["issued", "spoiled", "released"])
    p.add_argument("--cause", help="resolve: spoil cause (chip_failure, jam_misfeed, ...)")
    p.add_argument(
        "--operator",
        help="who operates the station (run), asks for the batch (batch) or confirms (resolve)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_station, parser_help=p.format_help())


#: Each subcommand's own help: usage and what it does.
HELP: dict[str, str] = {
    "status": "usage: run.py station status [--json]\n\n"
              "Every station: its mode (running, paused, stopped), the pause reason, the\n"
              "printer's state, blanks in the hopper, ribbon panels left, cards issued and\n"
              "spoiled.\n"
              "  --json   machine-readable output",
    "batch": "usage: run.py station batch NAME --count N [--operator USER]\n\n"
             "Ask station NAME (running with --on-request) for N more cards; the operator is\n"
             "recorded on the cards.",
    "resume": "usage: run.py station resume NAME\n\n"
              "Tell the paused station NAME that the printer was cleared: it tries again.",
    "resolve": "usage: run.py station resolve NAME [--job ID --outcome issued|spoiled|released\n"
               "                              [--cause C] --operator USER]\n\n"
               "List the card jobs station NAME left unfinished, or settle one: what physically\n"
               "happened to its blank, confirmed by an operator (audited).",
}


def _explain(parser_help: str) -> str:
    """What ``station`` does and the stations configured here."""
    try:
        names = ", ".join(sorted(load_settings().stations)) or "none yet"
    except Exception as exc:  # settings that do not load are reported by the command itself
        names = f"unknown ({exc})"
    return (parser_help.rstrip() + "\n\nsubcommands: " + ", ".join(sorted(HELP))
            + " (station SUBCOMMAND --help)\nconfigured stations: " + names)


def cmd_station(args: argparse.Namespace) -> int:
    from printsrv.eventlog import configure

    if args.help or not args.name:
        if args.name in HELP:
            print(HELP[args.name])
        else:
            print(_explain(args.parser_help))
        return 0 if args.help else 2

    configure(verbose=args.verbose)
    if args.name == "status":
        return cmd_status(args)
    if args.name == "resume":
        from printsrv.db import unit_of_work
        from printsrv.station.requests import request_resume

        if not args.rest:
            print("usage: station resume NAME", file=sys.stderr)
            return 2
        with unit_of_work(load_settings()) as session:
            ok = request_resume(session, args.rest[0])
        print(f"station {args.rest[0]}: " + ("resume requested" if ok else "has not run yet"))
        return 0 if ok else 1
    if args.name == "batch":
        return cmd_batch(args)
    if args.name == "resolve":
        if not args.rest:
            print("usage: station resolve NAME --job ID --outcome ...", file=sys.stderr)
            return 2
        return cmd_resolve(args, args.rest[0])
    return cmd_run(args)


def run_station(
    settings: Any, name: str, *, operator: str | None = None, **run_kw: Any
) -> list[Any]:
    """Build the configured station ``name`` and run it until stopped."""
    import dataclasses

    from printsrv.keys import KeyStore
    from printsrv.station.daemon import Station
    from printsrv.station.devices import StationConfig, build_encoder, build_printer

    config = StationConfig.from_settings(settings, name)
    if operator:
        config = dataclasses.replace(config, operator=operator[:64])
    printer = build_printer(settings, config)
    encoder = build_encoder(settings, config)
    try:
        with KeyStore.open(settings) as keys:
            if hasattr(encoder, "bind_keys"):
                encoder.bind_keys(keys)
            station = Station(settings, config, printer, encoder, keys=keys)
            station.install_signal_handlers()
            return station.run(**run_kw)
    finally:
        close = getattr(encoder, "close", None)
        if close is not None:
            close()


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    results = run_station(
        settings, args.name, once=args.once, max_cards=args.max_cards,
        until_empty=args.until_empty, on_request=args.on_request, operator=args.operator,
    )
    issued = sum(r.outcome.value == "issued" for r in results)
    print(f"station {args.name}: {len(results)} cards, {issued} issued, "
          f"{len(results) - issued} not issued")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    """Ask a station running with ``--on-request`` for ``--count`` cards."""
    from printsrv.db import unit_of_work
    from printsrv.station.requests import add_batch_request

    if not args.rest or not args.count:
        print("usage: station batch NAME --count N", file=sys.stderr)
        return 2
    with unit_of_work(load_settings()) as session:
        total = add_batch_request(session, args.rest[0], args.count,
                                  actor=args.operator or "operator")
    if total is None:
        print(f"station {args.rest[0]}: has not run yet", file=sys.stderr)
        return 1
    print(f"station {args.rest[0]}: {total} card(s) requested")
    return 0


def cmd_resolve(args: argparse.Namespace, name: str) -> int:
    from printsrv.station.devices import StationConfig
    from printsrv.station.journal import CardOutcome
    from printsrv.station.recovery import apply, pending

    settings = load_settings()
    config = StationConfig.from_settings(settings, name)
    if args.job is None or args.outcome is None:
        jobs = pending(settings, config)
        if not jobs:
            print(f"station {name}: no unfinished card jobs")
            return 0
        print(f"station {name}: unfinished card jobs (resolve each with --job ID --outcome):")
        for job in jobs:
            print(f"  job {job.id}: record {job.record.request_id}, blank {job.blank_serial}, "
                  f"phase {job.phase.value}, print title {job.print_title}")
        return 1
    outcome = CardOutcome(args.outcome)
    if outcome is CardOutcome.SPOILED and not args.cause:
        print("--cause is required for --outcome spoiled", file=sys.stderr)
        return 2
    res = apply(settings, config, args.job, outcome, args.cause,
                actor=(args.operator or "operator")[:64], rule="operator confirmed")
    print(f"card job {res.job_id} ({res.phase}): {res.outcome.value}"
          + (f" ({res.cause})" if res.cause else ""))
    return 0


def _status_row(name: str, mode: str, reason: str | None, pid: int | None, beat: Any,
                issued: int, spoiled: int, open_jobs: list[int]) -> dict[str, Any]:
    from datetime import UTC, datetime

    from printsrv.rawdb import as_utc

    when = as_utc(beat)
    age = (datetime.now(UTC) - when).total_seconds() if when else None
    return {
        "name": name, "mode": mode, "reason": reason, "pid": pid,
        "heartbeat_age_s": round(age, 1) if age is not None else None,
        "issued": issued, "spoiled": spoiled, "unfinished_jobs": open_jobs,
    }


def _status_rows(db: Any) -> list[dict[str, Any]]:
    """The stations' rows read with a plain cursor (no SQLAlchemy: this command starts in
    tens of milliseconds)."""
    with db:
        return [
            _status_row(name, mode, reason, pid, beat, issued, spoiled, [
                job for (job,) in db.rows("SELECT id FROM card_job WHERE station = ?"
                                          " AND outcome IS NULL ORDER BY id", (name,))])
            for name, mode, reason, pid, beat, issued, spoiled in db.rows(
                "SELECT name, state, pause_reason, pid, heartbeat_at, cards_issued,"
                " cards_spoiled FROM station WHERE pid IS NOT NULL ORDER BY name")
        ]


def _status_rows_orm(settings: Any) -> list[dict[str, Any]]:
    """:func:`_status_rows` through the engine, for a database URL :mod:`printsrv.rawdb`
    does not handle."""
    from sqlalchemy import select

    from printsrv.db import unit_of_work
    from printsrv.ledger.models import Station
    from printsrv.station.journal import CardJob

    with unit_of_work(settings) as session:
        return [
            _status_row(rt.name, rt.state.value, rt.pause_reason, rt.pid, rt.heartbeat_at,
                        rt.cards_issued, rt.cards_spoiled, list(session.scalars(
                            select(CardJob.id).where(CardJob.station == rt.name,
                                                     CardJob.outcome.is_(None))
                            .order_by(CardJob.id))))
            for rt in session.scalars(
                select(Station).where(Station.pid.is_not(None)).order_by(Station.name))
        ]


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from printsrv import rawdb

    settings = load_settings()
    db = rawdb.connect(settings.sqlalchemy_url)
    rows = _status_rows_orm(settings) if db is None else _status_rows(db)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no station has run yet")
    for r in rows:
        print(f"{r['name']}: {r['mode']}" + (f" ({r['reason']})" if r["reason"] else "")
              + f", pid {r['pid']}, heartbeat {r['heartbeat_age_s']} s ago, issued "
              f"{r['issued']}, spoiled {r['spoiled']}, unfinished jobs {r['unfinished_jobs']}")
    return 0
