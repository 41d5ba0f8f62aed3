"""Benchmark: records/s importing a signed 10,000-record batch on SQLite and PostgreSQL.

    .venv/bin/python bench/intake/run.py [--count 10000] [--postgres URL] [--no-postgres]

Each backend gets a fresh database; the batch is generated once (not timed). The import is the
full pipeline: signature and chain, every hash, every record validated, every photo and
signature fully decoded, every FMR parsed, media encrypted, one transaction.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import create_engine, text

from printsrv import schema
from printsrv.config import load_settings
from printsrv.intake.demo import write_demo_batch
from printsrv.intake.pipeline import import_batch
from printsrv.keys import create_demo_registry_pki, init_token

GOAL = 500.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # ~350 MB per run otherwise
    settings = load_settings(overrides={"instance_dir": work})
    init_token(settings)
    create_demo_registry_pki(settings.keys_dir)
    batch = work / "batch"
    t0 = time.perf_counter()
    write_demo_batch(settings, args.count, batch, seed=42, batch_id="BENCH-0001")
    print(f"generated {args.count} records in {time.perf_counter() - t0:.1f} s (not timed)\n")

    backends = [("SQLite", f"sqlite:///{work / 'bench.db'}")]
    admin = None
    if not args.no_postgres:
        name = f"ktp_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        backends.append(("PostgreSQL", args.postgres.rsplit("/", 1)[0] + f"/{name}"))

    rows = []
    for label, url in backends:
        s = load_settings(overrides={"instance_dir": work, "database_url": url})
        schema.upgrade(s)
        t0 = time.perf_counter()
        result = import_batch(s, batch)
        elapsed = time.perf_counter() - t0
        if not result.accepted:
            raise SystemExit(f"{label}: batch rejected: {[str(p) for p in result.problems[:5]]}")
        rows.append((label, result.imported, elapsed, result.imported / elapsed))
    if admin is not None:
        from printsrv.db import engine_for

        engine_for(backends[-1][1]).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    print(f"| backend    | records | seconds | records/s | goal ≥ {GOAL:.0f}/s |")
    print("|------------|--------:|--------:|----------:|:---------:|")
    for label, count, elapsed, rate in rows:
        ok = "yes" if rate >= GOAL else "NO"
        print(f"| {label:<10} | {count:>7} | {elapsed:>7.1f} | {rate:>9.0f} | {ok:^9} |")
    backlog = 120_000 / min(r[3] for r in rows)
    print(f"\n120,000-record backlog at the slower rate: {backlog / 60:.1f} min (goal < 4 min)")


if __name__ == "__main__":
    main()
