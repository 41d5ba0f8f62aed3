"""Kecamatan sync benchmarks (issue 16); prints a table.

1. **Download**: a node pulls 100 records with their media (encrypted photo, signature,
   fingerprints) over a link shaped to 256 kbit/s, 300 ms RTT, 5 % loss. Reported: seconds,
   against the raw media size / link rate (goal ≤ 1.2×).
2. **Catch-up after three days offline**: the node prints 600 cards on its virtual station
   (directory printer, fake encoder) with the link down, then syncs over the same link:
   seconds, and bytes on the wire per card fate beyond its events (goal: protocol overhead
   ≤ 1 KB per card). "Its events" are the node's outbox events and the audit events of its
   chains (they go up in the same sync) as compact JSON; the overhead is
   what crossed the wire (both ways, HTTP heads and bodies, TCP payload) minus the events
   deflated, and is also given against the events uncompressed.
3. **Thirty nodes** syncing against one server (``run.py serve``, gunicorn as the README runs
   it, on PostgreSQL): each node a real node (its own SQLite database, its own token with its
   node key, enrolled and approved) whose ``sync_once`` runs in one of ``--procs`` processes
   (a process runs its nodes' syncs one at a time; 30 processes would not fit 2 cores
   beside the server); each sync pushes
   what a minute of printing leaves (two cards: ~10 outbox events) and pulls. Every minute is
   compressed to ``--period`` seconds (default 6: ten times the issue's rate). Reported: p50,
   p99 and max of the time one sync spends waiting for the server's answers (the sum of its
   requests' round trips), goal p99 ≤ 1 s.

The link: with ``tc netem`` available (root, network namespaces), a namespace joined to this
one by a veth pair with ``netem delay 150ms rate 256kbit loss 5%`` on both ends, the node's
requests made from a thread that entered the namespace (``setns``); removed at the end.
Otherwise the link proxy (``printsrv.sync.linkproxy`` with a ``Shaping``) shapes each
direction to the rate and delays it by 150 ms, and models each 1448-byte segment lost with
5 % chance as TCP with SACK and fast retransmit roughly does (see ``Shaping``). Either way a
counting proxy carries every
byte between node and server; the table says which link was used.

    .venv/bin/python bench/sync/run.py [--records 100] [--cards 600] [--nodes 30]
        [--period 6] [--duration 120] [--procs 6] [--only download,catchup,nodes]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

It creates and drops its own PostgreSQL database and removes its temporary folders.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
OFFICE = "35.26.01"
RATE = 256_000  # bit/s
DELAY = 0.150  # one way
LOSS = 0.05
MSS = 1448
NETNS = "ktpbench"
FAKE_PDF = b"%PDF-1.4\n% bench card\n"


# ----------------------------------------------------------------------------------- the link


def _ip(*args: str, ns: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", NETNS, *args] if ns else list(args)
    return subprocess.run(cmd, capture_output=True, text=True)


def netem_link() -> tuple[str, str] | None:
    """Make the namespace, the veth pair and netem on both ends; ``(server_ip, netns path)``,
    or ``None`` (and nothing left behind) when netns or netem is not available."""
    if os.geteuid() != 0 or shutil.which("tc") is None or shutil.which("ip") is None:
        return None
    netem = ["netem", "delay", f"{int(DELAY * 1000)}ms", "rate", "256kbit", "loss", "5%"]
    steps = [
        (["ip", "netns", "add", NETNS], False),
        (["ip", "link", "add", "ktpb0", "type", "veth", "peer", "name", "ktpb1", "netns",
          NETNS], False),
        (["ip", "addr", "add", "10.199.0.1/24", "dev", "ktpb0"], False),
        (["ip", "link", "set", "ktpb0", "up"], False),
        (["ip", "addr", "add", "10.199.0.2/24", "dev", "ktpb1"], True),
        (["ip", "link", "set", "ktpb1", "up"], True),
        (["ip", "link", "set", "lo", "up"], True),
        (["tc", "qdisc", "add", "dev", "ktpb0", "root", *netem], False),
        (["tc", "qdisc", "add", "dev", "ktpb1", "root", *netem], True),
    ]
    for cmd, in_ns in steps:
        if _ip(*cmd, ns=in_ns).returncode != 0:
            remove_netem_link()
            return None
    return "10.199.0.1", f"/var/run/netns/{NETNS}"


def remove_netem_link() -> None:
    _ip("ip", "link", "del", "ktpb0")
    _ip("ip", "netns", "del", NETNS)


def in_netns(path: str | None, work: Callable[[], Any]) -> Any:
    """``work()`` in a thread that entered the network namespace at ``path`` (its sockets are
    made there); in this thread when ``path`` is None."""
    if path is None:
        return work()
    out: dict[str, Any] = {}

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        with open(path) as ns:
            if libc.setns(ns.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns")
        try:
            out["value"] = work()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


# ----------------------------------------------------------------------------------- set-up


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    from printsrv.db import engine_for

    name = f"ktp_bench_sync_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def node_settings(server: Any, folder: Path, label: str) -> Any:
    """A node's settings: its own folder and SQLite database, its own token (``label``) in the
    server's SoftHSM configuration (one PKCS#11 library per process)."""
    from printsrv import schema
    from printsrv.config import load_settings
    from printsrv.keys import init_token

    folder.mkdir(parents=True, exist_ok=True)
    settings = load_settings(overrides={
        "instance_dir": folder, "database_url": f"sqlite:///{folder / 'node.db'}",
        "softhsm_conf": server.softhsm_conf_path, "token_label": label})
    init_token(settings)
    schema.upgrade(settings)
    return settings


