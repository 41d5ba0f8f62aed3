"""Every error a package raises comes from its error root (``printsrv.errors.PrintSrvError``,
``chip.errors.ChipError``, ``printers.errors.PrinterError``), so that the edges (CLI, web,
the station's unit of work) can tell them apart from bugs. A bare builtin exception is raised
only where the allow-list below says why."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

from chip.errors import ChipError, MalformedError
from chip.tlv import parse
from printers.errors import PrinterError
from printsrv import PROJECT_ROOT
from printsrv.errors import InvalidValue, PrintSrvError
from printsrv.localtime import month_bounds, office_zone
from printsrv.web.auth_service import hash_password

BUILTIN_ERRORS = {
    name for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}

#: (file, enclosing function, exception) → why a builtin is right there.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("printsrv/commands/demo.py", "on_signal", "KeyboardInterrupt"):
        "a second Ctrl-C stops at once, as Python's own handler does",
    ("printsrv/station/daemon.py", "handler", "KeyboardInterrupt"):
        "a second signal stops at once, as Python's own handler does",
    ("printsrv/commands/web.py", "_read_password", "SystemExit"):
        "the CLI ends with its message, as argparse does",
    ("printsrv/station/devices.py", "parse_station", "TypeError"):
        "caught in the same function and reported as a ConfigError naming the file, line and key",
    ("printsrv/web/__init__.py", "__getattr__", "AttributeError"):
        "a module's __getattr__ must raise AttributeError (PEP 562)",
    ("printsrv/commands/keys.py", "_serial", "SystemExit"):
        "the CLI ends with its message, as argparse does",
    ("printsrv/commands/keys.py", "_read_component", "SystemExit"):
        "the key ceremony ends with its message, as argparse does",
    ("printsrv/regions.py", "names", "KeyError"):
        "a lookup by code, like a mapping's (its callers catch KeyError)",
    ("printsrv/devstack/cups.py", "printer", "KeyError"):
        "a lookup by name, like a mapping's, in the test and demo harness",
    ("printsrv/layout/template.py", "get", "ValueError"):
        "unreachable (a value kind the parser does not define): a programming error",
}


def _raises(path: Path) -> list[tuple[str, str, int]]:
    """(enclosing function, builtin exception, line) of each ``raise`` of a builtin."""
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                if isinstance(exc, ast.Name) and exc.id in BUILTIN_ERRORS:
                    found.append((function, exc.id, child.lineno))
            visit(child, function)

    visit(ast.parse(path.read_text(), str(path)), "<module>")
    return found


def test_no_bare_builtin_exception_is_raised_outside_the_allow_list() -> None:
    seen: set[tuple[str, str, str]] = set()
    offenders = []
    for package in ("printsrv", "chip", "printers"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = str(path.relative_to(PROJECT_ROOT))
            for function, exc, line in _raises(path):
                key = (name, function, exc)
                seen.add(key)
                if key not in ALLOWED:
                    offenders.append(f"{name}:{line} raise {exc} in {function}()")
    assert offenders == [], "raise the package's error (see printsrv/errors.py, chip/errors.py, "\
        "printers/errors.py) or add a reason to ALLOWED"
    assert set(ALLOWED) <= seen, "an allow-list entry no longer matches any code: remove it"


def test_the_walk_finds_a_bare_raise(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    raise RuntimeError('x')\nraise ValueError\n")
    assert _raises(source) == [("f", "RuntimeError", 2), ("<module>", "ValueError", 3)]


def test_the_roots_still_answer_to_value_error() -> None:
    assert issubclass(InvalidValue, PrintSrvError) and issubclass(InvalidValue, ValueError)
    assert issubclass(MalformedError, ChipError) and issubclass(MalformedError, ValueError)
    with pytest.raises(MalformedError, match=r"^truncated length$"):
        parse(bytes([0x5F, 0x1F]))
    with pytest.raises(InvalidValue, match="not YYYY-MM"):
        month_bounds("2026-13", office_zone("35.26"))
    with pytest.raises(InvalidValue, match="at least 10 characters"):
        hash_password("short")


def test_the_virtual_printer_refuses_an_unknown_fault_with_a_printer_error(
    tmp_path: Path,
) -> None:
    from printers.errors import ControlError
    from printers.virtual.simulator import CardSimulator

    assert issubclass(ControlError, PrinterError)
    simulator = CardSimulator(tmp_path)
    with pytest.raises(ControlError, match="unknown fault 'smoke'"):
        simulator.inject_fault("smoke")
