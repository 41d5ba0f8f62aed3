"""Audit chains: a station writes its own chain; every chain is verified on its own."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from printsrv import audit, auditscan
from printsrv.audit import station_chain
from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work
from printsrv.models import AuditEvent, AuditHead
from tests.concurrency import run_together


def _write(settings: Settings, chain: str | None, n: int) -> None:
    for i in range(n):
        with unit_of_work(settings, audit_chain=chain) as s:
            audit.record(s, "test:chain:event", actor="t", details={"i": i})


def _verify(settings: Settings) -> audit.ChainReport:
    with session_factory(settings)() as s:
        return audit.verify(s)


def test_station_events_go_to_their_own_chain(settings: Settings) -> None:
    _write(settings, None, 2)
    _write(settings, station_chain("st-a"), 3)
    _write(settings, station_chain("st-b"), 1)
    report = _verify(settings)
    assert report.ok and report.events == 6 and report.chains == 3
    with session_factory(settings)() as s:
        positions = s.execute(
            select(AuditEvent.chain, AuditEvent.chain_seq).order_by(AuditEvent.seq)
        ).all()
    assert [tuple(p) for p in positions] == [
        ("main", 1), ("main", 2),
        ("station:st-a", 1), ("station:st-a", 2), ("station:st-a", 3),
        ("station:st-b", 1),
    ]  # fmt: skip


def test_edit_in_a_station_chain_is_found(settings: Settings) -> None:
    _write(settings, station_chain("st-a"), 3)
    with unit_of_work(settings) as s:
        s.execute(update(AuditEvent).where(AuditEvent.chain_seq == 2).values(actor="mallory"))
    report = _verify(settings)
    assert not report.ok
    assert any("station:st-a" in p.reason and "edited" in p.reason for p in report.problems)


def test_deleting_the_last_events_of_a_chain_is_found(settings: Settings) -> None:
    _write(settings, station_chain("st-a"), 3)
    with unit_of_work(settings) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.chain_seq == 3))
    reasons = " ".join(p.reason for p in _verify(settings).problems)
    assert "head says 3 events, found 2" in reasons


def test_moving_an_event_to_another_chain_is_found(settings: Settings) -> None:
    _write(settings, None, 2)
    _write(settings, station_chain("st-a"), 2)
    with unit_of_work(settings) as s:
        s.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == "station:st-a", AuditEvent.chain_seq == 2)
            .values(chain="main", chain_seq=3)
        )
        s.execute(update(AuditHead).where(AuditHead.chain == "main").values(last_seq=3))
    assert not _verify(settings).ok


def test_concurrent_writers_on_a_new_chain_keep_it_whole(settings: Settings) -> None:
    """Four writers start a chain at once and keep writing to it: one head is created, every
    event lands in one unbroken sequence (on PostgreSQL each event is one statement that locks
    the head and hashes the event from what it locked)."""
    run_together([lambda: _write(settings, "shared-new", 15)] * 4)
    with session_factory(settings)() as s:
        seqs = s.scalars(
            select(AuditEvent.chain_seq)
            .where(AuditEvent.chain == "shared-new")
            .order_by(AuditEvent.chain_seq)
        ).all()
        head = s.get(AuditHead, "shared-new")
    assert list(seqs) == list(range(1, 61))
    assert head is not None and head.last_seq == 60
    assert _verify(settings).ok


def _tamper_edit(s: Session) -> None:
    s.execute(update(AuditEvent).where(AuditEvent.chain == "main", AuditEvent.chain_seq == 5)
              .values(actor="mallory"))


def _tamper_delete_middle(s: Session) -> None:
    s.execute(delete(AuditEvent).where(AuditEvent.chain == "station:st-a",
                                       AuditEvent.chain_seq == 4))


def _tamper_delete_tail(s: Session) -> None:
    s.execute(delete(AuditEvent).where(AuditEvent.chain == "main", AuditEvent.chain_seq == 12))


def _tamper_drop_chain(s: Session) -> None:
    s.execute(delete(AuditHead).where(AuditHead.chain == "station:st-b"))


def _tamper_relink(s: Session) -> None:
    s.execute(update(AuditEvent).where(AuditEvent.chain == "main", AuditEvent.chain_seq == 9)
              .values(prev_hash="f" * 64))


def _mixed_log(settings: Settings) -> None:
    for _ in range(4):
        _write(settings, None, 3)
        _write(settings, station_chain("st-a"), 2)
        _write(settings, station_chain("st-b"), 1)


def test_verify_in_worker_processes_agrees_with_the_walk(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log split over worker processes (ranges of ``seq`` cutting through every chain) is
    confirmed with the same counts as the chain-by-chain walk."""
    _mixed_log(settings)
    monkeypatch.setattr(auditscan, "PARALLEL_MIN", 0)
    with session_factory(settings)() as s:
        fast = audit._verify_fast(s, None, 2)
        exact = audit._verify_exact(s)
    assert fast is not None and fast.ok and exact.ok
    assert (fast.events, fast.chains) == (exact.events, exact.chains) == (24, 3)
    assert fast.last_seq == exact.last_seq


@pytest.mark.parametrize(
    "tamper",
    [_tamper_edit, _tamper_delete_middle, _tamper_delete_tail, _tamper_drop_chain,
     _tamper_relink],
)
def test_tampering_is_found_by_the_worker_processes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tamper: Callable[[Session], None]
) -> None:
    """The fast scan never confirms a tampered log (in one process or split over workers);
    the walk then reports it."""
    _mixed_log(settings)
    with unit_of_work(settings) as s:
        tamper(s)
    monkeypatch.setattr(auditscan, "PARALLEL_MIN", 0)
    with session_factory(settings)() as s:
        assert audit._verify_fast(s, None, 2) is None
        assert audit._verify_fast(s, None, 1) is None
        report = audit.verify(s, workers=2)
    assert not report.ok and report.problems


def test_record_many_chains_like_record_one_by_one(settings: Settings) -> None:
    """``record_many`` (one head move on SQLite) continues the chain exactly where one-by-one
    events left it, in order, and the chain verifies; an edit among them is found."""
    _write(settings, None, 2)
    events = [("35.26", f"R{i}", {"purpose": "render", "media": ["photo"], "i": i})
              for i in range(5)]  # fmt: skip
    with unit_of_work(settings) as s:
        audit.record_many(s, "test:chain:many", events, actor="t")
        audit.record_many(s, "test:chain:many", [], actor="t")  # nothing, no head move
    _write(settings, None, 1)
    report = _verify(settings)
    assert report.ok and report.events == 8 and report.chains == 1
    with session_factory(settings)() as s:
        columns = (AuditEvent.chain_seq, AuditEvent.subject, AuditEvent.office_code)
        rows = s.execute(select(*columns).order_by(AuditEvent.seq)).all()
        head = s.scalar(select(AuditHead.last_seq).where(AuditHead.chain == "main"))
    assert [r.chain_seq for r in rows] == list(range(1, 9)) and head == 8
    assert [r.subject for r in rows[2:7]] == [f"R{i}" for i in range(5)]
    assert {r.office_code for r in rows[2:7]} == {"35.26"}
    with unit_of_work(settings) as s:
        s.execute(update(AuditEvent).where(AuditEvent.subject == "R3").values(actor="mallory"))
    assert not _verify(settings).ok


def test_record_many_starts_a_new_chain(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        audit.record_many(s, "test:chain:many", [(None, "A", {}), (None, "B", {})], actor="t",
                          chain=station_chain("st-new"))  # fmt: skip
    report = _verify(settings)
    assert report.ok and report.events == 2 and report.chains == 1
