"""The import rules of the layers: the device libraries (``chip/``, ``printers/``) import
neither the application nor each other, and the web app loads no device code (no reader, no
printer, no station daemon) when it is imported."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from printsrv import PROJECT_ROOT

DEVICE_LIBRARIES = ("chip", "printers")


def _imported_packages(path: Path) -> set[str]:
    """Top-level packages ``path`` imports (relative imports stay inside its package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_device_libraries_import_neither_the_application_nor_each_other() -> None:
    offenders = []
    for package in DEVICE_LIBRARIES:
        forbidden = {"printsrv", *DEVICE_LIBRARIES} - {package}
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            for name in sorted(_imported_packages(path) & forbidden):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)} imports {name}")
    assert offenders == []


def test_the_rule_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from printsrv.models import Record\n    import chip.apdu\n")
    assert _imported_packages(source) == {"printsrv", "chip"}


_PROBE = """
import importlib, json, pkgutil, sys
import printsrv.web
for module in pkgutil.iter_modules(printsrv.web.__path__):
    importlib.import_module("printsrv.web." + module.name)
print(json.dumps(sorted(sys.modules)))
"""
FORBIDDEN_IN_WEB = ("chip", "printers", "cups", "smartcard", "printsrv.station.daemon")


def test_importing_the_web_app_loads_no_device_code() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "printsrv.web.views" in loaded and "printsrv.web.stock_views" in loaded
    offenders = [name for name in loaded
                 if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_WEB)]
    assert offenders == []


def test_only_the_cups_adapter_imports_cups() -> None:
    """The station finds a lost job through the printer port (``find_job``); pycups stays
    behind ``printers/cups.py``."""
    offenders = []
    for package in ("printsrv", "printers", "chip"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            if path.relative_to(PROJECT_ROOT).as_posix() == "printers/cups.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n == "cups" or n.startswith("cups.") for n in names):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert offenders == []


def test_operator_requests_are_device_free() -> None:
    """The CLI and the web ask a station for a batch or a resume through a module that loads
    no device library and not the daemon."""
    probe = ("import json, sys, printsrv.station.requests, printsrv.station.journal\n"
             "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    offenders = [name for name in loaded
                 if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_WEB)]
    assert offenders == []


def test_a_cards_fate_has_one_home() -> None:
    """Issue, spoil and release are written once (printsrv/station/fates.py); the daemon,
    recovery and ``station resolve`` call them."""
    homes: dict[str, list[str]] = {}
    station_code = [*(PROJECT_ROOT / "printsrv" / "station").rglob("*.py"),
                    *(PROJECT_ROOT / "printsrv" / "commands").rglob("*.py")]
    for path in sorted(station_code):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and node.name in {
                "issue_card", "spoil_card", "release_card"
            }:
                homes.setdefault(node.name, []).append(path.relative_to(PROJECT_ROOT).as_posix())
    assert homes == {name: ["printsrv/station/fates.py"]
                     for name in ("issue_card", "spoil_card", "release_card")}
