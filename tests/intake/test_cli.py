"""The intake commands as a user runs them: exit codes, messages, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from printsrv import PROJECT_ROOT

RUN = [sys.executable, str(PROJECT_ROOT / "run.py")]


def run(env_dir: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(env_dir)}
    if db:
        env["PRINTSRV_DATABASE_URL"] = db
    return subprocess.run([*RUN, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def fresh_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-instance")
    result = run(path, "init")
    assert result.returncode == 0, result.stderr
    assert "created token" in result.stdout and "revision 0" in result.stdout
    again = run(path, "init")  # idempotent: upgrades, creates nothing twice
    assert again.returncode == 0 and "created" not in again.stdout
    return path


def test_demo_data_import_and_verify(fresh_instance: Path) -> None:
    batch = fresh_instance / "b1.zip"
    assert run(fresh_instance, "demo-data", "--count", "12", "--out", str(batch)).returncode == 0
    result = run(fresh_instance, "import", str(batch), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["accepted"] is True and data["imported"] == 12 and data["problems"] == []
    assert sum(o["records"] for o in data["offices"]) == 12
    assert all(o["name"] and o["code"].count(".") == 2 for o in data["offices"])
    again = fresh_instance / "b1b.zip"
    assert run(fresh_instance, "demo-data", "--count", "5", "--seed", "77", "--out",
               str(again)).returncode == 0
    result = run(fresh_instance, "import", str(again))
    assert result.returncode == 0, result.stderr
    lines = [ln.split() for ln in result.stdout.splitlines() if ln.strip().startswith("office ")]
    assert lines and sum(int(ln[-2]) for ln in lines) == 5  # "office CODE NAME: 5 records"
    verify = run(fresh_instance, "audit", "verify")
    assert verify.returncode == 0 and "OK" in verify.stdout


def test_rejected_batch_exits_nonzero_and_names_the_field(fresh_instance: Path) -> None:
    batch = fresh_instance / "b2"
    assert (
        run(
            fresh_instance, "demo-data", "--count", "3", "--out", str(batch), "--seed", "9"
        ).returncode
        == 0
    )
    (batch / "records.jsonl").write_text((batch / "records.jsonl").read_text() + "{not json\n")
    result = run(fresh_instance, "import", str(batch))
    assert result.returncode == 1
    assert "batch: records.jsonl: SHA-256 does not match the manifest" in result.stderr
    assert "REJECTED" in result.stderr
    result = run(fresh_instance, "import", str(batch), "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 1 and data["accepted"] is False
    assert data["problems"][0]["where"] == "records.jsonl"


def test_missing_batch_is_a_clear_error(fresh_instance: Path) -> None:
    result = run(fresh_instance, "import", str(fresh_instance / "nope"))
    assert result.returncode == 1 and "not found" in result.stderr


def test_audit_verify_fails_on_tampering(fresh_instance: Path, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "t.db"
    url = f"sqlite:///{db}"
    assert run(fresh_instance, "init", db=url).returncode == 0
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit_event SET actor = 'mallory' WHERE seq = 1")
    conn.commit()
    conn.close()
    result = run(fresh_instance, "audit", "verify", db=url)
    assert result.returncode == 1 and "event 1" in result.stderr and "edited" in result.stderr
