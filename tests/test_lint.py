"""The code base stays ruff-clean and passes mypy (the device libraries strictly, the
application with every definition typed: ``[tool.mypy]`` in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from printsrv import PROJECT_ROOT


def test_ruff_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_device_libraries_and_application() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as f:
        assert tomllib.load(f)["tool"]["mypy"]["files"] == ["chip", "printers", "printsrv"]


def test_device_libraries_never_import_the_application() -> None:
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for package in ("chip", "printers")
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if "import printsrv" in path.read_text() or "from printsrv" in path.read_text()
    ]
    assert offenders == []
