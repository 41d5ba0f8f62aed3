"""``node`` (on a kecamatan node) and ``nodes`` (on the kabupaten server): the kecamatan sync."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    n = sub.add_parser(
        "node", help="this instance as a kecamatan node: enroll, sync, status",
        description="A kecamatan node prints offline and store-and-forwards to its kabupaten "
        "server (docs/node.md).")
    node_sub = n.add_subparsers(dest="node_command", required=True)
    e = node_sub.add_parser("enroll", help="make the node key, register with the server, and "
                            "print the one-time pairing code its admin confirms")
    e.add_argument("--server", required=True, help="the kabupaten server's URL")
    e.add_argument("--office", required=True, help="this kecamatan office's code PP.KK.CC")
    e.add_argument("--name", default="", help="a name the server's admin recognises")
    e.set_defaults(func=cmd_enroll)
    s = node_sub.add_parser("sync", help="exchange with the server (forever, or --once)")
    s.add_argument("--once", action="store_true", help="one exchange, then exit")
    s.add_argument("--interval", type=float, help="seconds between exchanges (default: the "
                   "setting node_sync_interval, 60)")
    s.add_argument("--max-wait", type=float, help="longest wait after failures in a row (the "
                   "wait doubles from the interval; default 10 intervals, at most 600 s)")
    s.set_defaults(func=cmd_sync)
    st = node_sub.add_parser("status", help="last contact, offline since, events pending")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_node_status)
    ac = node_sub.add_parser("accept", help="confirm a BAST from the server arrived: its "
                             "blanks and ribbons go from in transit into the store room")
    ac.add_argument("number", help="the handover (BAST) number")
    ac.add_argument("--actor", default="cli")
    ac.set_defaults(func=cmd_accept)

    m = sub.add_parser("nodes", help="kecamatan nodes of this server: list (with their "
                       "stations), approve, revoke, recall, lost, fates, settle, shreds")
    m.set_defaults(func=cmd_nodes)
    m.add_argument("--json", action="store_true")
    nodes_sub = m.add_subparsers(dest="nodes_command")
    a = nodes_sub.add_parser("approve", help="confirm a pending node with its pairing code")
    a.add_argument("node")
    a.add_argument("--code", required=True)
    a.add_argument("--actor", default="cli")
    a.set_defaults(func=cmd_approve)
    r = nodes_sub.add_parser("revoke", help="end a node's access")
    r.add_argument("node")
    r.add_argument("--actor", default="cli")
    r.set_defaults(func=cmd_revoke)
    c = nodes_sub.add_parser("recall", help="ask the node that holds a record to give it back")
    c.add_argument("request_id")
    c.add_argument("--actor", default="cli")
    c.set_defaults(func=cmd_recall)
    lost = nodes_sub.add_parser(
        "lost", help="a node whose disk died: revoke it and report what it held as unknown "
        "fates for a supervisor to settle (then enrol a fresh node for the office)")
    lost.add_argument("node")
    lost.add_argument("--reason", required=True, help="why (disk died, stolen, ...)")
    lost.add_argument("--actor", default="cli")
    lost.set_defaults(func=cmd_lost)
    f = nodes_sub.add_parser("fates", help="unknown fates of lost nodes (open ones, or --all)")
    f.add_argument("--node")
    f.add_argument("--all", action="store_true", help="settled ones too")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fates)
    t = nodes_sub.add_parser("settle", help="a supervisor's decision on an unknown fate")
    t.add_argument("fate_id", type=int)
    t.add_argument("--decision", required=True, choices=["recovered", "spoiled", "lost"],
                   help="recovered: the card found issued / the blank unused; spoiled: found "
                   "damaged; lost: not found (a record goes back to the queue)")
    t.add_argument("--reason", required=True)
    t.add_argument("--actor", required=True, help="the supervisor who decides")
    t.set_defaults(func=cmd_settle)
    v = nodes_sub.add_parser(
        "verify", help="the full check of node audit chains: every event and checkpoint read "
        "again (the listing verifies only what is new); exit 1 when one does not verify")
    v.add_argument("node", nargs="?", help="one node (default: every node)")
    v.set_defaults(func=cmd_verify)
    sh = nodes_sub.add_parser("shreds", help="the nodes' confirmations that they crypto-"
                              "shredded a record's biometrics (what was destroyed, when)")
    sh.add_argument("--node")
    sh.add_argument("--request", help="one record's request id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_shreds)
    t = nodes_sub.add_parser("transfer", help="hand blanks and ribbons to a node under a BAST "
                             "(in transit until the node accepts them)")
    t.add_argument("node")
    t.add_argument("--from", dest="from_office", required=True, help="the giving office")
    t.add_argument("--bast", required=True, help="the handover (BAST) number")
    t.add_argument("--first", help="first blank serial of the range")
    t.add_argument("--last", help="last blank serial of the range")
    t.add_argument("--ribbon", action="append", default=[], help="a ribbon serial (repeat)")
    t.add_argument("--film", action="append", default=[], help="a film serial (repeat)")
    t.add_argument("--giver", default="", help="NAME / NIP of who hands over")
    t.add_argument("--receiver", default="", help="NAME / NIP of who receives")
    t.add_argument("--actor", default="cli")
    t.set_defaults(func=cmd_transfer)


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment else "—"


def cmd_enroll(args: argparse.Namespace) -> int:
    from printsrv.sync import node

    enrolment = node.enrol(load_settings(), args.server, args.office, name=args.name)
    print(f"node id: {enrolment.node_id}")
    print(f"pairing code: {enrolment.pairing_code}")
    print("the server's admin confirms it: "
          f"run.py nodes approve {enrolment.node_id} --code {enrolment.pairing_code}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    import signal
    import threading

    from printsrv.sync import node
    from printsrv.sync.protocol import AuthError, SyncError

    settings = load_settings()
    if args.once:
        try:
            result = node.sync_once(settings)
        except AuthError as exc:
            print(f"sync refused by the server ({exc.status}): {exc}", file=sys.stderr)
            return 1
        except SyncError as exc:
            print(f"sync failed: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"sync: {result.pushed} events up, {result.pulled} items down", flush=True)
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def report(line: str, failed: bool) -> None:
        print(line, file=sys.stderr if failed else sys.stdout, flush=True)

    interval = args.interval if args.interval is not None else settings.node_sync_interval
    return node.sync_forever(settings, stop, interval=max(float(interval), 0.1),
                             ceiling=args.max_wait, report=report)


def cmd_node_status(args: argparse.Namespace) -> int:
    from printsrv.sync import node

    st = node.status(load_settings())
    data = {"node_id": st.node_id, "server": st.server_url, "office": st.office_code,
            "last_contact_at": _when(st.last_contact_at),
            "offline_since": _when(st.offline_since) if st.offline_since else None,
            "events_pending_up": st.events_pending_up, "down_applied": st.down_applied,
            "records_queued": st.records_queued, "last_error": st.last_error}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for key, value in data.items():
        print(f"{key:18} {'—' if value is None else value}")
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import server
    from printsrv.terminal import table

    with unit_of_work(load_settings()) as session:
        nodes = server.status(session)
    rows = [{"node": n.node_id, "office": n.office_code, "state": n.state,
             "last contact": _when(n.last_contact_at), "pending down": n.down_pending,
             "applied up": n.up_applied, "records held": n.records_held,
             "blanks held": n.blanks_held, "blanks in transit": n.blanks_in_transit,
             "audit chain": {None: "—", True: "verifies", False: "BROKEN"}[n.chain_ok],
             "verified through": f"{n.chain_verified} events, checkpoint "
                                 f"{n.checkpoint_verified} ({n.chain_checked} new)",
             "shreds confirmed": n.shreds_confirmed}
            for n in nodes]
    stations = [_station_row(n.node_id, n.office_code, st) for n in nodes for st in n.stations]
    if args.json:
        for row, n in zip(rows, nodes, strict=True):
            row["stations"] = [r for r in stations if r["node"] == n.node_id]
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no nodes enrolled")
    else:
        print(table(rows))
        if stations:
            print()
            print(table([{k: ("—" if v is None else v) for k, v in r.items()}
                         for r in stations]))
    return 0


def _station_row(node_id: str, office: str, st: Any) -> dict[str, Any]:
    """A node station as ``nodes`` lists it: its last heartbeat in the office's local time."""
    from printsrv.localtime import office_zone

    zone = office_zone(office)
    return {"node": node_id, "station": st.name,
            "state": st.state + (f" ({st.pause_reason})" if st.pause_reason else ""),
            "last heartbeat": zone.format(st.heartbeat_at, seconds=True) or None,
            "printer": st.printer_state or None, "ribbon": st.ribbon or None,
            "ribbon panels left": st.ribbon_remaining, "issued": st.cards_issued,
            "spoiled": st.cards_spoiled, "reported": zone.format(st.reported_at, seconds=True)}