def enrol_node(server: Any, node: Any, url: str, office: str) -> str:
    from printsrv.db import unit_of_work
    from printsrv.sync import node as sync_node
    from printsrv.sync import server as sync_server

    enrolment = sync_node.enrol(node, url, office)
    with unit_of_work(server) as session:
        sync_server.approve(session, enrolment.node_id, enrolment.pairing_code, actor="bench")
    return enrolment.node_id


def import_records(server: Any, folder: Path, count: int, batch: str, office: str,
                   seed: int) -> None:
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch

    path = write_demo_batch(server, count, folder / batch, seed=seed, batch_id=batch,
                            office_codes=[office])
    result = import_batch(server, path)
    assert result.accepted and result.imported == count, result


def point_at(node: Any, url: str) -> None:
    from printsrv.db import unit_of_work
    from printsrv.sync.node import identity

    with unit_of_work(node) as session:
        identity(session).server_url = url


def print_all(node: Any, folder: Path, cards: int) -> None:
    """Stock the node's virtual station and print everything it holds (link down)."""
    from printers.directory import DirectoryPrinter
    from printers.profiles import get_profile
    from printsrv.db import unit_of_work
    from printsrv.keys import KeyStore
    from printsrv.ledger.blanks import get_or_create_station, load_blanks, receive_blanks
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import load_consumable, receive_consumable
    from printsrv.station.daemon import Station
    from printsrv.station.devices import FakeEncoder, StationConfig

    config = StationConfig(name="kec1", office=OFFICE, profile="virtual-ipp-card",
                           cups_queue="Card1", reader="Virtual PCD 00 00", poll_interval=0.05,
                           printer="directory")
    blanks = cards + 50
    with unit_of_work(node) as session:
        receive_blanks(session, office_code=OFFICE, first="KTP-000001",
                       last=f"KTP-{blanks:06d}", handover_number="BAST-B1", actor="bench")
        station = get_or_create_station(session, "kec1", office_code=OFFICE, cups_queue="Card1",
                                        reader="Virtual PCD 00 00", profile="virtual-ipp-card",
                                        actor="bench")
        load_blanks(session, station, actor="bench", count=blanks)
        receive_blanks(session, office_code=OFFICE, first="KIA-000001", last="KIA-000100",
                       handover_number="BAST-B2", actor="bench", stock_type="KIA")
        load_blanks(session, station, actor="bench", count=100, stock_type="KIA")
        receive_consumable(session, kind=ConsumableKind.RIBBON, office_code=OFFICE,
                           serial="RIB-B0", type_="YMCKOK", capacity=blanks + 100, actor="bench")
        load_consumable(session, station, kind=ConsumableKind.RIBBON, serial="RIB-B0",
                        actor="bench")
    printer = DirectoryPrinter(folder / "cards", get_profile(config.profile), name="kec1",
                               cards=blanks + 100, ribbon_cards=blanks + 100)
    with KeyStore.open(node) as keys:
        Station(node, config, printer, FakeEncoder(), keys=keys, idle_sleep=0.01,
                render=lambda card: FAKE_PDF).run(until_empty=True)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------------- 1 and 2


