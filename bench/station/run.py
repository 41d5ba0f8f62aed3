"""Station benchmarks; prints a table.

1. Software overhead per card: the real daemon loop (claim, journal commits, decrypt through
   the token, the real card face, ledger and record updates, audit) with stand-in devices (the
   fake encoder and the directory printer); the device time the daemon measured
   (``CardResult.timings['chip']`` and ``['print']``) is subtracted from each card's wall time.
   Goal: p95 ≤ 50 ms.
2. Claims: 16 processes, each with its own connection, claim records one per transaction
   (``claim_next`` as the station calls it, audited) from a fresh PostgreSQL database holding
   100,000 queued records. Reports claims/s, p50/p99 latency (begin → commit) and the number of
   records claimed twice, counted from the database (audit events and lease owners). Goal: p99
   ≤ 20 ms. Each process first warms up as a running station is warm (its connection open, its
   statements prepared: ten claims on an office with nothing queued, six audit events), then:
   - paced at ``--paced-rate`` claims/s per station with a random phase (an open loop; a real
     station claims about once every 15–20 s, so 2/s per station is ~30 times a busy office);
   - bursts: all 16 claim at the same instant, ``--bursts`` times (the worst moment: a batch
     started on every station at once);
   - back to back (a closed loop at saturation: its figure is the throughput; its latency is
     16 / throughput plus scheduling, on this machine's cores shared with the database);
   - the floor: back to back again, the same claim statement through the bare driver in
     autocommit, one round trip per claim (no session, no transaction, no SQLAlchemy): what
     the machine gives with nothing of the station around the statement;
   - open loop at 25, 50 and 75 % of the back-to-back throughput (``--load``), for
     ``--load-seconds`` each: latency against load, the usual way to state a latency goal (at
     saturation a closed loop's latency is its number of clients over its throughput, and an
     open loop's grows without bound); a claim that starts late because the one before
     overran counts from its slot.
   Each run also reports the station processes' own CPU time per claim.

    .venv/bin/python bench/station/run.py [--cards 200] [--records 100000] [--workers 16]
        [--claims-per-worker 500] [--paced-rate 2] [--bursts 40] [--load 25,50,75]
        [--pg postgresql+psycopg://…/postgres]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

OFFICE = "35.26.01"
EMPTY_OFFICE = "35.28.01"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def machine_reference() -> float:
    """Seconds for a fixed pure-Python loop (best of three): how fast this machine is today,
    to compare runs made on different days or machines."""
    best = float("inf")
    for _ in range(3):
        t0, total = time.perf_counter(), 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best


# -- fresh databases ---------------------------------------------------------------------------


def create_pg_database(admin_url: str) -> str:
    from sqlalchemy import create_engine

    name = f"bench_station_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine

    from printsrv.db import engine_for

    engine_for(url).dispose()
    name = url.rsplit("/", 1)[1]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


# -- 1. per-card overhead ----------------------------------------------------------------------


def card_overhead(instance: Path, database_url: str, cards: int) -> dict[str, list[float]]:
    """Run ``cards`` cards through the real loop with stand-in devices; per-card times (s)."""
    from printers.directory import DirectoryPrinter
    from printers.profiles import get_profile
    from printsrv import schema
    from printsrv.config import load_settings
    from printsrv.db import unit_of_work
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch
    from printsrv.keys import KeyStore, create_demo_registry_pki, init_token
    from printsrv.ledger.blanks import get_or_create_station, load_blanks, receive_blanks
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import load_consumable, receive_consumable
    from printsrv.station.daemon import Station
    from printsrv.station.devices import FakeEncoder, StationConfig

    settings = load_settings(overrides={"instance_dir": instance, "database_url": database_url})
    schema.upgrade(settings)
    init_token(settings)
    if not (settings.keys_dir / "registry-signer.pem").exists():
        create_demo_registry_pki(settings.keys_dir)
    tag = uuid.uuid4().hex[:6].upper()
    batch = write_demo_batch(settings, cards, instance / f"batch-{tag}", seed=7,
                             batch_id=f"BENCH-{tag}", office_codes=[OFFICE])
    result = import_batch(settings, batch)
    assert result.accepted, result.problems
    name = f"bench{tag}".lower()
    config = StationConfig(name=name, office=OFFICE, profile="virtual-ipp-card",
                           cups_queue="Card1", reader="none", poll_interval=0.05)
    with unit_of_work(settings) as session:
        station = get_or_create_station(session, name, office_code=OFFICE, cups_queue="Card1",
                                        reader="none", profile="virtual-ipp-card", actor="bench")
        for stock_type, lead in (("KTP-EL", "B"), ("KIA", "K")):  # the batch has both
            receive_blanks(session, office_code=OFFICE, first=f"{lead}{tag}-000001",
                           last=f"{lead}{tag}-{cards + 10:06d}",
                           handover_number=f"BAST-{lead}{tag}", actor="bench",
                           stock_type=stock_type)
            load_blanks(session, station, actor="bench", count=cards + 10, stock_type=stock_type)
        receive_consumable(session, kind=ConsumableKind.RIBBON, office_code=OFFICE,
                           serial=f"RIB-{tag}", type_="YMCKOK", capacity=cards + 50,
                           actor="bench")
        load_consumable(session, station, kind=ConsumableKind.RIBBON, serial=f"RIB-{tag}",
                        actor="bench")
    printer = DirectoryPrinter(instance / f"cards-{tag}", get_profile(config.profile), name=name,
                               ribbon_cards=cards + 50, cards=cards + 10)
    out: dict[str, list[float]] = {"total": [], "no_render": [], "render": [], "claim": [],
                                   "issue": [], "cpu": []}
    with KeyStore.open(settings) as keys:
        station = Station(settings, config, printer, FakeEncoder(), keys=keys, idle_sleep=0.0)
        original = station.process_one

        def timed() -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            res = original()
            if res is not None:
                out["cpu"].append(time.process_time() - c0)
                wall = time.perf_counter() - t0
                device = res.timings.get("chip", 0.0) + res.timings.get("print", 0.0)
                out["total"].append(wall - device)
                out["no_render"].append(wall - device - res.timings.get("render", 0.0))
                out["render"].append(res.timings.get("render", 0.0))
                out["claim"].append(res.timings.get("claim", 0.0))
                out["issue"].append(res.timings.get("issue", 0.0))
            return res

        station.process_one = timed  # type: ignore[method-assign]
        results = station.run(until_empty=True)
    issued = sum(r.outcome.value == "issued" for r in results)
    assert issued == cards, f"{issued} of {cards} issued"
    return out


# -- 2. claims ---------------------------------------------------------------------------------


def seed_queue(url: str, records: int) -> None:
    """An office, a batch and ``records`` queued records (COPY)."""
    from datetime import UTC, datetime

    import psycopg

    from printsrv import schema
    from printsrv.config import load_settings

    settings = load_settings(overrides={"database_url": url})
    schema.upgrade(settings)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO office (code, name, kind) VALUES (%s, %s, %s) RETURNING id",
                    (OFFICE, "Bench", "kecamatan"))
        office_id = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("INSERT INTO office (code, name, kind) VALUES (%s, %s, %s) RETURNING id",
                    ("35.27.01", "Other", "kecamatan"))
        other_id = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("INSERT INTO office (code, name, kind) VALUES (%s, %s, %s)",
                    (EMPTY_OFFICE, "Warm-up (nothing queued)", "kecamatan"))
        cur.execute(
            "INSERT INTO batch (batch_id, issuer, created_at, imported_at, record_count, "
            "imported_count, rejected_count, manifest_sha256, signer, imported_by) VALUES "
            "('BENCH', 'bench', %s, %s, %s, %s, 0, %s, 'bench', 'bench') RETURNING id",
            (now, now, records, records, "0" * 64))
        batch_id = cur.fetchone()[0]  # type: ignore[index]
        with cur.copy(
            "COPY record (request_id, batch_id, line_no, nik, nama, card_type, office_id, "
            "state, data, failure_count, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(records):
                # Every tenth record belongs to another office: the claim must filter.
                office = other_id if i % 10 == 9 else office_id
                copy.write_row((f"REQ-{i:08d}", batch_id, i + 1, f"3526{i:012d}",
                                f"NAMA {i}", "KTP", office, "queued", "{}", 0, now, now))
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE record")


def claim_worker(url: str, worker: int, claims: int, queue: Any, start: Any,
                 rate: float = 0.0, burst: Any = None) -> None:
    """Claim ``claims`` records one per transaction: back to back (``rate`` 0), paced at
    ``rate`` claims/s with a random phase (an open loop, like stations making cards), or, with
    ``burst`` (a barrier shared by all workers), all workers at the same instant each round."""
    import random

    from sqlalchemy import select

    from printsrv import audit
    from printsrv.audit import station_chain
    from printsrv.config import load_settings
    from printsrv.db import session_factory
    from printsrv.models import Office
    from printsrv.station.claim import claim_next, office_ids

    settings = load_settings(overrides={"database_url": url})
    factory = session_factory(settings)
    owner = f"station:bench{worker:02d}"
    chain = station_chain(f"bench{worker:02d}")
    with factory() as session:
        offices = office_ids(session, OFFICE)
        empty = office_ids(session, EMPTY_OFFICE)
        assert session.scalar(select(Office.id).where(Office.code == OFFICE)) is not None
        session.commit()
    # Warm up as a running station is: statements prepared, the chain's head row there.
    for _ in range(10):
        with factory() as session, session.begin():
            session.info["audit_chain"] = chain
            assert claim_next(session, empty, owner) is None
    for _ in range(6):
        with factory() as session, session.begin():
            session.info["audit_chain"] = chain
            audit.record(session, "bench:station:warmup", actor=owner)
    latencies: list[float] = []
    ids: list[int] = []

    start.wait()
    cpu = time.process_time()
    begin = time.perf_counter() + (random.random() / rate if rate else 0.0)
    for n in range(claims):
        if burst is not None:
            time.sleep(0.05)  # the machine settles between bursts
            burst.wait()
        t0 = time.perf_counter()
        if rate:
            # An open loop: a claim that starts late because the previous one overran its
            # slot counts from its slot (no coordinated omission); the sleep's own wake-up
            # delay does not count.
            scheduled = begin + n / rate
            if scheduled > t0:
                time.sleep(scheduled - t0)
                t0 = time.perf_counter()
            else:
                t0 = scheduled
        with factory() as session, session.begin():
            session.info["audit_chain"] = chain  # as the daemon
            record = claim_next(session, offices, owner)
            if record is None:
                break
            ids.append(record.id)
        latencies.append(time.perf_counter() - t0)
    queue.put((worker, latencies, ids, time.process_time() - cpu))


def floor_worker(url: str, worker: int, claims: int, queue: Any, start: Any,
                 rate: float = 0.0, burst: Any = None) -> None:
    """The floor: the same claim statement, back to back, through the bare driver in autocommit
    (one round trip per claim, no session, no transaction of the station's own). What a claim
    costs on this machine with nothing of ours around it."""
    from datetime import UTC, datetime, timedelta

    import psycopg

    from printsrv.audit import GENESIS_HASH, station_chain
    from printsrv.station.claim import PG_CLAIM, pg_claim_parameters

    owner, chain = f"station:floor{worker:02d}", station_chain(f"floor{worker:02d}")
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = dict(conn.execute("SELECT code, id FROM office").fetchall())
        conn.execute("INSERT INTO audit_head (chain, last_seq, last_hash) VALUES (%s, 0, %s) "
                     "ON CONFLICT DO NOTHING", (chain, GENESIS_HASH))

        def claim(office: str) -> Any:
            now = datetime.now(UTC)
            return conn.execute(PG_CLAIM, pg_claim_parameters(
                [ids[office]], [office], owner, chain, now, now + timedelta(minutes=10), True,
            )).fetchone()

        for _ in range(10):
            assert claim(EMPTY_OFFICE) is None
        latencies: list[float] = []
        claimed: list[int] = []
        start.wait()
        cpu = time.process_time()
        for _ in range(claims):
            t0 = time.perf_counter()
            row = claim(OFFICE)
            if row is None:
                break
            claimed.append(row[0])
            latencies.append(time.perf_counter() - t0)
    queue.put((worker, latencies, claimed, time.process_time() - cpu))


def claims(url: str, workers: int, per_worker: int, rate: float = 0.0,
           bursts: bool = False, worker: Any = claim_worker) -> dict[str, Any]:
    from sqlalchemy import func, select, text

    from printsrv.config import load_settings
    from printsrv.db import unit_of_work
    from printsrv.models import AuditEvent, Record, RecordState

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    # Every worker imports, connects and warms up first; the clock starts when the last is
    # ready (16 processes importing on two cores take longer than any fixed wait).
    start = ctx.Barrier(workers + 1)
    barrier = ctx.Barrier(workers) if bursts else None
    procs = [ctx.Process(target=worker,
                         args=(url, w, per_worker, queue, start, rate, barrier))
             for w in range(workers)]
    for p in procs:
        p.start()
    start.wait(timeout=600)
    t0 = time.perf_counter()
    results = [queue.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=60)
    latencies = [x for _, lat, _, _ in results for x in lat]
    claimed = [i for _, _, ids, _ in results for i in ids]
    client_cpu = sum(cpu for *_, cpu in results)
    settings = load_settings(overrides={"database_url": url})
    with unit_of_work(settings) as session:
        printing = session.scalar(select(func.count()).select_from(Record).where(
            Record.state == RecordState.PRINTING)) or 0
        twice_audit = session.execute(text(
            "SELECT count(*) FROM (SELECT subject FROM audit_event WHERE tag = :tag AND "
            "details->>'reason' = 'claimed' GROUP BY subject HAVING count(*) > 1) AS d"),
            {"tag": "record:record:state_change"}).scalar() or 0
        claim_events = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.details["reason"].as_string() == "claimed")) or 0
        wrong_office = session.execute(text(
            "SELECT count(*) FROM record r JOIN office o ON o.id = r.office_id "
            "WHERE r.state = 'printing' AND o.code <> :code"), {"code": OFFICE}).scalar() or 0
    double = (len(claimed) - len(set(claimed))) + twice_audit
    return {
        "claims": len(claimed),
        "claims_per_s": len(claimed) / elapsed,
        "p50_ms": pct(latencies, 0.50) * 1000,
        "p95_ms": pct(latencies, 0.95) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "client_cpu_ms": client_cpu / max(1, len(claimed)) * 1000,
        "double": double,
        "db_printing": printing,
        "db_claim_events": claim_events,
        "wrong_office": wrong_office,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=200)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--claims-per-worker", type=int, default=500)
    ap.add_argument("--paced-rate", type=float, default=2.0,
                    help="claims/s per station in the paced run (a real station: ~0.05)")
    ap.add_argument("--load", default="25,50,75",
                    help="open-loop runs at these percentages of the back-to-back throughput "
                         "(latency against load; 0 runs none)")
    ap.add_argument("--load-seconds", type=float, default=10.0)
    ap.add_argument("--bursts", type=int, default=40,
                    help="rounds in which every station claims at the same instant")
    ap.add_argument("--pg", default=os.environ.get("PRINTSRV_TEST_POSTGRES_URL", DEFAULT_PG))
    ap.add_argument("--skip-cards", action="store_true")
    ap.add_argument("--skip-claims", action="store_true")
    args = ap.parse_args()
    for key in [k for k in os.environ if k.startswith("PRINTSRV_")] + ["SOFTHSM2_CONF"]:
        os.environ.pop(key, None)

    reference = machine_reference()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-station-") as tmp:
        instance = Path(tmp)
        if not args.skip_cards:
            for label, url in (("SQLite", ""), ("PostgreSQL", None)):
                pg_url = create_pg_database(args.pg) if url is None else None
                try:
                    times = card_overhead(instance, pg_url or "", args.cards)
                finally:
                    if pg_url:
                        drop_pg_database(args.pg, pg_url)
                for key, what in (("total", "per card, incl. card-face render"),
                                  ("no_render", "per card, excl. render"),
                                  ("render", "  of which: render"),
                                  ("claim", "  of which: T1 claim+reserve+journal"),
                                  ("issue", "  of which: T4 issue"),
                                  ("cpu", "  station process CPU per card")):
                    v = times[key]
                    rows.append((f"{label}: {what}", f"{args.cards} cards",
                                 f"p50 {pct(v, .5) * 1000:6.1f}  p95 {pct(v, .95) * 1000:6.1f}  "
                                 f"p99 {pct(v, .99) * 1000:6.1f} ms"))
        if not args.skip_claims:
            url = create_pg_database(args.pg)
            try:
                t = time.perf_counter()
                seed_queue(url, args.records)
                seeded = time.perf_counter() - t
                paced = max(20, round(args.paced_rate * 30))  # 30 s of claims
                runs = [("1 process, back to back", claims(url, 1, args.claims_per_worker)),
                        (f"paced {args.paced_rate:g}/s each",
                         claims(url, args.workers, paced, args.paced_rate)),
                        (f"{args.bursts} bursts (all at once)",
                         claims(url, args.workers, args.bursts, bursts=True)),
                        ("back to back (saturation)",
                         claims(url, args.workers, args.claims_per_worker)),
                        ("back to back, bare driver, one round trip (the floor)",
                         claims(url, args.workers, args.claims_per_worker,
                                worker=floor_worker))]
                capacity = runs[3][1]["claims_per_s"]
                for percent in [float(x) for x in args.load.split(",") if float(x) > 0]:
                    total = capacity * percent / 100
                    per_worker = total / args.workers
                    runs.append((
                        f"open loop at {percent:g}% of back to back ({total:,.0f} claims/s)",
                        claims(url, args.workers, max(10, round(per_worker * args.load_seconds)),
                               per_worker)))
            finally:
                drop_pg_database(args.pg, url)
            for how, r in runs:
                who = how if how.startswith("1 process") else f"{args.workers} processes, {how}"
                rows.append((f"PostgreSQL claims, {who}",
                             f"{args.records:,} queued (seeded in {seeded:.0f} s)",
                             f"{r['claims']:,} claims, {r['claims_per_s']:,.0f} claims/s"))
                rows.append(("  claim latency (begin..commit)", "",
                             f"p50 {r['p50_ms']:.1f}  p95 {r['p95_ms']:.1f}  "
                             f"p99 {r['p99_ms']:.1f}  max {r['max_ms']:.1f} ms"))
                rows.append(("  station process CPU per claim", "",
                             f"{r['client_cpu_ms']:.2f} ms"))
                rows.append(("  double claims (DB: audit + leases)", "",
                             f"{r['double']} (printing rows {r['db_printing']:,}, claim events "
                             f"{r['db_claim_events']:,}, other office {r['wrong_office']})"))
    width = max(len(a) for a, _, _ in rows)
    mid = max(len(b) for _, b, _ in rows)
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the end; machine reference "
          f"(5M-step Python loop, best of 3) {reference * 1000:.0f} ms")
    print(f"{'measure'.ljust(width)}  {'load'.ljust(mid)}  result")
    print("-" * (width + mid + 60))
    for a, b, c in rows:
        print(f"{a.ljust(width)}  {b.ljust(mid)}  {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
