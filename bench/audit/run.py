"""Benchmark: ``run.py audit verify`` on a log of 1,000,000 events (goal ≥ 200,000 events/s).

    .venv/bin/python bench/audit/run.py [--events 1000000] [--postgres URL] [--no-postgres]

For each backend a fresh database (SQLite in a temporary folder, PostgreSQL a database created
and dropped here) is filled with a log of five chains (main and four stations). The first
2,000 events are written one by one through the project's writer, :func:`printsrv.audit.record`;
the rest are bulk-built the same way ``record`` builds an event on SQLite — the hash from
:func:`printsrv.audit.event_hash`, the details stored as :func:`printsrv.audit.canonical_json`,
inserted with ``record``'s own statement, the chain heads moved to the last event — only many
rows per statement (``record`` on PostgreSQL hashes in SQL; ``verify`` checks that the SQL and
Python hashes agree, tests/foundation/test_audit_sql_hash.py). The verify run must say OK: it
recomputes every hash, so a bulk row that differed from what ``record`` writes would fail it.

Timed: the whole ``run.py audit verify`` process (start-up, reading every event from the
database, hashing, the signed checkpoints), best of ``--runs``; beside it the floor: the same
rows read with a plain cursor and only SHA-256 over the same bytes, no checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import JSON, Text, bindparam, cast, create_engine, insert, text, update  # noqa: E402

from printsrv import audit, schema  # noqa: E402
from printsrv.config import Settings, load_settings  # noqa: E402
from printsrv.db import engine_for, unit_of_work  # noqa: E402
from printsrv.keys import init_token  # noqa: E402
from printsrv.models import AuditEvent, AuditHead  # noqa: E402

GOAL = 200_000
CHAINS = [audit.MAIN_CHAIN, *(audit.station_chain(f"st-{n}") for n in range(1, 5))]
TAGS = ["record:record:state_change", "record:media:decrypt", "intake:record:import",
        "station:card:fate", "station:card:print"]
THROUGH_RECORD = 2_000
BULK = 10_000


# On PostgreSQL ``record`` writes through one statement that hashes in SQL; rows here go in
# with the same columns and the canonical details text cast to json (stored verbatim).
_PG_INSERT = insert(AuditEvent.__table__).values(
    details=cast(bindparam("details_text", type_=Text), JSON)
)


def _details(i: int) -> dict[str, object]:
    return {"record_id": 100_000 + i, "request_id": f"REQ-{i:08d}", "state": "printed",
            "office": "35.05.01", "note": "Kab. Blitar — Sananwetan" if i % 7 == 0 else None,
            "panels": {"ymc": i % 250, "k": i % 500}}


def build(settings: Settings, events: int) -> None:
    """The log: ``THROUGH_RECORD`` events through ``record``, the rest bulk-built."""
    for i in range(THROUGH_RECORD):
        with unit_of_work(settings, audit_chain=CHAINS[i % len(CHAINS)]) as s:
            audit.record(s, TAGS[i % len(TAGS)], actor="bench", office_code="35.05.01",
                         subject=f"REQ-{i:08d}", details=_details(i))
    with unit_of_work(settings) as s:
        heads = {h.chain: [h.last_seq, h.last_hash] for h in s.query(AuditHead)}
    start = datetime.now(UTC)
    i = THROUGH_RECORD
    while i < events:
        rows = []
        for i in range(i, min(i + BULK, events)):  # noqa: B020
            chain = CHAINS[i % len(CHAINS)]
            seq, prev = heads[chain][0] + 1, heads[chain][1]
            at = start + timedelta(microseconds=i * 997)
            tag, subject = TAGS[i % len(TAGS)], f"REQ-{i:08d}"
            details = audit.canonical_json(_details(i))
            digest = audit.event_hash(chain, seq, at, tag, "bench", "35.05.01", subject,
                                      json.loads(details), prev)
            rows.append({"chain": chain, "chain_seq": seq, "at": at, "tag": tag,
                         "actor": "bench", "office_code": "35.05.01", "subject": subject,
                         "details_text": details, "prev_hash": prev, "hash": digest})
            heads[chain] = [seq, digest]
        i += 1
        with unit_of_work(settings) as s:
            conn = s.connection()
            conn.execute(audit._INSERT_EVENT if conn.dialect.name == "sqlite" else _PG_INSERT,
                         rows)
            for chain, (seq, digest) in heads.items():
                s.execute(update(AuditHead).where(AuditHead.chain == chain)
                          .values(last_seq=seq, last_hash=digest))
        print(f"\r  built {i:,} events", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


_RAW = ("SELECT seq, chain_seq, at, tag, actor, office_code, subject, {details}, prev_hash, hash"
        " FROM audit_event WHERE chain = {p} AND chain_seq > {p} ORDER BY chain_seq LIMIT {p}")


def floor(url: str) -> float:
    """Seconds to read every event's stored columns with a plain cursor, in the same chunks,
    and SHA-256 their text joined (no canonical JSON, no checks): the floor of any verify."""
    engine = engine_for(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        sql = _RAW.format(details="details::text" if pg else "details", p="%s" if pg else "?")
        cursor = conn.connection.dbapi_connection.cursor()
        for chain in CHAINS:
            last = 0
            while True:
                cursor.execute(sql, (chain, last, 20_000))
                rows = cursor.fetchall()
                if not rows:
                    break
                for row in rows:
                    hashlib.sha256("|".join(map(str, row)).encode()).hexdigest()
                last = rows[-1][1]
        cursor.close()
    return time.perf_counter() - t0


def verify_process(env: dict[str, str], runs: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of that process, from ``os.wait4``) of
    the fastest of ``runs`` whole ``run.py audit verify`` processes."""
    best = (float("inf"), 0.0)
    for _ in range(runs):
        with tempfile.TemporaryFile() as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "audit", "verify"],
                                    env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t0
            out.seek(0)
            said = out.read().decode(errors="replace")
        if os.waitstatus_to_exitcode(status) != 0 or "audit chain OK" not in said:
            raise SystemExit(f"audit verify failed:\n{said[-3000:]}")
        best = min(best, (seconds, usage.ru_utime + usage.ru_stime))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    admin, pg_name = None, None
    try:
        backends = [("SQLite", f"sqlite:///{work / 'printsrv.db'}")]
        if not args.no_postgres:
            pg_name = f"ktp_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
            backends.append(("PostgreSQL", args.postgres.rsplit("/", 1)[0] + f"/{pg_name}"))
        init_token(load_settings(overrides={"instance_dir": work}))  # the audit signer's key
        results = []
        for label, url in backends:
            settings = load_settings(overrides={"instance_dir": work, "database_url": url})
            schema.upgrade(settings)
            t0 = time.perf_counter()
            build(settings, args.events)
            print(f"{label}: built {args.events:,} events in {time.perf_counter() - t0:.0f} s"
                  " (not timed)", file=sys.stderr)
            env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(work),
                   "PRINTSRV_DATABASE_URL": url}
            env.pop("PRINTSRV_CONFIG", None)
            seconds, cpu = verify_process(env, args.runs)
            results.append((label, cpu, seconds, floor(url)))
            engine_for(url).dispose()
        print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPU(s); load average "
              + " ".join(f"{v:.2f}" for v in os.getloadavg())
              + f"; best of {args.runs}")
        print("\n| backend | events | `run.py audit verify` s | events/s | its CPU s "
              "| events per CPU s | SHA-256 floor s | floor events/s "
              f"| goal ≥ {GOAL:,}/s |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|:-:|")
        for label, cpu, seconds, floor_s in results:
            rate = args.events / seconds
            print(f"| {label} | {args.events:,} | {seconds:.2f} | {rate:,.0f} | {cpu:.2f} "
                  f"| {args.events / cpu:,.0f} | {floor_s:.2f} | {args.events / floor_s:,.0f} "
                  f"| {'yes' if rate >= GOAL else 'NO'} |")
        print("(CPU s: the verify process only; on PostgreSQL the server's own work is not in it)")
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
