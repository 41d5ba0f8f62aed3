"""Connect a :class:`SimulatedCard` to vsmartcard's vpcd (the card is the TCP client).

Frames both ways: 2-byte big-endian length, then payload. One-byte frames from vpcd are
control bytes: 00 power off, 01 power on, 02 reset, 04 send ATR.

Speed trap: vpcd writes length and payload in two segments; with delayed ACKs every exchange
stalls ~48 ms. Re-arming TCP_QUICKACK before *every* recv avoids it (TCP_NODELAY alone does not).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from chip.errors import CardRemovedError
from chip.simulator.card import SimulatedCard

log = logging.getLogger("chip.simulator")

CONTROL_POWER_OFF = 0x00
CONTROL_POWER_ON = 0x01
CONTROL_RESET = 0x02
CONTROL_ATR = 0x04


class _Closed(Exception):
    pass


class VpcdLink:
    """Run one card against vpcd at ``host:port``, reconnecting after tears and restarts."""

    def __init__(self, card: SimulatedCard, port: int = 35963, host: str = "127.0.0.1",
                 reinsert_after: float = 1.0) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.reinsert_after = reinsert_after
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise _Closed()
            buf += chunk
        return buf

    def _send(self, sock: socket.socket, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def serve_once(self, sock: socket.socket) -> None:
        """Serve frames until vpcd closes the connection or a tear is injected."""
        while not self._stop.is_set():
            size = int.from_bytes(self._recv_exact(sock, 2), "big")
            payload = self._recv_exact(sock, size)
            if size == 1:
                control = payload[0]
                if control == CONTROL_ATR:
                    self._send(sock, self.card.atr)
                elif control in (CONTROL_POWER_OFF, CONTROL_POWER_ON, CONTROL_RESET):
                    self.card.reset()
                continue
            try:
                response = self.card.process(payload)
            except CardRemovedError:
                log.info("tear injected: dropping the link")
                return
            self._send(sock, response)

    def run(self) -> None:
        """Connect, serve, and reconnect until :meth:`stop` (vpcd may not be up yet)."""
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                time.sleep(0.1)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self.connected.set()
            log.info("card inserted on vpcd port %d", self.port)
            try:
                self.serve_once(sock)
            except (_Closed, OSError):
                log.info("vpcd closed the link")
            finally:
                self.connected.clear()
                self._sock = None
                sock.close()
            if not self._stop.is_set():
                time.sleep(self.reinsert_after)

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"vpcd-card-{self.port}", daemon=True)
        thread.start()
        return thread
