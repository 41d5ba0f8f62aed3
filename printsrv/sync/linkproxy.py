"""The TCP link between a node and its server, as the demo, the fault tests and the benchmark
make it: ``listen:port`` forwards to ``upstream`` in threads (daemon: they die with the
process), counting the TCP payload bytes each way, and can

- be taken down (:attr:`LinkProxy.down` refuses new connections and stops the open ones;
  :meth:`LinkProxy.cut` breaks the open ones: a kecamatan line that drops),
- drop a connection at a random point (``drop``: the chance that a chunk of bytes is the last
  one a connection carries; half of it gets through, then both ends are closed),
- hold every chunk ``delay`` seconds each way (a delay line: latency without slowing the flow),
- and with a :class:`Shaping` pace each direction at a rate shared by its connections and lose
  segments as TCP with SACK and fast retransmit roughly does (see :class:`Shaping`).

Used by ``run.py demo --kecamatan``, ``tests/sync/test_node_faults.py`` and
``bench/sync/run.py``; :func:`serving` runs the server at the far end for the tests and the
benchmark.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Shaping:
    """A slow lossy link: each direction carries ``rate`` bit/s shared by its connections,
    in segments of ``mss`` bytes. A segment is lost with chance ``loss``: it crosses again
    (the bandwidth is spent twice) and reaches the reader one round trip late (the segments
    after it wait for it: TCP delivers in order), and its connection's sender sends at half
    rate for the next round trip (the congestion window halves). A sender may run at most
    ``window`` seconds of the link ahead of the wire. This is a model of TCP with SACK, not
    TCP."""

    rate: float
    loss: float = 0.0
    mss: int = 1448
    window: float = 0.5


class _Pipe:
    """One connection through the link: its two sockets, closed once both directions ended
    (or at once when the connection is cut)."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.sockets = (client, server)
        self.ended = 0
        self.lock = threading.Lock()

    def end(self, dst: socket.socket) -> bool:
        """One direction ended at its source: ``dst`` gets EOF; True when both have."""
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with self.lock:
            self.ended += 1
            return self.ended == 2


