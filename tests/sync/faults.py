"""A TCP proxy the fault tests put between a node and the server: it forwards bytes, and can
drop a connection at a random point in either direction, refuse every connection (the link is
down), or hold every chunk for a while in each direction (a slow link's latency)."""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time


class FaultyLink:
    """``127.0.0.1:port`` → ``upstream``; ``drop`` is the chance that a chunk of bytes is the
    last one a connection carries (then both ends are closed); ``down`` refuses everything;
    ``delay`` seconds is how long each chunk is held before it goes on, each way (in order,
    without slowing the flow: a delay line). ``listen`` is the address it accepts on."""

    def __init__(self, upstream: tuple[str, int], *, seed: int, drop: float = 0.0,
                 delay: float = 0.0, listen: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.drop = drop
        self.delay = delay
        self.listen = listen
        self.down = False
        self.dropped = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.create_server((listen, 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.listen}:{self.port}"

    def _chance(self) -> bool:
        with self._lock:
            return self._rng.random() < self.drop

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

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
            pump = self._pump_delayed if self.delay > 0 else self._pump
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    def _release(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            _close(sock)
            with self._lock:
                self._open.discard(sock)

    def _pump_delayed(self, src: socket.socket, dst: socket.socket) -> None:
        """Forward ``src`` → ``dst``, each chunk ``delay`` seconds after it arrived."""
        line: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def deliver() -> None:
            try:
                while True:
                    due, chunk = line.get()
                    time.sleep(max(0.0, due - time.monotonic()))
                    if not chunk:
                        break
                    dst.sendall(chunk)
            except OSError:
                pass
            finally:
                self._release(src, dst)

        threading.Thread(target=deliver, daemon=True).start()
        try:
            while chunk := src.recv(65536):
                line.put((time.monotonic() + self.delay, chunk))
        except OSError:
            pass
        line.put((time.monotonic() + self.delay, b""))

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                chunk = src.recv(4096)
                if not chunk:
                    break
                if self.down or self._chance():
                    with self._lock:
                        self.dropped += 1
                    if chunk and not self.down:  # part of it gets through
                        dst.sendall(chunk[: len(chunk) // 2])
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            self._release(src, dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
