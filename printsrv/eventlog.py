"""Log output of the long-running commands: one entry per event, with the card's fields.

Under systemd (``$JOURNAL_STREAM`` set) entries go to the journal through its native protocol
(``/run/systemd/journal/socket``), each with the fields ``STATION``, ``REQUEST_ID``,
``BLANK_SERIAL`` and ``CARD_JOB`` when the event concerns a card, so that
``journalctl -u printsrv-station@loket1 BLANK_SERIAL=KTP-000123`` finds a blank's story.
Elsewhere each event is one line on standard error with the same fields as ``key=value``.

Loggers are given only identifiers (request ids, blank serials, job ids); personal data and
biometrics never reach a log call (the station logs ids, never a record's fields or media).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "ktp-printsrv"
#: The ``extra`` keys a log call may carry, and their journal field names.
CARD_FIELDS = {
    "station": "STATION",
    "request_id": "REQUEST_ID",
    "blank_serial": "BLANK_SERIAL",
    "card_job": "CARD_JOB",
}
_MAX_MESSAGE = 32_000  # one datagram; longer texts are cut, never split into two events
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


def card_fields(
    station: str, *, request_id: str | None = None, blank_serial: str | None = None,
    card_job: int | None = None,
) -> dict[str, Any]:
    """The ``extra=`` of a log call about one card."""
    fields: dict[str, Any] = {"station": station}
    if request_id:
        fields["request_id"] = request_id
    if blank_serial:
        fields["blank_serial"] = blank_serial
    if card_job is not None:
        fields["card_job"] = card_job
    return fields


def _text(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info:
        message += "\n" + logging.Formatter().formatException(record.exc_info)
    return message[:_MAX_MESSAGE]


class LineFormatter(logging.Formatter):
    """``TIME LEVEL message key=value …`` on one line (a traceback's lines joined by `` | ``)."""

    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z")
        line = f"{when} {record.levelname} {_text(record)}".replace("\n", " | ")
        extra = " ".join(
            f"{key}={getattr(record, key)}" for key in CARD_FIELDS if hasattr(record, key)
        )
        return f"{line} {extra}" if extra else line


class JournalHandler(logging.Handler):
    """Send each record to journald as one entry with structured fields."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {
                "MESSAGE": _text(record),
                "PRIORITY": str(_PRIORITY.get(record.levelno, 6)),
                "SYSLOG_IDENTIFIER": IDENTIFIER,
                "LOGGER": record.name,
                "CODE_FILE": record.pathname,
                "CODE_LINE": str(record.lineno),
            }
            for key, name in CARD_FIELDS.items():
                if hasattr(record, key):
                    fields[name] = str(getattr(record, key))
            self._socket.sendto(encode(fields), self.path)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self._socket.close()
        super().close()


def encode(fields: dict[str, str]) -> bytes:
    """journald's native protocol: ``KEY=value`` lines, a value with a newline length-framed."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def configure(*, verbose: bool = False, journal_socket: str = JOURNAL_SOCKET) -> logging.Handler:
    """Route the root logger to the journal under systemd, else to standard error."""
    handler: logging.Handler
    if os.environ.get("JOURNAL_STREAM") and os.path.exists(journal_socket):
        handler = JournalHandler(journal_socket)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
