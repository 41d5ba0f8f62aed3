"""scripts/install.sh and the systemd units: every unit passes ``systemd-analyze verify``, an
install runs ``doctor`` clean as the service user, and an uninstall keeps the data."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from printsrv import PROJECT_ROOT

UNITS = sorted((PROJECT_ROOT / "scripts" / "systemd").iterdir())
SERVICE_USER = "printsrvci"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def _verify(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    station = unit_dir / "printsrv-station@.service"
    instance = unit_dir / "printsrv-station@loket1.service"
    shutil.copyfile(station, instance)  # a template verifies through an instance of it
    try:
        files = sorted(str(p) for p in unit_dir.iterdir() if p.name != station.name)
        return subprocess.run(["systemd-analyze", "verify", *files],
                              capture_output=True, text=True, timeout=120)
    finally:
        instance.unlink()


@needs_systemd_analyze
def test_every_unit_verifies(tmp_path: Path) -> None:
    for unit in UNITS:
        text = unit.read_text()
        for placeholder, value in {"@PREFIX@": str(PROJECT_ROOT), "@STATE_DIR@": str(tmp_path),
                                   "@CONF_DIR@": str(tmp_path), "@BACKUP_DIR@": str(tmp_path)
                                   }.items():
            text = text.replace(placeholder, value)
        (tmp_path / unit.name).write_text(text)
    result = _verify(tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_units_are_hardened_and_restart() -> None:
    for unit in UNITS:
        if unit.suffix != ".service":
            continue
        text = unit.read_text()
        for line in ("User=printsrv", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "PrivateTmp=yes", "CapabilityBoundingSet=", "UMask=0077"):
            assert f"\n{line}\n" in text, f"{unit.name}: {line}"
        if "Type=simple" in text:
            assert "Restart=on-failure" in text, unit.name


@pytest.fixture
def install_root() -> Iterator[Path]:
    # Not under pytest's tmp folder: that one is 0700 and the service user must read the program.
    root = Path(tempfile.mkdtemp(prefix="printsrv-install-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@needs_systemd_analyze
@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root")
def test_install_doctor_uninstall(install_root: Path) -> None:
    env = {
        **os.environ,
        "PREFIX": str(install_root / "opt"),
        "STATE_DIR": str(install_root / "state"),
        "CONF_DIR": str(install_root / "etc"),
        "BACKUP_DIR": str(install_root / "backup"),
        "UNIT_DIR": str(install_root / "units"),
        "SERVICE_USER": SERVICE_USER,
        "SYSTEMCTL": "true",
    }
    env.pop("PRINTSRV_INSTANCE_DIR", None)
    env.pop("PRINTSRV_CONFIG", None)
    script = PROJECT_ROOT / "scripts" / "install.sh"
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    state = install_root / "state"
    assert state.stat().st_mode & 0o777 == 0o700
    assert state.owner() == SERVICE_USER and (state / "printsrv.db").owner() == SERVICE_USER
    assert (install_root / "etc" / "printsrv.env").stat().st_mode & 0o777 == 0o640
    result = _verify(install_root / "units")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr

    def run_py(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", SERVICE_USER, "--", "env",
             f"PRINTSRV_CONFIG={install_root / 'etc' / 'printsrv.toml'}",
             str(install_root / "opt" / ".venv" / "bin" / "python"),
             str(install_root / "opt" / "run.py"), *args],
            input=stdin, capture_output=True, text=True, timeout=300, cwd=state,
        )

    # a production install has no personalization key until the key ceremony
    doctor = run_py("doctor")
    assert doctor.returncode == 1 and "scp03-master" in doctor.stdout, doctor.stdout
    ceremony = run_py("keys", "import-perso", "--components", "2",
                      stdin="404142434445464748494A4B4C4D4E4F\n00112233445566778899AABBCCDDEEFF\n")
    assert ceremony.returncode == 0, ceremony.stdout + ceremony.stderr
    doctor = run_py("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "ok   database" in doctor.stdout and "ok   token" in doctor.stdout

    gone = subprocess.run(["bash", str(script), "--uninstall"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert gone.returncode == 0, gone.stderr
    assert not (install_root / "opt").exists()
    assert not list((install_root / "units").iterdir())
    assert (state / "printsrv.db").exists() and (install_root / "etc" / "printsrv.toml").exists()
