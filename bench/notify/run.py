"""Pickup SMS through Kannel: ``python bench/notify/run.py [--count 10000] [--postgres [URL]]``.

Queues ``--count`` pickup messages in a fresh database (SQLite in a temporary instance, or a
PostgreSQL database the benchmark creates and drops), starts Kannel (bearerbox + smsbox + the
fake SMSC, :mod:`printsrv.devstack.kannel`) and times, in the same run:

1. **ours**: ``run.py notify send-pending``, the command an operator or the daemon runs — the
   whole process: read the due messages, mark them *sending*, hand each to Kannel's
   ``sendsms``, record the answers — until every message is handed over;
2. **bare gateway**: the same number of ``sendsms`` requests from a plain threaded HTTP loop
   with nothing else to do (what Kannel itself takes on this machine);
3. how long until the fake SMSC has received every message of run 1.

Goal: at least 200 messages/s, and the server not the limit (ours close to the bare loop).
Delivery reports are not requested here (no callback URL): ``tests/notify`` covers them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TEXT = ("KTP-el Anda sudah jadi. Ambil di KECAMATAN BANGKALAN mulai Senin 07-12-2026, pukul "
        "08.00-15.00 WIB. Bawa bukti permohonan cetak. Ref {ref}")  # fmt: skip


def _queue(url: str, count: int) -> None:
    from sqlalchemy import insert

    from printsrv.config import load_settings
    from printsrv.db import unit_of_work
    from printsrv.notify.models import Notification, NotificationState

    settings = load_settings(overrides={"database_url": url})
    now = datetime.now(UTC)
    rows = [
        {"message_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "kind": "ready",
         "request_id": f"BENCH-{n:08d}", "office_code": "35.26.01",
         "phone": f"+62812{n:08d}", "text": TEXT.format(ref=f"{n:08d}"),
         "state": NotificationState.PENDING, "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for n in range(count)
    ]  # fmt: skip
    with unit_of_work(settings) as session:
        for start in range(0, count, 2000):
            session.execute(insert(Notification), rows[start : start + 2000])


def _bare(kannel: object, count: int, workers: int) -> float:
    from printsrv.devstack.kannel import PASSWORD, USERNAME

    def send(n: int) -> None:
        query = urllib.parse.urlencode({
            "username": USERNAME, "password": PASSWORD, "from": "DUKCAPIL",
            "to": f"+62813{n:08d}", "text": TEXT.format(ref=f"B{n:07d}"), "charset": "UTF-8",
            "coding": "0"})  # fmt: skip
        with urllib.request.urlopen(f"{kannel.sendsms_url}?{query}", timeout=30) as resp:  # type: ignore[attr-defined]
            resp.read()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, range(count)))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--postgres", nargs="?", const="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="run on a database of its own on this PostgreSQL server")
    args = parser.parse_args()

    from printsrv import schema
    from printsrv.config import load_settings
    from printsrv.devstack.kannel import KannelStack

    work = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    (work / "instance").mkdir()
    admin = None
    db_name = f"bench_notify_{uuid.uuid4().hex[:8]}"
    if args.postgres:
        from sqlalchemy import create_engine, text

        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
        url = args.postgres.rsplit("/", 1)[0] + f"/{db_name}"
    else:
        url = f"sqlite:///{work / 'instance' / 'printsrv.db'}"
    try:
        settings = load_settings(overrides={"instance_dir": work / "instance", "database_url": url})
        schema.upgrade(settings)
        _queue(url, args.count)
        with KannelStack(log_level=2) as kannel:
            sms = kannel.sms_settings()
            (work / "instance" / "printsrv.toml").write_text(
                "[sms]\n" + "".join(f'{k} = "{v}"\n' for k, v in sms.items())
                + "batch = 500\n"
            )
            env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(work / "instance"),
                   "PRINTSRV_DATABASE_URL": url}  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "notify", "send-pending"],
                                  env=env, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
            ours = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-2000:])
            sent = sum(int(line.split(";")[1].split()[0]) for line in proc.stdout.splitlines()
                       if "sent" in line)  # fmt: skip
            got = kannel.wait_received(args.count, timeout=600)
            to_smsc = time.perf_counter() - t0
            bare = _bare(kannel, args.count, workers=8)
            kannel.wait_received(2 * args.count, timeout=600)
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"\n{args.count} pickup messages, {backend}, Kannel 1.4.5 + fakesmsc, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n")
        print("| path | messages | seconds | messages/s | goal ≥ 200/s |")
        print("|---|--:|--:|--:|:-:|")
        for name, n, secs in (
            ("`run.py notify send-pending` (database → Kannel, whole process)", sent, ours),
            ("… until the fake SMSC has them all", len(got), to_smsc),
            ("bare `sendsms` loop, 8 threads (the gateway alone)", args.count, bare),
        ):
            print(f"| {name} | {n} | {secs:.2f} | {n / secs:.0f} | "
                  f"{'yes' if n / secs >= 200 else 'no'} |")
        print(f"\nours / bare gateway: {(sent / ours) / (args.count / bare):.2f}")
    finally:
        if admin is not None:
            from sqlalchemy import text

            from printsrv.db import engine_for

            engine_for(url).dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
