"""Start-up of the command line: ``python bench/cli/run.py [--runs 15]``.

Wall time of whole ``run.py`` processes (median and min of N, interleaved) for the commands
that do little, against a bare ``python -c pass``: ``--help``, ``render --sample``, ``station
status`` and ``audit verify`` on a fresh database with an empty audit log (SQLite, in a
temporary instance removed at the end). Goal: each within 150 ms of Python's own start-up plus
its own work. The "imports" column is the share of the modules the command loads (from
``-X importtime``, one extra run), the rest is its work and the interpreter.

Bytecode: as installed, each module's ``.pyc`` is written once (to a temporary
``PYTHONPYCACHEPREFIX``, one untimed warm-up run of each command) and read after; with
``--no-bytecode`` every run compiles the project's sources (``PYTHONDONTWRITEBYTECODE=1``,
as some development shells set it; measured before 2026-12-05 10:50 UTC that way).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd=ROOT)  # fmt: skip
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    return seconds


def _import_ms(cmd: list[str], env: dict[str, str]) -> tuple[float, list[str]]:
    """Milliseconds spent importing (top-level entries of ``-X importtime``) and the three
    heaviest top-level packages."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    top: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            # a top-level import (no indentation); the header line has no number
            if not name.startswith("  ") and cumulative.strip().isdigit():
                top[name.strip()] = top.get(name.strip(), 0) + int(cumulative)
    heaviest = sorted(top, key=top.get, reverse=True)[:3]  # type: ignore[arg-type]
    return sum(top.values()) / 1000, [f"{n} {top[n] / 1000:.0f}" for n in heaviest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile the sources in every run (no .pyc written)")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(work / "instance"),
               "PRINTSRV_DATABASE_URL": f"sqlite:///{work / 'instance' / 'printsrv.db'}"}
        env.pop("PRINTSRV_CONFIG", None)
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        # A migrated database with no audit event at all (init would write two).
        subprocess.run([py, "-c", "from printsrv import schema; from printsrv.config import "
                        "load_settings; schema.upgrade(load_settings())"], env=env, cwd=ROOT,
                       check=True)  # fmt: skip
        run_py = [py, str(ROOT / "run.py")]
        commands = {
            "python -c pass": [py, "-c", "pass"],
            "run.py --help": [*run_py, "--help"],
            "run.py render --help": [*run_py, "render", "--help"],
            "run.py render --sample --out card.pdf": [
                *run_py, "render", "--sample", "--out", str(work / "card.pdf")],
            "run.py station status": [*run_py, "station", "status"],
            "run.py audit verify (empty log)": [*run_py, "audit", "verify"],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():  # warm-up, not timed: writes the .pyc files
            _time(cmd, env)
        for _ in range(args.runs):
            for name, cmd in commands.items():  # interleaved: load changes hit all alike
                times[name].append(_time(cmd, env))
        base = statistics.median(times["python -c pass"])
        print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPU(s); median and min "
              f"of {args.runs} runs; {'no bytecode' if args.no_bytecode else '.pyc'}; load average "
              + " ".join(f"{v:.2f}" for v in os.getloadavg()))  # fmt: skip
        header = f"{'command':<40} {'median ms':>9} {'min ms':>7} {'- python':>9} {'imports':>8}"
        print(header + "  heaviest imports (ms)")
        print("-" * (len(header) + 40))
        for name, cmd in commands.items():
            med, low = statistics.median(times[name]) * 1000, min(times[name]) * 1000
            imports, heaviest = _import_ms(cmd, env)
            print(f"{name:<40} {med:>9.0f} {low:>7.0f} {med - base * 1000:>9.0f} "
                  f"{imports:>8.0f}  {', '.join(heaviest)}")  # fmt: skip
    print("goal: each within 150 ms of 'python -c pass' plus the command's own work")


if __name__ == "__main__":
    main()
