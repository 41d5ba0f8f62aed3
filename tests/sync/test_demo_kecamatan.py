"""``run.py demo --kecamatan`` end to end (its short mode): a server, a node, its station, a
link that drops; the node prints offline, catches up, and everything is cleaned up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from printsrv import PROJECT_ROOT
from tests.conftest import DEFAULT_PG


@pytest.mark.parametrize("backend", ["auto", "sqlite"])
def test_the_kecamatan_demo_prints_offline_catches_up_and_cleans_up(
        backend: str, postgres_admin_url: str | None) -> None:
    argv = [sys.executable, str(PROJECT_ROOT / "run.py"), "demo", "--kecamatan", "--count", "3",
            "--offline-seconds", "2", "--print-seconds", "0"]
    if backend == "sqlite":
        argv.append("--sqlite")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          cwd=PROJECT_ROOT)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    if backend == "sqlite" or postgres_admin_url is None:
        assert "kabupaten server database: SQLite" in out
    else:
        assert "kabupaten server database: PostgreSQL, scratch database ktp_demo_" in out
    assert "3 records handed down to the node" in out
    steps = ["link DOWN", "node web app says: Luring sejak", "3 cards printed at the node",
             "the server still sees 3 queued, 0 issued", "link UP again", "caught up in",
             "it sees 3 issued, 0 queued; 0 events pending up", "offline banner gone",
             "summary: records down 3, cards printed offline 3", "cleaned up"]
    positions = [out.find(step) for step in steps]
    assert -1 not in positions, (steps, positions, out)
    assert positions == sorted(positions), out  # in this order
    pending = re.search(r"(\d+) events pending up \(card fates", out)
    assert pending and int(pending[1]) >= 3  # at least one fate per card
    scratch = re.search(r"scratch folder (\S+)", out)
    assert scratch and not Path(scratch[1]).exists()
    name = re.search(r"scratch database (ktp_demo_\w+)", out)
    if name:  # the scratch PostgreSQL database is gone
        admin = create_engine(postgres_admin_url or DEFAULT_PG)
        with admin.connect() as conn:
            left = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": name[1]}).all()
        admin.dispose()
        assert left == []
    assert _processes_of(scratch[1]) == []  # no process of the demo is left


def _processes_of(folder: str) -> list[int]:
    """Processes whose environment names ``folder`` (the demo's instances)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if folder.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
