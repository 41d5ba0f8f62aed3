"""Command line of ``run.py``.

The parser is lazy: :data:`COMMANDS` is the one table of top-level commands, each naming the
``module:function`` that registers it and the one-line help shown by ``run.py --help``. Only the
chosen command's module is imported (and registers its full parser); every other command is a
cheap placeholder that only lists its help. ``run.py --help`` thus imports no command module, no
database layer, no Flask and no imaging library.

Adding a command: write ``register(subparsers)`` in a module of :mod:`printsrv.commands` (it calls
``subparsers.add_parser(NAME, ...)`` and sets ``func(args) -> int`` as the handler), then add one
row ``NAME: Command("printsrv.commands.MODULE:register", "help")`` below. One module may register
several commands (one row each). ``tests/foundation/test_cli.py`` fails when a module registers a
command that has no row, or a row points at the wrong module. Keep command modules cheap to import:
heavy imports (SQLAlchemy models, Flask, PIL, the chip simulator) go inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from printsrv import __version__
from printsrv.errors import PrintSrvError


@dataclass(frozen=True)
class Command:
    """A top-level command: where its parser is registered, and its one-line help."""

    register: str  # "package.module:function", called with the sub-parsers action
    help: str


COMMANDS: dict[str, Command] = {
    "audit": Command("printsrv.commands.foundation:register", "the audit log"),
    "backup": Command("printsrv.commands.operations:register",
                      "write a consistent, encrypted backup of the database and the key folder"),
    "chip": Command("printsrv.commands.chip:register",
                    "personalize and verify e-KTP chips (PC/SC)"),
    "demo": Command("printsrv.commands.demo:register",
                    "run a complete virtual station (database, chip simulator, CUPS printer, web)"),
    "demo-data": Command("printsrv.commands.foundation:register",
                         "write a signed batch of synthetic residents"),
    "doctor": Command("printsrv.commands.operations:register",
                      "check a running installation (database, token, readers, printers, disk, "
                      "clock, audit log); exit 1 on any failure"),
    "hold": Command("printsrv.commands.operations:register",
                    "print holds: list them, or acknowledge them (supervisor)"),
    "ikd": Command("printsrv.commands.ikd:register",
                   "IKD (digital KTP) activations: import the daily CSV, the month beside the "
                   "blanks"),
    "import": Command("printsrv.commands.foundation:register",
                      "import a signed batch (directory or .zip)"),
    "init": Command("printsrv.commands.foundation:register",
                    "create or upgrade the database; create development keys"),
    "keys": Command("printsrv.commands.keys:register",
                    "document-signer rotation, the CSCA's CRL, personalization key import"),
    "ledger": Command("printsrv.commands.ledger:register",
                      "blank and ribbon stock: receive, move, report, check"),
    "node": Command("printsrv.commands.sync:register",
                    "this instance as a kecamatan node: enroll with the kabupaten server, sync, "
                    "status"),
    "nodes": Command("printsrv.commands.sync:register",
                     "kecamatan nodes of this server: list, approve, revoke, recall, lost, "
                     "settle"),
    "notify": Command("printsrv.commands.notify:register",
                      "pickup SMS: status, send what is due, run the sender"),
    "outbox": Command("printsrv.commands.outbox:register",
                      "the event outbox: consumers and their lag, register, prune"),
    "records": Command("printsrv.commands.records:register",
                       "records: shred biometrics after the reprint window"),
    "render": Command("printsrv.commands.render:register",
                      "render card faces (one record, the sample, or the queue) to PDF or PNG"),
    "restore": Command("printsrv.commands.operations:register",
                       "restore a backup into an empty instance; stations stay held until a "
                       "supervisor acknowledges ('hold acknowledge')"),
    "serve": Command("printsrv.commands.web:register",
                     "serve the web app and the API (gunicorn, one worker per CPU up to 4; "
                     "waitress with --workers 1)"),
    "station": Command("printsrv.commands.station:register",
                       "run a print station, resolve its interrupted cards, show station status"),
    "suket": Command("printsrv.commands.suket:register",
                     "Surat Keterangan pengganti KTP-el: issue (no blanks), verify its QR code, "
                     "list"),
    "token": Command("printsrv.commands.web:register", "API tokens"),
    "user": Command("printsrv.commands.web:register", "user accounts"),
}  # fmt: skip


def chosen_command(argv: Sequence[str]) -> str | None:
    """The top-level command named in ``argv`` (the first word that is not a global option)."""
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            next(args, None)
        elif arg in ("--", "-") or not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: full for ``command`` (its module imported), placeholders for the others.

    ``command=None`` builds the listing only; :func:`build_full_parser` registers everything.
    """
    return _parser(lambda name: name == command)


def build_full_parser() -> argparse.ArgumentParser:
    """The parser with every command registered (imports every command module; for tests)."""
    return _parser(lambda name: True)


def _parser(full: Callable[[str], bool]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py", description="ktp-printsrv: e-KTP card personalization and print server"
    )
    parser.add_argument("--version", action="version", version=f"ktp-printsrv {__version__}")
    parser.add_argument(
        "--config", help="TOML settings file (default: $PRINTSRV_CONFIG or var/printsrv.toml)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in dict.fromkeys(c.register for name, c in COMMANDS.items() if full(name)):
        module, _, function = register.partition(":")
        getattr(importlib.import_module(module), function)(sub)
    for name, command in COMMANDS.items():
        if name not in sub.choices:  # a placeholder: listed with its help, never run
            sub.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with the handler's status."""
    os.umask(0o077)  # the instance holds personal data and keys: nothing we create is shared
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(chosen_command(argv))
    args = parser.parse_args(argv)
    if args.config:
        os.environ["PRINTSRV_CONFIG"] = args.config
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    try:
        status = args.func(args)
    except PrintSrvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(status or 0)
