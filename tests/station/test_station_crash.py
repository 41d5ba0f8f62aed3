"""kill -9 the station at random points, restart, repeat: the ledger always balances, no record
is issued twice or lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from printsrv.db import unit_of_work
from printsrv.models import AuditEvent
from tests.station.conftest import counts, ledger_problems, stock_station

ROOT = Path(__file__).resolve().parents[2]


def _config_file(settings: Any, tmp: Path, cards: Path) -> Path:
    path = tmp / "station.toml"
    path.write_text(
        f'instance_dir = "{settings.instance_dir}"\n'
        f'database_url = "{settings.sqlalchemy_url}"\n'
        "[stations.crash]\n"
        'office = "35.26.01"\nprofile = "virtual-ipp-card"\n'
        f'printer = "directory"\ndirectory = "{cards}"\nencoder = "fake"\n'
        "poll_interval = 0.05\nmax_failures = 1000\nfake_chip_seconds = 0.15\n"
        "print_seconds = 0.2\n"
    )
    return path


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTSRV_")}
    env["PRINTSRV_CONFIG"] = str(config)
    return env


def _ledger_check(env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "run.py", "ledger", "check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_kill9_at_random_points(settings: Any, tmp_path: Path) -> None:
    records = 16
    stock_station(settings, tmp_path, records=records, blanks=60, name="crash")
    env = _env(_config_file(settings, tmp_path, tmp_path / "cards"))
    rng = random.Random(int(os.environ.get("CRASH_SEED", "5")))
    kills = 0
    for _ in range(25):
        proc = subprocess.Popen(
            [sys.executable, "run.py", "station", "crash", "--until-empty"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 2.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        assert ledger_problems(settings) == []
        _ledger_check(env)
        if counts(settings).get("issued") == records:
            break
    final = subprocess.run([sys.executable, "run.py", "station", "crash", "--until-empty",
                            "--operator", "budi"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-2000:]
    assert counts(settings) == {"issued": records}
    with unit_of_work(settings) as session:  # the last run's cards name its operator
        start = session.scalars(select(AuditEvent).where(
            AuditEvent.tag == "station:station:start").order_by(AuditEvent.seq.desc())).first()
        assert start is not None and start.details["operator"] == "budi"
    assert ledger_problems(settings) == []
    _ledger_check(env)
    assert kills >= 3
    with unit_of_work(settings) as session:
        recovered = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.tag == "station:card:recover"))
    print(f"{kills} kills, {recovered} card jobs recovered")
