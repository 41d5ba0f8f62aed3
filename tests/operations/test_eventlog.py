"""Station log entries reach the journal (native protocol) one per event, with the station,
request id and blank serial as fields, and carry no personal data."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from printsrv.db import unit_of_work
from printsrv.eventlog import JournalHandler, LineFormatter, card_fields, configure, encode
from printsrv.models import Record
from tests.station.conftest import make_rig


def _parse(datagram: bytes) -> dict[str, str]:
    """journald's native protocol, as journald reads it."""
    fields, i = {}, 0
    while i < len(datagram):
        end = datagram.index(b"\n", i)
        line = datagram[i:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            i = end + 1
        else:
            size = int.from_bytes(datagram[end + 1:end + 9], "little")
            fields[line.decode()] = datagram[end + 9:end + 9 + size].decode()
            i = end + 9 + size + 1
    return fields


def test_encode_frames_multiline_values() -> None:
    fields = {"MESSAGE": "line one\nline two", "STATION": "loket1"}
    assert _parse(encode(fields)) == fields


@pytest.fixture
def journal(tmp_path: Path) -> Any:
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.2)
    yield path, server
    server.close()


def _drain(server: socket.socket) -> list[dict[str, str]]:
    entries = []
    while True:
        try:
            entries.append(_parse(server.recv(65536)))
        except TimeoutError:
            return entries


def test_station_entries_carry_card_fields(settings: Any, tmp_path: Path, journal: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path, server = journal
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    handler = configure(journal_socket=path)
    try:
        assert isinstance(handler, JournalHandler)
        with make_rig(settings, tmp_path, records=3, blanks=5) as rig:
            rig.station().run(until_empty=True)
    finally:
        handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    entries = [e for e in _drain(server) if e.get("LOGGER") == "printsrv.station"]
    issued = [e for e in entries if " issued " in e["MESSAGE"]]
    assert len(issued) == 3
    for entry in issued:
        assert entry["STATION"] == "st1" and entry["PRIORITY"] == "6"
        assert entry["REQUEST_ID"] in entry["MESSAGE"]
        assert entry["BLANK_SERIAL"].startswith("KTP-") and entry["CARD_JOB"].isdigit()
    with unit_of_work(settings) as session:
        personal = [v for r in session.scalars(select(Record)) for k, v in r.data.items()
                    if k in {"nik", "nama", "alamat", "tempat_lahir"} and isinstance(v, str)]
    assert personal
    text = "\n".join(str(e) for e in entries)
    assert not [v for v in personal if v in text], "personal data in the journal"


def test_without_systemd_one_line_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    record = logging.LogRecord("printsrv.station", logging.ERROR, __file__, 1,
                               "station %s: failed", ("st1",), None)
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    for key, value in card_fields("st1", request_id="R-1", blank_serial="KTP-000001").items():
        setattr(record, key, value)
    line = LineFormatter().format(record)
    assert "\n" not in line and line.endswith("station=st1 request_id=R-1 blank_serial=KTP-000001")
    assert "RuntimeError: boom | second line" in line
    assert os.environ.get("JOURNAL_STREAM") is None
