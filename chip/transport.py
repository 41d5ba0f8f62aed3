"""The one choke point for APDUs: tracing, counters, secure messaging and status words.

Every command of the library goes through :meth:`Transport.transmit`, which wraps it in the
SCP03 session or ICAO secure messaging (BAC) when one is open, sends it on the
:class:`~chip.api.CardChannel`, handles 61xx/6Cxx, checks the R-MAC, and turns error status
words into exceptions through :data:`chip.apdu.STATUS_WORDS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chip.apdu import CommandApdu, Ins, ResponseApdu, is_success, status_error
from chip.api import CardChannel
from chip.errors import SecureChannelError
from chip.scp03 import Scp03Session
from chip.securemessaging import SecureMessaging

log = logging.getLogger("chip.apdu")


@dataclass
class TransportStats:
    """Counters for one card session."""

    apdus: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    wire_seconds: float = 0.0  # time spent inside channel.transmit

    def as_dict(self) -> dict[str, float | int]:
        return {"apdus": self.apdus, "bytes_sent": self.bytes_sent,
                "bytes_received": self.bytes_received,
                "wire_seconds": round(self.wire_seconds, 6)}


@dataclass
class Transport:
    """APDU exchange on one channel, optionally inside an SCP03 session or ICAO secure
    messaging."""

    channel: CardChannel
    stats: TransportStats = field(default_factory=TransportStats)
    session: Scp03Session | SecureMessaging | None = None
    trace: Callable[[str, bytes], None] | None = None
    before_send: Callable[[CommandApdu], None] | None = None

    def _raw(self, raw: bytes) -> ResponseApdu:
        if self.trace:
            self.trace(">>", raw)
        started = time.perf_counter()
        try:
            reply = self.channel.transmit(raw)
        finally:
            self.stats.wire_seconds += time.perf_counter() - started
            self.stats.apdus += 1
            self.stats.bytes_sent += len(raw)
        self.stats.bytes_received += len(reply)
        if self.trace:
            self.trace("<<", reply)
        return ResponseApdu.decode(reply)

    def transmit(self, cmd: CommandApdu, *, context: str = "", check: bool = True,
                 secure: bool = True) -> ResponseApdu:
        """Send ``cmd`` (wrapped when a session is open and ``secure``); raise on error SW."""
        if self.before_send:
            self.before_send(cmd)
        session = self.session if secure else None
        wire_cmd = session.wrap_command(cmd) if session else cmd
        resp = self._raw(wire_cmd.encode())
        data = resp.data
        while resp.sw >> 8 == 0x61:  # more data available (T=0 style)
            resp = self._raw(CommandApdu(0x00, Ins.GET_RESPONSE, 0, 0, le=resp.sw & 0xFF or 256)
                             .encode())
            data += resp.data
        if resp.sw >> 8 == 0x6C and not session:
            retry = CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, resp.sw & 0xFF or 256)
            resp = self._raw(retry.encode())
            data = resp.data
        resp = ResponseApdu(data, resp.sw)
        if isinstance(session, SecureMessaging):
            # ICAO SM: every processed command answers DO 99 + MAC, errors included; a bare
            # status word means the card dropped the session (6987/6988).
            if not resp.data:
                self.session = None
            else:
                try:
                    resp = session.unwrap_response(resp)
                except SecureChannelError:
                    self.session = None
                    raise
        elif session:
            if not is_success(resp.sw):
                self.session = None  # the card aborts its session on errors; so do we
            else:
                try:
                    resp = session.unwrap_response(resp)
                except SecureChannelError:
                    self.session = None
                    raise
        if check and not is_success(resp.sw):
            raise status_error(resp.sw, context or f"INS {cmd.ins:02X}")
        return resp


def hexdump_trace(direction: str, raw: bytes) -> None:
    """A tracer for :class:`Transport` that logs APDUs at DEBUG level (no personal data
    beyond what is on the wire under SCP03, which is encrypted)."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s%s", direction, raw[:32].hex(), "…" if len(raw) > 32 else "")

