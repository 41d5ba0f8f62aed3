"""Command line of ``run.py``.

Each module in :mod:`printsrv.commands` contributes sub-commands through a
``register(subparsers)`` function; each sub-command sets ``func(args) -> int`` as its handler.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from printsrv import __version__, commands
from printsrv.errors import PrintSrvError


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="run.py", description="ktp-printsrv: e-KTP card personalization and print server"
    )
    parser.add_argument("--version", action="version", version=f"ktp-printsrv {__version__}")
    parser.add_argument(
        "--config", help="TOML settings file (default: $PRINTSRV_CONFIG or var/printsrv.toml)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with the handler's status."""
    os.umask(0o077)  # the instance holds personal data and keys: nothing we create is shared
    parser = build_parser()
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