class LinkProxy:
    """``listen:port`` → ``upstream``; see the module. ``up_bytes`` and ``down_bytes`` count
    what crossed node → server and back; ``refused`` the connections refused while down;
    ``dropped`` the connections cut by ``drop`` (or by the link going down mid-chunk); ``lost``
    the segments the shaping lost. ``seed`` makes the random choices repeatable."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        listen: str = "127.0.0.1",
        seed: int = 0,
        drop: float = 0.0,
        delay: float = 0.0,
        shaping: Shaping | None = None,
    ) -> None:
        self.upstream = upstream
        self.listen = listen
        self.drop = drop
        self.delay = delay
        self.shaping = shaping
        self.down = False
        self.refused = 0
        self.dropped = 0
        self.lost = 0
        self.up_bytes = 0
        self.down_bytes = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._link_free = {"up": 0.0, "down": 0.0}  # when each direction's wire is free
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server((listen, 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, name="link-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.listen}:{self.port}"

    def go_down(self) -> None:
        """The link drops: new connections are refused and the open ones broken."""
        self.down = True
        self.cut()

    def come_up(self) -> None:
        self.down = False

    def cut(self) -> None:
        """Close every open connection now (the link breaks mid-transfer)."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self.cut()

    def __enter__(self) -> LinkProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                with self._lock:
                    self.refused += 1
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, server))
            pipe = _Pipe(client, server)
            for src, dst, way in ((client, server, "up"), (server, client, "down")):
                threading.Thread(target=self._pump, args=(pipe, src, dst, way), daemon=True).start()

    def _release(self, pipe: _Pipe) -> None:
        for sock in pipe.sockets:
            _close(sock)
            with self._lock:
                self._open.discard(sock)

    def _dropping(self) -> bool:
        if self.down:
            return True
        if not self.drop:
            return False
        with self._lock:
            return self._rng.random() < self.drop

    def _pump(self, pipe: _Pipe, src: socket.socket, dst: socket.socket, way: str) -> None:
        """Forward ``src`` → ``dst``: straight on, or through a delivery line when the link
        delays or shapes."""
        shaping = self.shaping
        size = shaping.mss if shaping else 4096 if self.drop else 65536
        line: queue.Queue[tuple[float, bytes | None]] | None = None
        if shaping or self.delay > 0:
            line = queue.Queue(maxsize=48 if shaping else 0)  # shaped: ~70 kB in flight
            threading.Thread(target=self._deliver, args=(pipe, line, dst), daemon=True).start()
        sender = _Sender()
        cut = False
        try:
            while chunk := src.recv(size):
                with self._lock:
                    if way == "up":
                        self.up_bytes += len(chunk)
                    else:
                        self.down_bytes += len(chunk)
                if self._dropping():
                    cut = True
                    with self._lock:
                        self.dropped += 1
                    chunk = b"" if self.down else chunk[: len(chunk) // 2]  # part gets through
                if line is None:
                    if chunk:
                        dst.sendall(chunk)
                else:
                    line.put((self._due(sender, way, len(chunk)), chunk))
                    if shaping:  # the sender's window: so far ahead of the wire at most
                        wait = sender.free_at - time.monotonic() - shaping.window
                        if wait > 0:
                            time.sleep(wait)
                if cut:
                    break
        except OSError:
            cut = True
        if line is not None:
            line.put((time.monotonic() + self.delay, None if cut else b""))
        elif cut or pipe.end(dst):
            self._release(pipe)

    def _due(self, sender: _Sender, way: str, size: int) -> float:
        """When a chunk of ``size`` bytes read now reaches the reader."""
        now = time.monotonic()
        shaping = self.shaping
        if shaping is None:
            return now + self.delay
        on_wire = size * 8 / shaping.rate
        with self._lock:  # the wire of a direction is shared by its connections
            depart = max(sender.free_at, self._link_free[way], now)
            lost = shaping.loss > 0 and self._rng.random() < shaping.loss
            self.lost += lost
            self._link_free[way] = depart + on_wire * (2 if lost else 1)
        sender.free_at = depart + on_wire * (2 if depart < sender.slow_until else 1)
        deliver = depart + on_wire + self.delay
        if lost:  # noticed after a round trip, sent again
            deliver = depart + 2 * on_wire + 3 * self.delay
            sender.free_at += on_wire
            sender.slow_until = sender.free_at + 2 * self.delay
        sender.last = max(sender.last, deliver)  # in order
        return sender.last

    def _deliver(
        self, pipe: _Pipe, line: queue.Queue[tuple[float, bytes | None]], dst: socket.socket
    ) -> None:
        """Send each chunk of ``line`` to ``dst`` when it is due; at its end, EOF (``b""``)
        or cut (``None``)."""
        cut = True
        try:
            while True:
                due, chunk = line.get()
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if not chunk:
                    cut = chunk is None
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        if cut or pipe.end(dst):
            self._release(pipe)


class _Sender:
    """One direction of one connection, as the shaping sees its sender."""

    def __init__(self) -> None:
        self.free_at = time.monotonic()  # when it may put its next segment on the wire
        self.slow_until = 0.0  # half rate until then (after a loss)
        self.last = 0.0  # when its latest chunk is delivered


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def serving(
    settings: Any,
    port: int,
    *,
    workers: int | None = 1,
    log: Path | None = None,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """``run.py serve`` for ``settings`` on ``port`` in its own process (its own token
    session): the server at the far end of a link. ``workers`` None lets ``serve`` decide (a
    worker per CPU); its output goes to ``log`` (default ``serve.log`` in the instance
    folder). Stopped (terminated, killed if it lingers) at the end."""
    from printsrv import PROJECT_ROOT
    from printsrv.errors import PrintSrvError

    env = {
        **os.environ,
        "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
        "PRINTSRV_DATABASE_URL": settings.sqlalchemy_url,
    }
    argv = [sys.executable, str(PROJECT_ROOT / "run.py"), "serve", "--port", str(port)]
    if workers:
        argv += ["--workers", str(workers)]
    log = log or settings.instance_dir / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise PrintSrvError(
                        f"server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