def bench_link(args: argparse.Namespace, server: Any, tmp: Path, rows: list[list[str]]) -> None:
    import json
    import zlib

    from sqlalchemy import func, select

    from printsrv.db import unit_of_work
    from printsrv.devstack.cups import free_port
    from printsrv.models import (
        AuditEvent,
        Batch,
        OutboxEvent,
        Record,
        RecordMedia,
        RecordState,
    )
    from printsrv.sync import node as sync_node
    from printsrv.sync.linkproxy import LinkProxy, Shaping, serving
    from printsrv.sync.node import CONSUMER

    port = free_port()
    netem = netem_link() if not args.no_netem else None
    link_name = ("netns + veth + tc netem (rate 256kbit delay 150ms loss 5% both ends)"
                 if netem else f"TCP proxy shaping 256 kbit/s, 150 ms each way; {LOSS:.0%} of "
                 "segments lost: re-sent, 1 RTT late, half rate for 1 RTT (no netem qdisc here)")
    try:
        with serving(server, port, workers=args.workers, timeout=60):
            plain = LinkProxy(("127.0.0.1", port))
            if netem:
                shaped = LinkProxy(("127.0.0.1", port), listen=netem[0])
            else:
                shaped = LinkProxy(("127.0.0.1", port), seed=16, delay=DELAY,
                                   shaping=Shaping(RATE, LOSS, MSS))
            ns_path = netem[1] if netem else None
            node = node_settings(server, tmp / "node", "bench-node")
            enrol_node(server, node, plain.url, OFFICE)

            # 1. catch-up: records handed down over the plain link, printed with the link down
            import_records(server, tmp, args.cards, "BENCH-CATCHUP", OFFICE, seed=12)
            point_at(node, plain.url)
            while sync_node.sync_once(node).pulled:
                pass
            with unit_of_work(node) as session:
                first = session.scalar(select(func.max(OutboxEvent.id))) or 0
                first_audit = session.scalar(select(func.max(AuditEvent.seq))) or 0
            point_at(node, "http://127.0.0.1:9")  # the link is down while it prints
            t_print = time.monotonic()
            print_all(node, tmp, args.cards)
            print_seconds = time.monotonic() - t_print
            with unit_of_work(node) as session:
                issued = session.scalar(select(func.count()).select_from(Record).where(
                    Record.state == RecordState.ISSUED))
                events = [
                    {"seq": e.id, "event_id": e.event_id, "topic": e.topic,
                     "subject": e.subject, "payload": e.payload}
                    for e in session.scalars(select(OutboxEvent).where(OutboxEvent.id > first)
                                             .order_by(OutboxEvent.id))]
                # the audit events go up too (their chains, as push_audit sends them)
                audit_events = [
                    {c: getattr(e, c) for c in ("seq", "chain", "chain_seq", "tag", "actor",
                                                "office_code", "subject", "details",
                                                "prev_hash", "hash")} | {"at": str(e.at)}
                    for e in session.scalars(select(AuditEvent).where(
                        AuditEvent.seq > first_audit).order_by(AuditEvent.seq))]
            n_outbox, events = len(events), events + audit_events
            cards = int(issued or 0)
            raw = len(json.dumps(events, separators=(",", ":")).encode())
            deflated = len(zlib.compress(json.dumps(events, separators=(",", ":")).encode(), 6))
            point_at(node, shaped.url)
            up0, down0, lost0 = shaped.up_bytes, shaped.down_bytes, shaped.lost
            t0 = time.monotonic()
            result = in_netns(ns_path, lambda: sync_node.sync_once(node))
            seconds = time.monotonic() - t0
            wire = (shaped.up_bytes - up0) + (shaped.down_bytes - down0)
            assert sync_node.status(node).events_pending_up == 0
            per_card = wire / cards
            rows.append([
                f"catch-up: {cards} card fates, {n_outbox} outbox events ({result.pushed} "
                f"pushed) and {len(audit_events)} audit events",
                f"{seconds:.1f} s",
                f"wire {wire / 1024:.0f} KiB = {per_card:.0f} B/card; events {raw / cards:.0f} "
                f"B/card as JSON, {deflated / cards:.0f} B/card deflated → overhead "
                f"{(wire - deflated) / cards:.0f} B/card beyond the deflated events "
                f"({(wire - raw) / cards:.0f} B/card against the raw events; goal ≤ 1024)"
                + ("" if netem else f"; {shaped.lost - lost0} segments re-sent")
                + f"; printing them offline took {print_seconds:.0f} s",
                load()])
            # 2. download (after the catch-up: nothing else queued at the node)
            import_records(server, tmp, args.records, "BENCH-DOWN", OFFICE, seed=11)
            with unit_of_work(server) as session:
                media = session.scalar(
                    select(func.sum(func.length(RecordMedia.ciphertext)))
                    .join(Record, Record.id == RecordMedia.record_id)
                    .join(Batch, Batch.id == Record.batch_id)
                    .where(Batch.batch_id == "BENCH-DOWN"))
            point_at(node, shaped.url)
            up0, down0, lost0 = shaped.up_bytes, shaped.down_bytes, shaped.lost
            t0 = time.monotonic()
            result = in_netns(ns_path, lambda: sync_node.sync_once(node))
            seconds = time.monotonic() - t0
            assert result.pulled == args.records, result
            ideal = int(media) * 8 / RATE
            rows.append([
                f"download {args.records} records with media", f"{seconds:.1f} s",
                f"raw media {int(media) / 1024:.0f} KiB / 256 kbit/s = {ideal:.1f} s → "
                f"{seconds / ideal:.2f}× (goal ≤ 1.2×); wire down "
                f"{(shaped.down_bytes - down0) / 1024:.0f} KiB, "
                f"up {(shaped.up_bytes - up0) / 1024:.0f} KiB"
                + ("" if netem else f", {shaped.lost - lost0} segments re-sent"),
                load()])

            plain.close()
            shaped.close()
    finally:
        if netem:
            remove_netem_link()
    rows.append(["link", "", link_name, ""])
    _forget(tmp / "node")
    print(f"  {CONSUMER}: done", file=sys.stderr)


