"""The instance folder is private: created 0700 with 0600 files (database, WAL, keys,
rejection reports), and ``init`` tightens an existing one and says what it changed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from printsrv import PROJECT_ROOT


def _run(instance: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(instance)}
    env.pop("PRINTSRV_DATABASE_URL", None)
    env.pop("PRINTSRV_CONFIG", None)
    return subprocess.run([sys.executable, "run.py", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _loose(root: Path) -> list[str]:
    return [str(p) for p in [root, *root.rglob("*")]
            if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077]


def test_a_new_instance_is_private_and_init_tightens_an_old_one(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    done = _run(instance, "init")
    assert done.returncode == 0, done.stderr
    batch = tmp_path / "batch"
    assert _run(instance, "demo-data", "--count", "3", "--out", str(batch)).returncode == 0
    assert _run(instance, "import", str(batch)).returncode == 0  # the database written to
    assert (instance / "printsrv.db").exists()
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert _loose(instance) == [], "files or folders others may read"

    (instance / "printsrv.db").chmod(0o644)
    (instance / "keys").chmod(0o755)
    pem = next((instance / "keys").glob("*.pem"))
    pem.chmod(0o644)
    again = _run(instance, "init")
    assert again.returncode == 0, again.stderr
    assert "made private" in again.stdout and "printsrv.db" in again.stdout
    assert _loose(instance) == []
    assert "made private" not in _run(instance, "init").stdout  # nothing left to change
