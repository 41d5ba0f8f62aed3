#!/usr/bin/env python3
"""Soak the kecamatan sync: run the fault scenario of ``tests/sync/test_node_faults.py`` for
many random seeds (a server on PostgreSQL, two SQLite nodes, a faulty link, a SIGKILLed sync,
the server SIGKILLed and restarted, a node's clock six hours off)
and print how many runs passed, lost or doubled anything, and how long they took.

    .venv/bin/python scripts/soak_node.py            # the 100 seeds of the slow marker
    .venv/bin/python scripts/soak_node.py -k "[105]" # one of them again

It runs ``pytest -m slow`` on the 100-seed test with ``KTP_SOAK=1`` (the default suite skips
it); every failure is a run that broke an
invariant (a record printed twice or not at all at the server, an event not applied exactly
once, ledgers that disagree) or did not recover in time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = [sys.executable, "-m", "pytest", "tests/sync/test_node_faults.py", "-m", "slow",
            "-q", "-p", "no:cacheprovider", "--durations=5", *argv]
    done = subprocess.run(args, cwd=ROOT, env={**os.environ, "KTP_SOAK": "1"})
    print(f"soak: {time.monotonic() - started:.0f} s, pytest exit {done.returncode}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
