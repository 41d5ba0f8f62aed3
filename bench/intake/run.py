"""Benchmark: importing signed batches through ``run.py import``: records/s and peak memory.

    .venv/bin/python bench/intake/run.py [--counts 10000,100000] [--postgres URL] [--no-postgres]

For each size a batch is generated once with ``demo-data``'s writer (not timed); then for each
backend a fresh database (SQLite in the temporary folder; PostgreSQL a database created and
dropped here) is migrated and the batch imported by a whole ``run.py import`` process: its wall
time and its peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``). The import
is the full pipeline: signature and chain, every hash, every record validated, every photo
decoded (at 1/8 scale: every scan read to its end) and every signature fully decoded, every
FMR parsed, media encrypted, one transaction. Goals: ≥ 500
records/s; peak memory ≤ 300 MiB whatever the size; 120,000 records in ≤ 4 min. Everything is
written under one temporary folder, removed at the end (also on failure).

Peak memory: Linux keeps a child's ``ru_maxrss`` across ``exec``, so it starts at this
process's own resident size when the child is spawned. The batch is therefore generated in a
separate process (generating 100,000 records in this one grew it past 400 MiB, which the
figures before 2026-12-05 11:10 UTC counted as the import's), and this process's size at the
spawn is printed beside the figure: a peak no larger than it would be this process's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from printsrv import schema  # noqa: E402
from printsrv.config import load_settings  # noqa: E402
from printsrv.db import engine_for  # noqa: E402
from printsrv.keys import create_demo_registry_pki, init_token  # noqa: E402

GOAL_RATE, GOAL_MIB = 500.0, 300


# Generate in a separate process: this one must stay small (see the module's docstring).
_GENERATE = (
    "import sys; from pathlib import Path; from printsrv.config import load_settings; "
    "from printsrv.intake.demo import write_demo_batch; w, n, out = sys.argv[1:]; "
    "write_demo_batch(load_settings(overrides={'instance_dir': Path(w)}), int(n), Path(out), "
    "seed=42, batch_id=f'BENCH-{n}')"
)


def _own_mib() -> float:
    """This process's resident size now (a spawned child's ``ru_maxrss`` starts there)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _import(work: Path, url: str, batch: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and the last line of output of ``run.py import``."""
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(work), "PRINTSRV_DATABASE_URL": url}
    env.pop("PRINTSRV_CONFIG", None)
    log = work / "import.log"
    with open(log, "wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "import", str(batch)],
                                env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    said = log.read_text(errors="replace").strip()
    log.unlink()
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{said[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="10000",
                        help="batch sizes, comma-separated (e.g. 10000,100000,120000)")
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    admin = None
    dropped: list[str] = []
    rows = []
    try:
        settings = load_settings(overrides={"instance_dir": work})
        init_token(settings)
        create_demo_registry_pki(settings.keys_dir)
        if not args.no_postgres:
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        for count in (int(c) for c in args.counts.split(",")):
            batch = work / f"batch-{count}"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", _GENERATE, str(work), str(count), str(batch)],
                           cwd=ROOT, check=True)
            print(f"generated {count} records in {time.perf_counter() - t0:.0f} s (not timed)",
                  file=sys.stderr)
            backends = [("SQLite", f"sqlite:///{work / f'bench-{count}.db'}")]
            if admin is not None:
                name = f"ktp_bench_{uuid.uuid4().hex[:8]}"
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                dropped.append(name)
                backends.append(("PostgreSQL", args.postgres.rsplit("/", 1)[0] + f"/{name}"))
            for label, url in backends:
                schema.upgrade(load_settings(overrides={"instance_dir": work,
                                                        "database_url": url}))
                engine_for(url).dispose()
                own = _own_mib()
                seconds, mib, said = _import(work, url, batch)
                print(f"  {label}: {said.splitlines()[0] if said else ''} (this process "
                      f"{own:.0f} MiB at the spawn)", file=sys.stderr)
                rows.append((label, count, seconds, count / seconds, mib))
            shutil.rmtree(batch, ignore_errors=True)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                for name in dropped:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPU(s); load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"\n| backend | records | seconds (whole `run.py import`) | records/s "
          f"(goal ≥ {GOAL_RATE:.0f}) | peak RSS MiB (goal ≤ {GOAL_MIB}) |")
    print("|---|--:|--:|--:|--:|")
    for label, count, seconds, rate, mib in rows:
        print(f"| {label} | {count} | {seconds:.1f} | {rate:.0f} | {mib:.0f} |")
    slowest = min(r[3] for r in rows)
    print(f"\n120,000 records at the slowest rate: {120_000 / slowest / 60:.1f} min (goal ≤ 4 min)")


if __name__ == "__main__":
    main()