def _forget(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------------- 3


def node_loop(spec: dict[str, Any], out: Any) -> None:
    """One process's share of the nodes (spawned): each node's sync every ``period`` seconds
    from a random phase, one sync at a time in this process (a PKCS#11 library in one
    process does not take several tokens' sessions opening at once); what each sync waited
    for the server (the sum of its requests' round trips) goes to ``out``."""
    from printsrv import outbox
    from printsrv.config import load_settings
    from printsrv.db import unit_of_work
    from printsrv.sync import client as sync_client
    from printsrv.sync import node as sync_node

    waited = [0.0, 0]
    post = sync_client.ServerClient._post

    def timed(self: Any, *a: Any, **kw: Any) -> Any:
        t0 = time.monotonic()
        try:
            return post(self, *a, **kw)
        finally:
            waited[0] += time.monotonic() - t0
            waited[1] += 1

    sync_client.ServerClient._post = timed  # type: ignore[method-assign]
    nodes = [(office, load_settings(overrides=o)) for office, o in spec["nodes"]]
    rng = random.Random(spec["seed"])
    start = spec["start"]
    due = sorted((start + rng.random() * spec["period"], i) for i in range(len(nodes)))
    results = []
    rounds = [0] * len(nodes)
    while due and due[0][0] < start + spec["duration"]:
        at, i = due.pop(0)
        time.sleep(max(0.0, at - time.time()))
        office, node = nodes[i]
        with unit_of_work(node) as session:  # a minute of printing: two cards' events
            for k in range(10):
                outbox.publish(session, "blank.movement", office_code=office,
                               subject=f"KTP-{rounds[i]:05d}{k}",
                               payload={"kind": "issue", "serial": f"KTP-{rounds[i]:05d}{k}",
                                        "station": "kec1", "n": k})
        waited[:] = [0.0, 0]
        t0 = time.monotonic()
        error = ""
        try:
            sync_node.sync_once(node)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:160]
        results.append((waited[0], time.monotonic() - t0, waited[1], error,
                        time.time() - at))
        rounds[i] += 1
        due.append((at + spec["period"], i))
        due.sort()
    out.put(results)