def cmd_shreds(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import server
    from printsrv.terminal import table

    with unit_of_work(load_settings()) as session:
        rows = [{"node": c.node_id, "request id": c.request_id, "reason": c.reason,
                 "shredded (node clock)": _when(c.shredded_at),
                 "data key destroyed": bool(c.destroyed.get("data_key")),
                 "media destroyed": ",".join(c.destroyed.get("media", [])) or None,
                 "received": _when(c.received_at), "event": c.event_id}
                for c in server.shred_confirmations(session, node_id=args.node,
                                                    request_id=args.request)]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no crypto-shred confirmations")
    else:
        print(table([{k: ("—" if v is None else v) for k, v in r.items()} for r in rows]))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import server
    from printsrv.sync.models import SyncNode

    broken = 0
    with unit_of_work(load_settings()) as session:
        from sqlalchemy import select

        ids = [args.node] if args.node else list(session.scalars(
            select(SyncNode.node_id).order_by(SyncNode.node_id)))
        for node_id in ids:
            report = server.check_node_chains(session, node_id)
            verdict = "verifies" if report.ok else "BROKEN"
            print(f"{node_id}: {verdict}: {report.events} events, {report.checkpoints} "
                  "checkpoints read")
            for problem in report.problems:
                print(f"  {problem}")
            broken += not report.ok
    return 1 if broken else 0


def cmd_approve(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import server

    with unit_of_work(load_settings()) as session:
        server.approve(session, args.node, args.code, actor=args.actor)
    print(f"node {args.node} approved")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import server

    with unit_of_work(load_settings()) as session:
        server.revoke(session, args.node, actor=args.actor)
    print(f"node {args.node} revoked")
    return 0


def cmd_recall(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import server

    with unit_of_work(load_settings()) as session:
        asked = server.recall(session, args.request_id, actor=args.actor)
        node_id = asked.node_id
    print(f"recall of {args.request_id} asked of node {node_id}; it answers on its next sync")
    return 0


def cmd_lost(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import recovery

    with unit_of_work(load_settings()) as session:
        lost = recovery.declare_lost(session, args.node, actor=args.actor, reason=args.reason)
    print(f"node {lost.node_id} revoked; unknown fates reported: {lost.records} records, "
          f"{lost.blanks} blanks (run.py nodes fates; settle each with run.py nodes settle)")
    return 0


def cmd_fates(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import recovery
    from printsrv.terminal import table

    with unit_of_work(load_settings()) as session:
        rows = [{"id": f.id, "node": f.node_id, "kind": f.kind, "subject": f.subject,
                 "last known": f.last_known, "reported": _when(f.reported_at),
                 "decision": f.decision.value if f.decision else None,
                 "by": f.settled_by, "reason": f.reason}
                for f in recovery.unknown_fates(session, node_id=args.node,
                                                open_only=not args.all)]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no unknown fates")
    else:
        print(table([{k: ("—" if v is None else v) for k, v in r.items()} for r in rows]))
    return 0


def cmd_settle(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.sync import recovery

    with unit_of_work(load_settings()) as session:
        fate = recovery.settle(session, args.fate_id, args.decision, actor=args.actor,
                               reason=args.reason)
        print(f"{fate.kind} {fate.subject}: {fate.decision} (by {fate.settled_by})")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.serials import serial_range
    from printsrv.sync import server

    if bool(args.first) != bool(args.last):
        print("give both --first and --last", file=sys.stderr)
        return 2
    serials = serial_range(args.first, args.last) if args.first else []
    rolls = [(ConsumableKind.RIBBON, r) for r in args.ribbon] + [
        (ConsumableKind.FILM, f) for f in args.film]
    with unit_of_work(load_settings()) as session:
        server.transfer_to_node(session, args.node, from_office=args.from_office,
                                handover_number=args.bast, actor=args.actor, serials=serials,
                                ribbons=rolls, giver=args.giver, receiver=args.receiver)
    print(f"BAST {args.bast}: {len(serials)} blanks, {len(rolls)} rolls in transit to node "
          f"{args.node}; they are its own once it accepts them")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from printsrv.sync import node

    done = node.accept_handover(load_settings(), args.number, actor=args.actor)
    print(f"BAST {args.number}: {done.blanks} blanks, {done.ribbons} rolls accepted")
    return 0
