"""The CUPS side of the real device stack: cupsd + ippeveprinter card printers, no hardware.

Shared, system-wide daemons (the system D-Bus and avahi-daemon, which ippeveprinter needs even
with ``-r off``) are started only when not already running, under a flock on
``/tmp/ktp-printsrv-cups.lock``, and reference-counted in ``/tmp/ktp-printsrv-cups.json`` so the
last stack out stops what a stack started. Each :class:`CupsStack` runs its *own* ``cupsd`` with
its own config directory, domain socket and TCP port, so parallel test runs never share queues.

    with CupsStack(printers=["Card1"]) as stack:
        printer = stack.open_printer("Card1")         # printers.cups.CupsPrinter
        stack.inject_fault("Card1", "media-jam")
        stack.clear_faults("Card1")
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from printers.cups import CupsPrinter
from printers.profiles import PrinterProfile, get_profile
from printers.virtual.simulator import ATTRIBUTE_FILE, CardSimulator
from printsrv.errors import InvalidValue

LOCK_PATH: Final = Path("/tmp/ktp-printsrv-cups.lock")
SHARED_STATE: Final = Path("/tmp/ktp-printsrv-cups.json")
AVAHI_CONF: Final = Path("/tmp/ktp-printsrv-avahi.conf")
SHARED_LOG_DIR: Final = Path("/tmp/ktp-printsrv-cups-logs")
DBUS_SOCKET: Final = Path("/run/dbus/system_bus_socket")
AVAHI_SOCKET: Final = Path("/run/avahi-daemon/socket")
REQUIRED_TOOLS: Final = (
    "cupsd",
    "ippeveprinter",
    "lpadmin",
    "lpstat",
    "dbus-daemon",
    "avahi-daemon",
)
VIRTUAL_PROFILE: Final = "virtual-ipp-card"
_REPO_ROOT: Final = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG: Final = 1

_AVAHI_CONFIG: Final = """\
[server]
allow-interfaces=lo
use-ipv4=yes
use-ipv6=no
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
disable-publishing=yes
disable-user-service-publishing=yes
[reflector]
enable-reflector=no
"""

#: Children this process started, so that stopping them also reaps them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    """A daemon of the stack failed to start or to become ready."""


def missing_tools() -> list[str]:
    """The programs the stack needs that are not installed (empty: the stack can run)."""
    return [t for t in REQUIRED_TOOLS if shutil.which(t) is None]


# -- process helpers -----------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started us dies (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(
    args: Sequence[str], log: Path, *, tied: bool = False, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a daemon; ``tied`` ones die with this process even if it is killed."""
    if tied:
        kwargs["preexec_fn"] = _die_with_parent
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the test run must not hit the daemons
            **kwargs,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _spawn_detached(args: Sequence[str], log: Path) -> int:
    """Start a shared daemon that outlives this process (not our child); return its PID."""
    shell = subprocess.run(
        ["sh", "-c", 'log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!', "sh",
         str(log), *args],
        capture_output=True, text=True, check=True, start_new_session=True,
    )  # fmt: skip
    return int(shell.stdout.strip())


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM ``pid``, wait, then SIGKILL; our own children are also reaped.

    For a process we did not start, a zombie counts as gone (its parent reaps it).
    """
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        # wait() rather than poll(): a multi-threaded daemon shows as a zombie before its
        # last thread exits, and waitpid(WNOHANG) then still reports it running.
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        return
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _tcp_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A TCP port free on loopback now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- shared daemons: D-Bus and avahi -------------------------------------------------------------


@contextlib.contextmanager
def _shared_lock() -> Iterator[dict[str, Any]]:
    """Hold the flock and yield the shared state, written back on exit."""
    with open(LOCK_PATH, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            try:
                state: dict[str, Any] = json.loads(SHARED_STATE.read_text())
            except (OSError, ValueError):
                state = {}
            state["users"] = [u for u in state.get("users", []) if pid_alive(int(u["pid"]))]
            yield state
            SHARED_STATE.write_text(json.dumps(state))
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _avahi_running() -> bool:
    check = subprocess.run(["avahi-daemon", "--check"], capture_output=True, check=False)
    return check.returncode == 0 and _socket_answers(AVAHI_SOCKET)


def acquire_shared_daemons(token: str, log_dir: Path) -> None:
    """Make sure the system D-Bus and avahi (loopback only, no publishing) run; count us in."""
    with _shared_lock() as state:
        if not _socket_answers(DBUS_SOCKET):
            DBUS_SOCKET.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                DBUS_SOCKET.unlink()  # stale socket of a dead daemon
            pid = _spawn_detached(
                ["dbus-daemon", "--system", "--nofork", "--nopidfile"], log_dir / "dbus.log"
            )
            _wait_until("system D-Bus", lambda: _socket_answers(DBUS_SOCKET))
            state["dbus"] = pid
        if not _avahi_running():
            AVAHI_CONF.write_text(_AVAHI_CONFIG)
            pid = _spawn_detached(
                ["avahi-daemon", "--no-rlimits", "--no-chroot", "-f", str(AVAHI_CONF)],
                log_dir / "avahi.log",
            )
            _wait_until("avahi-daemon", _avahi_running)
            state["avahi"] = pid
        state["users"].append({"pid": os.getpid(), "token": token})


def release_shared_daemons(token: str) -> None:
    """Count us out; the last user stops the daemons a stack started (avahi, then D-Bus)."""
    with _shared_lock() as state:
        state["users"] = [u for u in state["users"] if u["token"] != token]
        if state["users"]:
            return
        for key, name in (("avahi", "avahi-daemon"), ("dbus", "dbus-daemon")):
            pid = state.pop(key, None)
            if pid is not None and pid_alive(pid) and name in _cmdline(pid):
                stop_pid(pid)


# -- the stack -----------------------------------------------------------------------------------


@dataclass
class VirtualPrinter:
    """One ippeveprinter card printer and its CUPS queue."""

    name: str
    queue: str
    port: int
    spool_dir: Path
    state_dir: Path
    log: Path
    pid: int | None = None
    simulator: CardSimulator = field(init=False)

    def __post_init__(self) -> None:
        self.simulator = CardSimulator(self.state_dir)

    @property
    def uri(self) -> str:
        """The printer's own IPP URI (the queue's device URI)."""
        return f"ipp://localhost:{self.port}/ipp/print"


class CupsStack:
    """Private cupsd plus one ippeveprinter card printer (and CUPS queue) per name.

    ``ribbon_cards`` sizes each simulated ribbon in duplex cards (small values make levels fall
    visibly per card); ``cards`` fills each hopper. ``workdir`` defaults to a fresh temporary
    directory, removed on stop unless ``keep_workdir``.
    """

    def __init__(
        self,
        printers: Sequence[str] = ("Card1",),
        *,
        ribbon_cards: int = 50,
        cards: int = 100,
        workdir: Path | str | None = None,
        keep_workdir: bool = False,
        log_level: str = "warn",
    ) -> None:
        if not printers:
            raise InvalidValue("a CupsStack needs at least one printer")
        self.names = list(printers)
        self.ribbon_cards = ribbon_cards
        self.cards = cards
        self._given_workdir = Path(workdir) if workdir is not None else None
        self.keep_workdir = keep_workdir or workdir is not None
        self.log_level = log_level
        self.token = uuid.uuid4().hex
        self.workdir = Path()
        self.printers: dict[str, VirtualPrinter] = {}
        self.cupsd_pid: int | None = None
        self.cups_port = 0
        self._shared = False
        self.profile: PrinterProfile = get_profile(VIRTUAL_PROFILE)

    # -- public --------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The private cupsd's domain socket: ``CupsPrinter(server=...)`` / ``CUPS_SERVER``."""
        return str(self.workdir / "cups.sock")

    @property
    def queue_name(self) -> str:
        """The first printer's queue name."""
        return self.printers[self.names[0]].queue

    @property
    def queues(self) -> dict[str, str]:
        """Printer name → CUPS queue name."""
        return {n: p.queue for n, p in self.printers.items()}

    def env(self) -> dict[str, str]:
        """Environment for CUPS command-line tools aimed at this stack."""
        return {**os.environ, "CUPS_SERVER": self.server}

    def printer(self, name_or_queue: str | None = None) -> VirtualPrinter:
        """A virtual printer by name or queue name (default: the first)."""
        if name_or_queue is None:
            return self.printers[self.names[0]]
        for printer in self.printers.values():
            if name_or_queue in (printer.name, printer.queue):
                return printer
        raise KeyError(f"no virtual printer {name_or_queue!r}; have {self.names}")

    def open_printer(
        self, name_or_queue: str | None = None, profile: PrinterProfile | None = None, **kw: Any
    ) -> CupsPrinter:
        """A :class:`~printers.cups.CupsPrinter` on this stack's queue (virtual profile)."""
        queue = self.printer(name_or_queue).queue
        return CupsPrinter(queue, profile or self.profile, server=self.server, **kw)

    def inject_fault(self, queue: str, reason: str, *, after_cards: int = 0) -> str:
        """Make the printer fail with ``reason`` (``media-jam``/``jam``, ``ribbon-out``,
        ``cover-open``, ``media-empty``) once ``after_cards`` more cards printed."""
        return self.printer(queue).simulator.inject_fault(reason, after_cards=after_cards)

    def clear_faults(self, queue: str) -> None:
        """Clear the printer's faults (the next good card also clears the queue's reasons)."""
        self.printer(queue).simulator.clear_faults()

    def refill(self, queue: str, *, ribbon: bool = True, cards: int | None = None) -> None:
        """Load a full ribbon and/or set the hopper count."""
        self.printer(queue).simulator.refill(ribbon=ribbon, cards=cards)

    def set_card_delay(self, queue: str, seconds: float) -> None:
        """Make each card take ``seconds`` in the printer (to kill it mid-job in tests)."""
        (self.printer(queue).state_dir / "delay").write_text(str(seconds))

    def received_documents(self, queue: str) -> list[Path]:
        """Documents the printer received (``-k -d SPOOL``), oldest first."""
        spool = self.printer(queue).spool_dir
        return sorted(spool.glob("*.pdf"), key=lambda p: int(p.name.split("-", 1)[0]))

    def kill_printer(self, queue: str) -> None:
        """Kill the printer's ippeveprinter (SIGKILL): the printer is gone."""
        printer = self.printer(queue)
        if printer.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(printer.pid, signal.SIGKILL)
            stop_pid(printer.pid)
            printer.pid = None

    def restart_printer(self, queue: str) -> None:
        """Start a killed printer again on the same port, spool and state."""
        printer = self.printer(queue)
        if printer.pid is None or not pid_alive(printer.pid):
            self._start_printer(printer)

    def lp(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a CUPS tool (``cupsreject``, ``cupsdisable``, ``lpstat``…) against this stack."""
        return subprocess.run(
            list(args), env=self.env(), capture_output=True, text=True, check=True
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> CupsStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start shared daemons (as needed), cupsd, the printers and their queues; wait ready."""
        missing = missing_tools()
        if missing:
            raise StackError(f"not installed: {', '.join(missing)}")
        if self._given_workdir is not None:
            self.workdir = self._given_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="ktp-cups-"))
        # CUPS filters run as user lp: they must reach the spool and the PPDs.
        self.workdir.chmod(0o755)
        (self.workdir / "log").mkdir(exist_ok=True)
        try:
            SHARED_LOG_DIR.mkdir(exist_ok=True)
            acquire_shared_daemons(self.token, SHARED_LOG_DIR)
            self._shared = True
            self._start_cupsd()
            for name in self.names:
                self._add_printer(name)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop what this stack started, in reverse order."""
        for printer in reversed(list(self.printers.values())):
            if printer.pid is not None:
                stop_pid(printer.pid)
                printer.pid = None
        if self.cupsd_pid is not None:
            stop_pid(self.cupsd_pid)
            self.cupsd_pid = None
        if self._shared:
            release_shared_daemons(self.token)
            self._shared = False
        if not self.keep_workdir and self.workdir != Path() and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------------

    def _start_cupsd(self) -> None:
        etc = self.workdir / "etc"
        dirs = {d: self.workdir / d for d in ("spool", "cache", "state", "tmp", "log")}
        for path in (etc, *dirs.values()):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
        self.cups_port = free_port()
        (etc / "cupsd.conf").write_text(
            f"LogLevel {self.log_level}\n"
            f"Listen 127.0.0.1:{self.cups_port}\n"
            f"Listen {self.server}\n"
            "Browsing No\nWebInterface No\nDefaultAuthType None\n"
            "ErrorPolicy abort-job\nJobRetryInterval 1\nPreserveJobHistory Yes\n"
            "<Location />\n  Order allow,deny\n  Allow from 127.0.0.1\n  Allow from @LOCAL\n"
            "</Location>\n<Policy default>\n"
            # Job names stay visible: recovery looks jobs up by title (find_job).
            "  JobPrivateAccess all\n  JobPrivateValues none\n"
            "  SubscriptionPrivateAccess all\n  SubscriptionPrivateValues none\n"
            "  <Limit All>\n    Order deny,allow\n  </Limit>\n"
            "</Policy>\n"
        )
        files = self.workdir / "cups-files.conf"
        files.write_text(
            f"ServerRoot {etc}\nRequestRoot {dirs['spool']}\nCacheDir {dirs['cache']}\n"
            f"StateDir {dirs['state']}\nTempDir {dirs['tmp']}\n"
            f"AccessLog {dirs['log']}/access_log\nErrorLog {dirs['log']}/error_log\n"
            f"PageLog {dirs['log']}/page_log\nSystemGroup root\nSandboxing Relaxed\n"
        )
        proc = _spawn(
            ["cupsd", "-f", "-c", str(etc / "cupsd.conf"), "-s", str(files)],
            self.workdir / "log" / "cupsd.out",
            tied=True,
        )
        self.cupsd_pid = proc.pid

        def ready() -> bool:
            if proc.poll() is not None:
                raise StackError(f"cupsd exited; see {self.workdir / 'log'}")
            result = subprocess.run(
                ["lpstat", "-r"], env=self.env(), capture_output=True, text=True, check=False
            )
            return "is running" in result.stdout and "not running" not in result.stdout

        _wait_until("cupsd", ready)

    def _add_printer(self, name: str) -> None:
        base = self.workdir / "printers" / name
        printer = VirtualPrinter(
            name=name,
            queue=name,
            port=free_port(),
            spool_dir=base / "spool",
            state_dir=base / "state",
            log=self.workdir / "log" / f"ippeveprinter-{name}.log",
        )
        printer.spool_dir.mkdir(parents=True, exist_ok=True)
        ribbon = self.profile.ribbon
        printer.simulator.initialise(
            ribbon_panels=self.ribbon_cards * ribbon.panels_per_card(True),
            panels_simplex=ribbon.panels_per_card(False),
            panels_duplex=ribbon.panels_per_card(True),
            cards=self.cards,
        )
        command = base / "cardsim.sh"
        command.write_text(
            "#!/bin/sh\n"
            f'delay=$(cat "{printer.state_dir}/delay" 2>/dev/null)\n'
            f'[ -n "$delay" ] && touch "{printer.state_dir}/busy" && sleep "$delay"\n'
            f'PYTHONPATH="{_REPO_ROOT}" exec "{sys.executable}" -m printers.virtual.cardsim '
            f'--state "{printer.state_dir}" "$@"\n'
        )
        command.chmod(0o755)
        self.printers[name] = printer
        self._start_printer(printer)
        ppd = self.workdir / "etc" / "ppd" / f"{printer.queue}.ppd"
        for _ in range(3):
            subprocess.run(
                [
                    "lpadmin", "-p", printer.queue, "-E", "-v", printer.uri, "-m", "everywhere",
                    "-o", "printer-error-policy=abort-job",
                ],
                env=self.env(), capture_output=True, text=True, check=True,
            )  # fmt: skip
            # lpadmin exits 0 even when it could not build the PPD from the printer.
            if ppd.exists():
                return
            time.sleep(0.2)
        raise StackError(f"queue {printer.queue}: no PPD from {printer.uri}; see {printer.log}")

    def _start_printer(self, printer: VirtualPrinter) -> None:
        command = printer.state_dir.parent / "cardsim.sh"
        proc = _spawn(
            [
                "ippeveprinter", "-p", str(printer.port), "-r", "off", "-n", "localhost",
                "-a", str(ATTRIBUTE_FILE), "-k", "-d", str(printer.spool_dir),
                "-c", str(command), f"KTP {printer.name}",
            ],
            printer.log,
            tied=True,
        )  # fmt: skip
        printer.pid = proc.pid

        def ready() -> bool:
            if proc.poll() is not None:
                raise StackError(f"ippeveprinter {printer.name} exited; see {printer.log}")
            return _tcp_answers(printer.port)

        _wait_until(f"ippeveprinter {printer.name}", ready)