def bench_nodes(args: argparse.Namespace, server: Any, tmp: Path, rows: list[list[str]]) -> None:
    import multiprocessing as mp

    from printsrv.devstack.cups import free_port
    from printsrv.sync.linkproxy import serving

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    offices = [f"35.{26 + i // 9:02d}.{i % 9 + 1:02d}" for i in range(args.nodes)]
    t_setup = time.monotonic()
    with serving(server, port, workers=args.workers, timeout=60):
        specs: list[tuple[str, dict[str, Any]]] = []
        for i, office in enumerate(offices):
            node = node_settings(server, tmp / f"n{i:02d}", f"bench-n{i:02d}")
            enrol_node(server, node, url, office)
            import_records(server, tmp, 5, f"BENCH-N{i:02d}", office, seed=100 + i)
            specs.append((office, {"instance_dir": node.instance_dir,
                                   "database_url": node.sqlalchemy_url,
                                   "softhsm_conf": server.softhsm_conf_path,
                                   "token_label": node.token_label}))
        setup = time.monotonic() - t_setup
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start = time.time() + 15  # the processes start meanwhile
        procs = [ctx.Process(target=node_loop, args=({
            "nodes": specs[k::args.procs], "seed": k, "start": start,
            "period": args.period, "duration": args.duration}, out))
            for k in range(args.procs)]
        for proc in procs:
            proc.start()
        time.sleep(max(0.0, start - time.time()))
        load_before = load()
        results = [r for _ in procs for r in out.get(timeout=args.duration + 600)]
        load_after = load()
        for proc in procs:
            proc.join(60)
    samples = [r[0] for r in results if not r[3]]
    totals = [r[1] for r in results if not r[3]]
    late = [r[4] for r in results]
    errors = [r[3] for r in results if r[3]]
    requests = statistics.mean(r[2] for r in results)
    rows.append([
        f"{args.nodes} nodes in {args.procs} processes, a sync every {args.period:g} s each "
        f"(every minute compressed {60 / args.period:g}×), {args.duration:g} s",
        f"p99 {pct(samples, 0.99) * 1000:.0f} ms",
        f"wait for the server per sync: p50 {pct(samples, 0.5) * 1000:.0f} ms, p99 "
        f"{pct(samples, 0.99) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms over "
        f"{len(samples)} syncs ({requests:.1f} requests each); whole sync incl. the node's "
        f"own SQLite and token work p99 {pct(totals, 0.99) * 1000:.0f} ms; a sync started "
        f"p99 {pct(late, 0.99) * 1000:.0f} ms after its slot; {len(errors)} failed"
        f"{': ' + errors[0] if errors else ''}; goal p99 ≤ 1 s; set-up ({args.nodes} tokens, "
        f"enrolments, {5 * args.nodes} records) {setup:.0f} s",
        f"{load_before} → {load_after}"])


# ----------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--cards", type=int, default=600)
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--period", type=float, default=6.0)
    parser.add_argument("--procs", type=int, default=6,
                        help="processes the nodes' syncs run in (nodes / procs each)")
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=None,
                        help="run.py serve --workers (default: as serve decides)")
    parser.add_argument("--only", default="download,catchup,nodes")
    parser.add_argument("--no-netem", action="store_true", help="use the shaping proxy")
    parser.add_argument("--loss", type=float, default=5.0,
                        help="percent of segments lost (the shaping proxy only)")
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    only = set(args.only.split(","))
    global LOSS
    LOSS = args.loss / 100

    from printsrv import schema
    from printsrv.config import load_settings
    from printsrv.keys import create_demo_registry_pki, init_token

    rows: list[list[str]] = []
    started = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="ktp-bench-sync-"))
    try:
        with scratch_database(args.pg) as url:
            server = load_settings(overrides={"instance_dir": tmp / "server",
                                              "database_url": url})
            init_token(server)
            create_demo_registry_pki(server.keys_dir)
            schema.upgrade(server)
            if only & {"download", "catchup"}:
                bench_link(args, server, tmp, rows)
            if "nodes" in only:
                from printsrv.db import engine_for

                engine_for(url).dispose()
                bench_nodes(args, server, tmp, rows)
            from printsrv.db import engine_for

            engine_for(url).dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nbench/sync — {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    widths = [max(len(r[i]) for r in [*rows, ["what", "figure", "details", "load"]])
              for i in range(4)]
    widths[2] = min(widths[2], 200)
    for r in [["what", "figure", "details", "load (1, 5, 15 min)"], *rows]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
