"""Kannel for tests, the benchmark and the demo: bearerbox + smsbox + the fake SMSC, no modem.

Each :class:`KannelStack` runs its own processes on free loopback ports with its own
configuration folder, so parallel runs never share a gateway. The fake SMSC (``fakesmsc`` from
Debian's ``kannel-extras``) prints every message the bearerbox hands it; :meth:`received` parses
that, and the bearerbox answers each with the SMSC's acknowledgement and a delivery report
(report types 8 and 1), which Kannel sends to the ``dlr-url`` of the message.

    with KannelStack() as kannel:
        settings = kannel.sms_settings(callback_url="http://127.0.0.1:8080/api/sms/report")
        ...
        kannel.received()   # [Received(sender, to, text), ...]
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

FAKESMSC: Final = Path("/usr/lib/kannel/test/fakesmsc")
REQUIRED: Final = ("bearerbox", "smsbox")
USERNAME: Final = "printsrv"
PASSWORD: Final = "rahasia-uji"

class StackError(RuntimeError):
    """Kannel would not start (a missing package, a port that never opened)."""


_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>$")


def missing_tools() -> list[str]:
    """The Kannel programs this machine lacks (Debian packages kannel and kannel-extras)."""
    missing = [tool for tool in REQUIRED if shutil.which(tool) is None]
    if not FAKESMSC.exists():
        missing.append(str(FAKESMSC))
    return missing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{proc.args!r} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise StackError(f"port {port} not open after {timeout} s: {log.read_text()[-2000:]}")


@dataclass(frozen=True)
class Received:
    """One message as the fake SMSC got it."""

    sender: str
    to: str
    text: str


class KannelStack:
    """bearerbox, the fake SMSC and smsbox, started in that order and stopped in reverse."""

    def __init__(self, *, log_level: int = 1) -> None:
        self.log_level = log_level
        self.dir = Path(tempfile.mkdtemp(prefix="ktp-kannel-"))
        self.admin_port, self.box_port = _free_port(), _free_port()
        self.smsc_port, self.sendsms_port = _free_port(), _free_port()
        self._procs: list[subprocess.Popen[Any]] = []
        self._smsc_out = self.dir / "fakesmsc.out"

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def sms_settings(self, **extra: Any) -> dict[str, Any]:
        """The ``[sms]`` settings that send through this gateway."""
        return {"backend": "kannel", "url": self.sendsms_url, "username": USERNAME,
                "password": PASSWORD, "sender": "DUKCAPIL", **extra}  # fmt: skip

    def _config(self) -> str:
        return f"""
group = core
admin-port = {self.admin_port}
admin-password = {PASSWORD}
admin-interface = 127.0.0.1
smsbox-port = {self.box_port}
box-allow-ip = "127.0.0.1"
admin-allow-ip = "127.0.0.1"
log-level = {self.log_level}
log-file = "{self.dir}/bearerbox.log"
dlr-storage = internal
store-type = file
store-location = "{self.dir}/store"

group = smsc
smsc = fake
smsc-id = fake
port = {self.smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-level = {self.log_level}
log-file = "{self.dir}/smsbox.log"
http-request-retry = 3

group = sendsms-user
username = {USERNAME}
password = {PASSWORD}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
text = "No service"
"""

    def _spawn(self, args: list[str], out: Path, **kw: Any) -> subprocess.Popen[Any]:
        with out.open("ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, **kw)  # fmt: skip
        self._procs.append(proc)
        return proc

    def start(self) -> KannelStack:
        missing = missing_tools()
        if missing:
            raise StackError(f"Kannel is missing: {', '.join(missing)} (apt-get install "
                               "kannel kannel-extras)")  # fmt: skip
        conf = self.dir / "kannel.conf"
        conf.write_text(self._config())
        bearer = self._spawn(["bearerbox", str(conf)], self.dir / "bearerbox.out")
        _wait_port(self.box_port, 15, bearer, self.dir / "bearerbox.out")
        # fakesmsc stays in "interactive mode" while its standard input is open.
        self._spawn([str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.smsc_port), "-i", "0"],
                    self._smsc_out, stdin=subprocess.PIPE)  # fmt: skip
        smsbox = self._spawn(["smsbox", str(conf)], self.dir / "smsbox.out")
        _wait_port(self.sendsms_port, 15, smsbox, self.dir / "smsbox.out")
        self._wait_smsc_online(15)
        return self

    def _wait_smsc_online(self, timeout: float) -> bool:
        """Wait until the bearerbox says its link to the fake SMSC is online (a message handed
        over before that waits for the SMSC's reconnect); False when it never said so."""
        import urllib.request

        url = f"http://127.0.0.1:{self.admin_port}/status.txt?password={PASSWORD}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    status = answer.read().decode(errors="replace")
                if "SMSC connections:" in status and "(online" in status.split(
                        "SMSC connections:", 1)[1]:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def received(self) -> list[Received]:
        """Every message the fake SMSC has got so far, in order."""
        if not self._smsc_out.exists():
            return []
        out = []
        for line in self._smsc_out.read_text(errors="replace").splitlines():
            match = _GOT.search(line)
            if match:
                sender, to, _kind, text = match.groups()
                out.append(Received(sender, to, text))
        return out

    def wait_received(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until the fake SMSC has got ``count`` messages; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.received()

    def logs(self, tail: int = 1500) -> str:
        """The end of every log, for a failing test's message."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
                         for p in sorted(self.dir.glob("*.log")))

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdin:
                proc.stdin.close()
        self._procs.clear()

    def __enter__(self) -> KannelStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
