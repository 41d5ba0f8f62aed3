"""The lazy command line: the table of commands, and what ``run.py`` imports before it works."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printsrv import PROJECT_ROOT, commands
from printsrv.cli import COMMANDS, build_full_parser, build_parser, chosen_command

HEAVY = ("flask", "sqlalchemy", "chip", "PIL", "reportlab", "cryptography", "printsrv.models")


#: Prints the modules loaded when ``run.py`` exits (``-X importtime`` misses the modules loaded
#: by ``importlib.import_module``, as the lazy parser does).
_PROBE = """
import atexit, runpy, sys
atexit.register(lambda: print("MODULES", *sorted(sys.modules), file=sys.stderr))
sys.argv = ["run.py", *sys.argv[1:]]
runpy.run_path("run.py", run_name="__main__")
"""


def _imported(*args: str) -> set[str]:
    """The modules loaded by ``run.py ARGS`` (in a fresh interpreter)."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


def _heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["import", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    names = _imported(*args)
    assert _heavy(names) == []
    assert not any(n.startswith("printsrv.commands.") for n in names if args == ["--help"])


def test_render_sample_imports_no_database_and_no_flask(tmp_path: object) -> None:
    names = _imported("render", "--sample", "--out", f"{tmp_path}/card.pdf")
    assert "printsrv.layout" in names
    assert [n for n in _heavy(names) if n.split(".")[0] in ("flask", "sqlalchemy", "chip")] == []
    assert "printsrv.commands.render" in names
    assert "printsrv.commands.station" not in names


def _imported_in(instance: object, *args: str) -> set[str]:
    """:func:`_imported` against a fresh, migrated instance with an empty audit log."""
    import os

    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(instance),
           "PRINTSRV_DATABASE_URL": f"sqlite:///{instance}/printsrv.db"}
    env.pop("PRINTSRV_CONFIG", None)
    subprocess.run([sys.executable, "-c", "from printsrv import schema; from printsrv.config "
                    "import load_settings; schema.upgrade(load_settings())"],
                   env=env, cwd=PROJECT_ROOT, check=True, timeout=120)
    result = subprocess.run([sys.executable, "-c", _PROBE, *args], env=env, capture_output=True,
                            text=True, timeout=60, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stderr.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


@pytest.mark.parametrize("args", [["station", "status"], ["audit", "verify"]])
def test_database_commands_read_without_the_engine(tmp_path: object,
                                                             args: list[str]) -> None:
    """``station status`` and ``audit verify`` (on an empty log) read with a plain DB-API
    cursor (:mod:`printsrv.rawdb`): not SQLAlchemy or the table classes, nor Flask, the chip
    or the printers."""
    names = _imported_in(tmp_path, *args)
    assert "sqlite3" in names and "printsrv.rawdb" in names  # the probe saw the command's work
    assert [n for n in names if n.split(".")[0] in ("sqlalchemy", "flask", "flask_babel",
                                                    "flask_wtf", "werkzeug", "jinja2", "chip",
                                                    "printers", "cryptography")
            or n in ("printsrv.web.app", "printsrv.models")] == []


def test_render_queued_reads_and_audits_without_the_engine(tmp_path: object) -> None:
    """``render --queued`` reads the records and writes its audit events on a plain DB-API
    connection: its process never loads SQLAlchemy or the table classes (a third of a
    second of start-up that would delay the first card)."""
    names = _imported_in(tmp_path, "render", "--queued", "--out", f"{tmp_path}/cards.pdf")
    assert {"sqlite3", "printsrv.rawdb", "printsrv.batchrender"} <= names
    assert [n for n in names if n.split(".")[0] in ("sqlalchemy", "flask", "chip")
            or n in ("printsrv.models", "printsrv.audit")] == []


def _registered_by(module_name: str) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(module_name).register(sub)
    return set(sub.choices)


def test_every_command_module_is_in_the_table() -> None:
    """A module that registers a command without a row in ``COMMANDS`` (e.g. after a merge)
    would never be reachable; a row naming the wrong module would load the wrong one."""
    for info in pkgutil.iter_modules(commands.__path__):
        module = f"{commands.__name__}.{info.name}"
        if not hasattr(importlib.import_module(module), "register"):
            continue
        for name in _registered_by(module):
            assert name in COMMANDS, f"{module} registers {name!r}: add a row to cli.COMMANDS"
            assert COMMANDS[name].register == f"{module}:register", name


def test_every_row_registers_its_command() -> None:
    for name, command in COMMANDS.items():
        assert name in _registered_by(command.register.partition(":")[0]), name
    sub = next(a for a in build_full_parser()._actions
               if isinstance(a, argparse._SubParsersAction))  # fmt: skip
    assert set(sub.choices) == set(COMMANDS)


def test_listing_shows_every_command_with_its_help() -> None:
    text = build_parser().format_help()
    for name, command in COMMANDS.items():
        assert name in text
        assert command.help.split()[0] in text


@pytest.mark.parametrize(
    ("argv", "chosen"),
    [
        (["render", "--sample", "--out", "x.pdf"], "render"),
        (["--config", "render", "station", "status"], "station"),
        (["--config=x.toml", "audit", "verify"], "audit"),
        (["--help"], None),
        (["no-such-command"], None),
        ([], None),
    ],
)
def test_chosen_command(argv: list[str], chosen: str | None) -> None:
    assert chosen_command(argv) == chosen


def test_a_chosen_command_parses_fully_and_others_stay_placeholders() -> None:
    parser = build_parser("render")
    args = parser.parse_args(["render", "--sample", "--out", "x.pdf"])
    assert args.func.__module__ == "printsrv.commands.render"
    with pytest.raises(SystemExit):  # a placeholder takes no options
        parser.parse_args(["station", "status"])


_WORD = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)


@given(
    prefix=st.sampled_from([[], ["--config", "x.toml"], ["--config=x.toml"],
                            ["--config", "render"]]),
    name=st.sampled_from(sorted(COMMANDS)),
    rest=st.lists(_WORD, max_size=5),
)
def test_chosen_command_finds_the_command_after_global_options(
    prefix: list[str], name: str, rest: list[str]
) -> None:
    assert chosen_command([*prefix, name, *rest]) == name


@given(st.lists(_WORD, max_size=6))
def test_chosen_command_is_a_known_command_or_none(argv: list[str]) -> None:
    assert chosen_command(argv) in (None, *COMMANDS)


def test_station_subcommands_have_their_own_help_and_a_bare_station_explains_itself() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(root / "run.py"), "station", *argv],
                              capture_output=True, text=True, timeout=60, cwd=root)

    status = run("status", "--help")
    assert status.returncode == 0 and status.stdout.startswith("usage: run.py station status")
    assert "--json" in status.stdout and "--max-cards" not in status.stdout
    assert run("resolve", "--help").stdout.startswith("usage: run.py station resolve NAME")
    bare = run()
    assert bare.returncode == 2 and "subcommands: batch, resolve, resume, status" in bare.stdout
    assert "configured stations:" in bare.stdout
