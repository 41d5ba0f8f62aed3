"""The PC/SC side of the real device stack: pcscd + vpcd + our card simulator, no hardware.

    with PcscStack(sim_args=[[], ["--capacity", "4096"]]) as stack:
        reader = stack.reader_name(0)                 # "Virtual PCD 00 00"
        stack.restart_simulator(0, ["--tear-after", "12"])
        stack.restart_pcscd()                         # only when this stack started pcscd

pcscd is shared by the whole machine (one ``/run/pcscd`` socket) and vpcd's ports are fixed,
so a stack holds an exclusive ``flock`` on ``/tmp/ktp-printsrv-pcsc.lock`` while it is up.
pcscd is started (``--foreground``) only when no usable one runs; everything the stack started
is stopped by PID, in reverse order. Simulators are separate processes
(``python -m chip.simulator``), so a test can crash or restart them like real cards.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from chip.errors import ChipError
from chip.pcsc import card_present, list_readers
from printsrv.errors import InvalidValue

LOCK_PATH: Final = Path("/tmp/ktp-printsrv-pcsc.lock")
PCSCD_SOCKET: Final = Path("/run/pcscd/pcscd.comm")
VPCD_PORTS: Final = (35963, 35964)
_REPO_ROOT: Final = Path(__file__).resolve().parents[2]


class StackError(RuntimeError):
    """A daemon of the stack failed to start or to become ready."""


def missing_tools() -> list[str]:
    """Packages the stack needs that are not installed."""
    missing = []
    if not Path("/usr/sbin/pcscd").exists() and not _which("pcscd"):
        missing.append("pcscd")
    if not Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists():
        missing.append("vsmartcard-vpcd")
    return missing


def _which(name: str) -> str | None:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _vpcd_readers() -> list[str]:
    try:
        return [r for r in list_readers() if r.startswith("Virtual PCD")]
    except ChipError:
        return []


class PcscStack:
    """pcscd + one simulator per entry of ``sim_args`` (vpcd ports 35963, 35964)."""

    _active_in_process = False  # flock would deadlock a second stack in the same process

    def __init__(self, sim_args: Sequence[Sequence[str]] = ((),), *,
                 lock_timeout: float = 300.0, start_timeout: float = 15.0,
                 log_dir: Path | None = None) -> None:
        if len(sim_args) > len(VPCD_PORTS):
            raise InvalidValue(f"vpcd has {len(VPCD_PORTS)} readers")
        self._sim_args = [list(a) for a in sim_args]
        self._lock_timeout = lock_timeout
        self._start_timeout = start_timeout
        self._log_dir = log_dir or Path(tempfile.mkdtemp(prefix="ktp-pcsc-"))
        self._lock_file: IO[bytes] | None = None
        self._pcscd: subprocess.Popen[bytes] | None = None
        self._sims: dict[int, subprocess.Popen[bytes]] = {}
        self._killed_pcscd = False

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> PcscStack:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Take the machine-wide lock, then start what is missing and wait until ready."""
        self._acquire_lock()
        try:
            self._ensure_pcscd()
            for i, args in enumerate(self._sim_args):
                self.start_simulator(i, args)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop what this stack started, in reverse order, and release the lock."""
        for i in sorted(self._sims, reverse=True):
            self.stop_simulator(i)
        if self._pcscd is not None:
            _stop_process(self._pcscd)
            self._pcscd = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
            PcscStack._active_in_process = False

    def _acquire_lock(self) -> None:
        if PcscStack._active_in_process:
            raise StackError("a PcscStack is already up in this process; stop it first")
        fh = open(LOCK_PATH, "ab")  # noqa: SIM115 - held for the stack's lifetime
        deadline = time.monotonic() + self._lock_timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    fh.close()
                    raise StackError(f"another PC/SC stack holds {LOCK_PATH}") from None
                time.sleep(0.1)
        self._lock_file = fh
        PcscStack._active_in_process = True

    # -- pcscd ----------------------------------------------------------------------------------
    @property
    def owns_pcscd(self) -> bool:
        return self._pcscd is not None

    def _ensure_pcscd(self) -> None:
        if PCSCD_SOCKET.exists() and _vpcd_readers():
            return  # a usable pcscd with vpcd already runs: share it
        self._start_pcscd()

    def _start_pcscd(self) -> None:
        log = open(self._log_dir / "pcscd.log", "ab")  # noqa: SIM115
        self._pcscd = subprocess.Popen(["pcscd", "--foreground", "--info"], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        pcscd = self._pcscd

        def ready() -> bool:
            if pcscd.poll() is not None:
                raise StackError(f"pcscd exited ({pcscd.returncode}); see {self._log_dir}")
            return PCSCD_SOCKET.exists() and len(_vpcd_readers()) >= len(VPCD_PORTS)

        _wait_until("pcscd and the vpcd readers", ready, self._start_timeout)

    def restart_pcscd(self) -> None:
        """Stop and start pcscd (simulators reconnect on their own). Only for an owned pcscd."""
        if self._pcscd is None:
            raise StackError("this stack did not start pcscd; refusing to restart it")
        _stop_process(self._pcscd)
        self._pcscd = None
        _wait_until("pcscd to exit", lambda: not PCSCD_SOCKET.exists(), 5.0)
        self._start_pcscd()
        for i in self._sims:
            self.wait_for_card(i)

    def kill_pcscd(self) -> None:
        """Stop an owned pcscd without restarting it ("reader gone" tests)."""
        if self._pcscd is None:
            raise StackError("this stack did not start pcscd")
        _stop_process(self._pcscd)
        self._pcscd = None
        self._killed_pcscd = True

    def start_pcscd(self) -> None:
        """Start pcscd again after :meth:`kill_pcscd` and wait for the cards."""
        if not self._killed_pcscd:
            raise StackError("pcscd was not stopped by this stack")
        self._killed_pcscd = False
        self._start_pcscd()
        for i in self._sims:
            self.wait_for_card(i)

    # -- simulators -----------------------------------------------------------------------------
    def reader_name(self, index: int = 0) -> str:
        """The PC/SC name of vpcd reader ``index`` (port 35963 + index)."""
        return f"Virtual PCD 00 {index:02d}"

    def start_simulator(self, index: int, args: Sequence[str] = ()) -> None:
        """Start a card on vpcd port ``VPCD_PORTS[index]`` and wait until pcscd sees it."""
        if index in self._sims:
            self.stop_simulator(index)
        port = VPCD_PORTS[index]
        log = open(self._log_dir / f"simulator-{index}.log", "ab")  # noqa: SIM115
        self._sims[index] = subprocess.Popen(
            [sys.executable, "-m", "chip.simulator", "--port", str(port), *args],
            cwd=_REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_for_card(index)

    def wait_for_card(self, index: int) -> None:
        proc = self._sims.get(index)

        def present() -> bool:
            if proc is not None and proc.poll() is not None:
                raise StackError(f"simulator {index} exited; see {self._log_dir}")
            try:
                return card_present(self.reader_name(index))
            except ChipError:
                return False

        _wait_until(f"a card in {self.reader_name(index)}", present, self._start_timeout)

    def stop_simulator(self, index: int) -> None:
        """Take the card away (stop its process) and wait until the reader is empty."""
        proc = self._sims.pop(index, None)
        if proc is None:
            return
        _stop_process(proc)

        def absent() -> bool:
            try:
                return not card_present(self.reader_name(index))
            except ChipError:
                return True

        _wait_until(f"{self.reader_name(index)} to be empty", absent, 5.0)

    def restart_simulator(self, index: int, args: Sequence[str] = ()) -> None:
        """A fresh card (blank unless ``--state`` says otherwise) with new options."""
        self.stop_simulator(index)
        self.start_simulator(index, args)
