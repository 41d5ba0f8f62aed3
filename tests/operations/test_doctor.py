"""``run.py doctor``: one line per check, exit 1 on any failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from printsrv import PROJECT_ROOT
from printsrv.config import Settings
from printsrv.db import engine_for, unit_of_work


def _doctor(settings: Settings, extra_toml: str = "") -> tuple[int, list[str]]:
    conf = settings.instance_dir.parent / f"doctor-{abs(hash(settings.database_url))}.toml"
    conf.write_text(
        f'instance_dir = "{settings.instance_dir}"\ndatabase_url = "{settings.database_url}"\n'
        + extra_toml
    )
    result = subprocess.run(
        [sys.executable, "run.py", "--config", str(conf), "doctor"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    return result.returncode, result.stdout.splitlines()


def test_a_healthy_instance_passes_every_check(settings: Settings) -> None:
    code, lines = _doctor(settings)
    assert code == 0, lines
    names = [line.split(":")[0].split(None, 1)[1] for line in lines]
    assert names == ["database", "token", "pcscd readers", "printers", "disk", "clock",
                     "audit log", "print holds"]
    assert all(line.startswith("ok") for line in lines)


def test_each_failure_is_named_and_fails_the_run(settings: Settings, tmp_path: Path) -> None:
    from printsrv.backup import add_hold

    with unit_of_work(settings) as session:
        add_hold(session, "restored from a backup", {}, actor="test")
    stations = (
        '[stations.loket9]\noffice = "35.26.01"\ncups_queue = "NoSuchQueue"\n'
        'reader = "No Such Reader 00 00"\nprofile = "virtual-ipp-card"\n'
        f'printer = "cups"\ncups_server = "{tmp_path / "no-cupsd.sock"}"\n'
    )
    code, lines = _doctor(settings, stations)
    failed = {line.split(":")[0][5:] for line in lines if line.startswith("FAIL")}
    assert code == 1
    assert {"pcscd readers", "printers", "print holds"} <= failed, lines


def test_an_unmigrated_database_fails(settings: Settings) -> None:
    engine = engine_for(settings.sqlalchemy_url)
    with engine.begin() as conn:
        old = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        code, lines = _doctor(settings)
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": old})
    assert code == 1
    assert any(line.startswith("FAIL database") and "0001" in line for line in lines)
