"""``python run.py demo`` on a fresh instance: cards come out, the web answers, Ctrl-C stops
everything and leaves no daemon behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.realstack

ROOT = Path(__file__).resolve().parents[2]
DAEMONS = ("pcscd", "cupsd", "ippeveprinter", "avahi-daemon", "dbus-daemon", "chip.simulator",
           "run.py serve")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(instance: Path) -> dict[str, str]:
    """A clean environment: only this instance folder (no test session token or database)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRINTSRV_") and k != "SOFTHSM2_CONF"}
    env["PRINTSRV_INSTANCE_DIR"] = str(instance)
    return env


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid → (parent pid, state, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], cmd)
    return table


def _descendants(root: int) -> dict[int, str]:
    table = _proc_table()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _state, cmd) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = cmd
                frontier.append(pid)
    return found


def _alive(pid: int, cmd: str) -> bool:
    """Still running as the same program (a zombie counts as gone)."""
    entry = _proc_table().get(pid)
    return entry is not None and entry[1] not in ("Z", "X") and entry[2] == cmd


def _issued(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "run.py", "station", "status", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=False, timeout=60)
    if out.returncode != 0:
        return 0
    try:
        rows = json.loads(out.stdout)
    except ValueError:
        return 0
    return sum(int(r["issued"]) for r in rows if r["name"] == "demo")


def _web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True  # any HTTP answer (a login redirect, 401…) means the server is up
    except OSError:
        return False


def test_demo_makes_cards_and_stops_cleanly(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    env = _env(instance)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "run.py", "demo", "--count", "4", "--port", str(port),
         "--cards-per-minute", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    lines: list[str] = []

    def drain() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    started: dict[int, str] = {}
    try:
        # The device stacks take a machine-wide lock: another test run may hold it a while.
        deadline = time.monotonic() + 600
        issued = 0
        while time.monotonic() < deadline:
            assert proc.poll() is None, "demo exited early:\n" + "\n".join(lines)
            started.update(_descendants(proc.pid))
            issued = _issued(env) if instance.joinpath("printsrv.db").exists() else 0
            if issued >= 4:
                break
            time.sleep(1)
        assert issued >= 4, "\n".join(lines)
        assert _web_answers(port), "\n".join(lines)
        started.update(_descendants(proc.pid))
        daemons = {pid: cmd for pid, cmd in started.items() if any(d in cmd for d in DAEMONS)}
        assert any("ippeveprinter" in c for c in daemons.values()), daemons
        assert any("cupsd" in c for c in daemons.values()), daemons
        assert any("run.py serve" in c for c in daemons.values()), daemons
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, "\n".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    output = "\n".join(lines)
    assert "password" in output and "card 4 issued" in output, output
    assert "chip UID" in output
    # Each issued card's pickup SMS is shown (demo records have a phone 7 times in 10).
    sms_lines = [line for line in lines if "  SMS" in line]
    assert len(sms_lines) >= 4, output
    assert any("KTP-el Anda sudah jadi" in line for line in sms_lines), output
    left = {pid: cmd for pid, cmd in started.items() if _alive(pid, cmd)}
    assert left == {}, f"still running after the demo stopped: {left}"
    check = subprocess.run([sys.executable, "run.py", "ledger", "check"], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=False, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
