"""Benchmark: p95 latency of the queue page with 100,000 records and 20 concurrent clients.

    python bench/web/bench_queue.py [--records 100000] [--clients 20] [--requests 1000]
                                    [--postgres [ADMIN_URL]] [--workers N] [--threads T]

Fills a fresh instance (SQLite by default; with ``--postgres`` a database of its own that it
creates on that server and drops at the end, so a second run starts clean) with synthetic
records by bulk insert, starts
``run.py serve`` on a free port (as ``serve`` does by default: gunicorn with one worker per CPU
up to 4; waitress with ``--workers 1``),
signs 20 operators in and has each request the queue page (first page and a filtered,
keyset-paginated page) as fast as it can. Prints a table; the goal is p95 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
GOAL_MS = 150.0
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-123"


def fill(settings, records: int) -> None:
    from sqlalchemy import insert

    from printsrv import schema
    from printsrv.db import unit_of_work
    from printsrv.models import Batch, Record, RecordState, Role
    from printsrv.web.auth_service import create_user
    from printsrv.web.services import ensure_office

    schema.upgrade(settings)
    with unit_of_work(settings) as s:
        office = ensure_office(s, "35.26.01")
        for i in range(20):
            create_user(s, f"op{i}", Role.OPERATOR, office, PASSWORD, actor="bench")
        batch = Batch(batch_id="BENCH", issuer="BENCH", created_at=datetime.now(UTC),
                      record_count=records, manifest_sha256="0" * 64, signer="bench")
        s.add(batch)
        s.flush()
        office_id, batch_id = office.id, batch.id
    states = [RecordState.QUEUED] * 6 + [RecordState.ISSUED] * 3 + [RecordState.HELD]
    chunk = 10_000
    for start in range(0, records, chunk):
        rows = [
            {
                "request_id": f"PC-352601-BENCH-{n:07d}",
                "batch_id": batch_id,
                "line_no": n,
                "nik": f"352601{n % 280000 + 10100:06d}{n % 9999 + 1:04d}",
                "nama": f"WARGA BENCH {n}",
                "card_type": "KTP-EL",
                "office_id": office_id,
                "state": states[n % len(states)],
                "hold_reason": "bench" if n % len(states) == 9 else None,
                "data": {},
                "failure_count": 0,
            }
            for n in range(start, min(start + chunk, records))
        ]
        with unit_of_work(settings) as s:
            s.execute(insert(Record), rows)
    if settings.is_postgres:
        # Planner statistics, as autovacuum gathers them within a minute of a bulk load: the
        # benchmark measures the server in its steady state, not its first minute.
        from printsrv.db import engine_for

        with engine_for(settings.sqlalchemy_url).connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def own_postgres_database(admin_url: str) -> str:
    """A fresh database on the server of ``admin_url``, dropped when the benchmark exits (also
    after a failure); its URL."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"ktp_bench_web_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        from printsrv.db import engine_for

        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    atexit.register(drop)
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


def login(base: str, user: str):
    import requests

    s = requests.Session()
    page = s.get(f"{base}/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    token = token or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    r = s.post(f"{base}/login", data={"username": user, "password": PASSWORD,
                                       "csrf_token": token.group(1)}, allow_redirects=False)
    assert r.status_code == 302, r.status_code
    return s


def run(base: str, clients: int, total: int) -> tuple[list[float], int, float]:
    sessions = [login(base, f"op{i}") for i in range(clients)]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per = total // clients
    paths = ["/queue", "/queue?state=held", "/queue?state=queued&after=50000"]

    def worker(i: int) -> None:
        nonlocal errors
        s = sessions[i]
        for k in range(per):
            t0 = time.perf_counter()
            r = s.get(base + paths[k % len(paths)])
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(dt)
                errors += r.status_code != 200

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--postgres", nargs="?", const=DEFAULT_PG, default="", metavar="ADMIN_URL",
        help=f"run on PostgreSQL: a fresh database on this server, dropped at the end "
             f"(default {DEFAULT_PG})",
    )
    parser.add_argument("--workers", type=int, default=0,
                        help="server processes (default: serve's, one per CPU up to 4; "
                             "more than 1: gunicorn)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads per server process (default 24, or 8 with gunicorn)")
    args = parser.parse_args()
    from printsrv.commands.web import default_workers

    args.workers = args.workers or default_workers()
    threads = args.threads or (24 if args.workers == 1 else 8)

    from printsrv.config import load_settings

    instance = Path(tempfile.mkdtemp(prefix="bench-web-"))
    atexit.register(shutil.rmtree, instance, ignore_errors=True)
    overrides = {"instance_dir": instance}
    database_url = own_postgres_database(args.postgres) if args.postgres else ""
    if database_url:
        overrides["database_url"] = database_url
    settings = load_settings(overrides=overrides)
    t0 = time.perf_counter()
    fill(settings, args.records)
    fill_s = time.perf_counter() - t0
    port = free_port()
    env = dict(os.environ, PRINTSRV_INSTANCE_DIR=str(instance))
    if database_url:
        env["PRINTSRV_DATABASE_URL"] = database_url
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "serve", "--port", str(port), "--threads",
         str(threads), "--workers", str(args.workers), "--insecure-cookies"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    try:
        wait_for(base + "/login")
        run(base, args.clients, args.clients * 2)  # warm-up
        lat, errors, wall = run(base, args.clients, args.requests)
    finally:
        server.terminate()
        server.wait(10)
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    backend = "postgresql" if settings.is_postgres else "sqlite"
    rows = [
        ("backend", backend),
        ("records", f"{args.records:,}"),
        ("server", f"{'waitress' if args.workers == 1 else 'gunicorn'}: {args.workers} "
                   f"process(es) × {threads} threads"),
        ("cpus", str(os.cpu_count())),
        ("load avg (1 min)", f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"),
        ("fill time", f"{fill_s:.1f} s"),
        ("clients", str(args.clients)),
        ("requests", str(len(lat))),
        ("errors", str(errors)),
        ("throughput", f"{len(lat) / wall:.0f} req/s"),
        ("p50", f"{q[49]:.1f} ms"),
        ("p95", f"{q[94]:.1f} ms"),
        ("p99", f"{q[98]:.1f} ms"),
        ("max", f"{lat[-1]:.1f} ms"),
        ("goal p95", f"≤ {GOAL_MS:.0f} ms: {'MET' if q[94] <= GOAL_MS else 'MISSED'}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}} | value")
    print(f"{'-' * width}-+-{'-' * 24}")
    for k, v in rows:
        print(f"{k:<{width}} | {v}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
