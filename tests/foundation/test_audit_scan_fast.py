"""The fast audit scan on PostgreSQL builds an event's hashed bytes without ``to_json`` when
the row's text needs no escaping: those bytes must be exactly the exact form's for any text,
awkward text written through ``record`` must still be confirmed, and an edit that would read
as the original if left unescaped must be found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from printsrv import audit, auditscan
from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work
from printsrv.models import AuditEvent

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
AWKWARD = st.text(st.sampled_from('a"\\\n\x01\x1f\x7f\u0085—ü/{}:,'), max_size=6)
COLUMN_TEXT = st.one_of(TEXT, AWKWARD)

# The two forms over one row given as parameters (the table's own column names and types).
_ROW = ("(SELECT %(actor)s::varchar AS actor, %(at)s::timestamptz AS at, %(chain)s::varchar"
        " AS chain, %(seq)s::bigint AS chain_seq, %(details)s::json AS details, %(office)s::varchar"
        " AS office_code, %(prev)s::varchar AS prev_hash, %(subject)s::varchar AS subject,"
        " %(tag)s::varchar AS tag) AS audit_event")
_EXACT = auditscan._content_sql("to_json({})::text", auditscan._AT_PG, "details::text")


@settings(max_examples=300, deadline=None)
@given(actor=COLUMN_TEXT, chain=COLUMN_TEXT, tag=COLUMN_TEXT,
       office=st.none() | COLUMN_TEXT, subject=st.none() | COLUMN_TEXT, prev=COLUMN_TEXT,
       seq=st.integers(1, 2**31 - 1), micros=st.integers(0, 10**15))
def test_fast_bytes_are_the_exact_bytes_for_any_text(
    pg: psycopg.Connection, actor: str, chain: str, tag: str, office: str | None,
    subject: str | None, prev: str, seq: int, micros: int,
) -> None:
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    params = {"actor": actor, "at": at,
              "chain": chain, "seq": seq, "details": '{"k":"v"}', "office": office,
              "prev": prev, "subject": subject, "tag": tag}
    row = pg.execute(f"SELECT {auditscan._CONTENT_PG}, {_EXACT} FROM {_ROW}", params).fetchone()
    assert row is not None
    assert row[0] == row[1]


AWKWARD_EVENTS = [
    ("budi \"si\" operator", None, 'REQ\\1'),
    ("baris\nbaru", "35.05.01", "tab\there"),
    ("ctl\x01\x1f\x7f", None, None),
    ("Kab. Blitar — Sananwetan ü", "35.05.01", "REQ-0001"),
]


def _write_awkward(settings: Settings) -> None:
    for actor, office, subject in AWKWARD_EVENTS:
        with unit_of_work(settings) as s:
            audit.record(s, "test:scan:awkward", actor=actor, office_code=office,
                         subject=subject, details={"q": 'a"b\\c\n'})
    with unit_of_work(settings, audit_chain=audit.station_chain("st-x")) as s:
        audit.record(s, "test:scan:plain", actor="t", subject="REQ-2")


@pytest.mark.parametrize("block", [2, auditscan.PG_BLOCK])
def test_awkward_text_is_confirmed_by_the_fast_scan(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Quotes, backslashes, control characters and non-ASCII text in the columns: the fast
    scan (one process and split over workers; PostgreSQL's blocks of events cut small or
    not) confirms the log, as the walk does."""
    _write_awkward(settings)
    monkeypatch.setattr(auditscan, "PARALLEL_MIN", 0)
    monkeypatch.setattr(auditscan, "PG_BLOCK", block)
    with session_factory(settings)() as s:
        for workers in (1, 2):
            fast = audit._verify_fast(s, None, workers)
            assert fast is not None and fast.ok
            assert (fast.events, fast.chains) == (len(AWKWARD_EVENTS) + 1, 2)
        assert audit._verify_exact(s).ok


@pytest.mark.parametrize(
    ("subject", "edited"),
    [("baris\nbaru", "baris\\nbaru"),     # a line break → a backslash and n
     ('kata "kutip"', 'kata \\"kutip\\"'),  # a quote → a backslash and a quote
     ("a\\b", "a\\\\b")],                # one backslash → two
)
def test_an_edit_that_reads_as_the_original_unescaped_is_found(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, subject: str, edited: str
) -> None:
    """Each edit here puts in the column the escaped text of the original: left unescaped,
    the edited row's bytes would be the original's and its hash would match."""
    monkeypatch.setattr(auditscan, "PG_BLOCK", 1)
    with unit_of_work(settings) as s:
        audit.record(s, "test:scan:edit", actor="t", subject=subject)
        audit.record(s, "test:scan:edit", actor="t", subject="after")
    with unit_of_work(settings) as s:
        s.execute(update(AuditEvent).where(AuditEvent.chain_seq == 1).values(subject=edited))
    with session_factory(settings)() as s:
        assert audit._verify_fast(s, None, 1) is None
        report = audit.verify(s)
    assert not report.ok and report.problems
