"""Leases on queued records: the oldest first, only the station's offices, audited on the
station's chain, and never the same record twice however many stations claim at once."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from printsrv import audit
from printsrv.audit import station_chain
from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work
from printsrv.models import AuditEvent, Batch, Record, RecordState
from printsrv.offices import ensure_office
from printsrv.station.claim import Claim, claim_next, office_ids
from tests.concurrency import run_together

OFFICE, OTHER = "35.26.01", "35.27.01"


def _queue(settings: Settings, n: int) -> None:
    """``n`` queued records; every third belongs to another office."""
    now = datetime.now(UTC)
    with unit_of_work(settings) as s:
        mine, other = ensure_office(s, OFFICE, actor="t"), ensure_office(s, OTHER, actor="t")
        batch = Batch(
            batch_id="CLAIM",
            issuer="t",
            created_at=now,
            record_count=n,
            manifest_sha256="0" * 64,
            signer="t",
        )
        s.add(batch)
        s.flush()
        s.execute(
            insert(Record),
            [
                {
                    "request_id": f"REQ-{i:05d}",
                    "batch_id": batch.id,
                    "line_no": i + 1,
                    "nik": f"3526{i:012d}",
                    "nama": f"NAMA {i}",
                    "card_type": "KTP-EL",
                    "office_id": (other if i % 3 == 2 else mine).id,
                    "state": RecordState.QUEUED,
                    "data": {},
                    "failure_count": 0,
                }
                for i in range(n)
            ],
        )


def _claim(settings: Settings, station: str) -> Claim | None:
    with unit_of_work(settings, audit_chain=station_chain(station)) as s:
        return claim_next(s, office_ids(s, OFFICE), f"station:{station}")


def test_claims_oldest_of_own_office_and_audits_on_station_chain(settings: Settings) -> None:
    _queue(settings, 6)
    got = [_claim(settings, "st1") for _ in range(5)]
    # Records 0, 1, 3, 4 are ours (2 and 5 belong to the other office); then nothing is left.
    assert [r.request_id if r else None for r in got] == [
        "REQ-00000", "REQ-00001", "REQ-00003", "REQ-00004", None]  # fmt: skip
    assert got[0] is not None
    with session_factory(settings)() as s:
        first = s.get(Record, got[0].id)
        assert first is not None and first.state is RecordState.PRINTING
        assert first.lease_owner == "station:st1" and first.lease_expires is not None
        assert (got[0].request_id, got[0].office_id) == (first.request_id, first.office_id)
    with session_factory(settings)() as s:
        events = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == "station:st1")
            .order_by(AuditEvent.chain_seq)
        ).all()
        assert [(e.chain_seq, e.subject, e.office_code, e.details) for e in events] == [
            (i + 1, rid, OFFICE, {"from": "queued", "to": "printing", "reason": "claimed"})
            for i, rid in enumerate(["REQ-00000", "REQ-00001", "REQ-00003", "REQ-00004"])
        ]
        assert audit.verify(s).ok
        other = s.scalar(
            select(func.count()).select_from(Record).where(Record.state == RecordState.QUEUED)
        )
    assert other == 2


def test_claim_after_other_events_continues_the_chain(settings: Settings) -> None:
    _queue(settings, 3)
    with unit_of_work(settings, audit_chain=station_chain("st2")) as s:
        audit.record(s, "test:chain:event", actor="t")
        record = claim_next(s, office_ids(s, OFFICE), "station:st2")
        audit.record(s, "test:chain:event", actor="t")
    assert record is not None
    with session_factory(settings)() as s:
        seqs = s.execute(
            select(AuditEvent.chain_seq, AuditEvent.tag)
            .where(AuditEvent.chain == "station:st2")
            .order_by(AuditEvent.chain_seq)
        ).all()
        assert [tuple(r) for r in seqs] == [
            (1, "test:chain:event"),
            (2, "record:record:state_change"),
            (3, "test:chain:event"),
        ]
        assert audit.verify(s).ok


def test_unaudited_claim_writes_no_event(settings: Settings) -> None:
    _queue(settings, 2)
    with unit_of_work(settings) as s:
        assert claim_next(s, office_ids(s, OFFICE), "x", audit=False) is not None
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.tag == "record:record:state_change")
            )
            == 0
        )


def test_rolled_back_claim_leaves_record_queued_and_chain_intact(settings: Settings) -> None:
    _queue(settings, 2)
    with pytest.raises(RuntimeError), unit_of_work(settings, audit_chain="station:st3") as s:
        assert claim_next(s, office_ids(s, OFFICE), "station:st3") is not None
        raise RuntimeError("killed before commit")
    record = _claim(settings, "st3")
    assert record is not None and record.request_id == "REQ-00000"
    with session_factory(settings)() as s:
        assert audit.verify(s).ok


def test_concurrent_stations_never_claim_the_same_record(settings: Settings) -> None:
    _queue(settings, 240)  # 160 for our office
    claimed: dict[str, list[str]] = {}
    left_at_stop: list[int] = []

    def station(name: str) -> None:
        mine = claimed[name] = []
        while (record := _claim(settings, name)) is not None:
            mine.append(record.request_id)
            time.sleep(0.005)  # making the card: SQLite's lock is not fair without a gap
        with session_factory(settings)() as s:
            left_at_stop.append(
                s.scalar(
                    select(func.count())
                    .select_from(Record)
                    .where(
                        Record.state == RecordState.QUEUED,
                        Record.office_id.in_(office_ids(s, OFFICE)),
                    )
                )
                or 0
            )

    run_together([functools.partial(station, f"c{i}") for i in range(8)])
    every = [rid for ids in claimed.values() for rid in ids]
    assert len(every) == 160 and len(set(every)) == 160
    assert sum(1 for ids in claimed.values() if ids) > 1  # they really ran side by side
    # A station finds "nothing queued" only when the rest is being claimed by the others (at
    # most one record each), not because another station holds the row it wanted.
    assert max(left_at_stop) <= 7, left_at_stop
    with session_factory(settings)() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.tag == "record:record:state_change")
            )
            == 160
        )
        assert audit.verify(s).ok
        owners = dict(
            s.execute(
                select(Record.request_id, Record.lease_owner).where(
                    Record.state == RecordState.PRINTING
                )
            ).all()
        )
    assert all(owners[rid] == f"station:{name}" for name, ids in claimed.items() for rid in ids)


def test_claims_sharing_one_audit_chain_keep_it_whole(settings: Settings) -> None:
    """Two writers on one chain queue at its head row: every claim's event is there, in one
    unbroken sequence (on PostgreSQL the event is hashed inside the claim's statement, after
    the head row is locked, so a writer that waited hashes on the newest head)."""
    _queue(settings, 60)  # 40 for our office
    claimed: list[str] = []

    def station() -> None:
        while (record := _claim(settings, "shared")) is not None:
            claimed.append(record.request_id)

    run_together([station] * 4)
    assert len(claimed) == 40 and len(set(claimed)) == 40
    with session_factory(settings)() as s:
        events = s.execute(
            select(AuditEvent.chain_seq, AuditEvent.subject)
            .where(AuditEvent.chain == station_chain("shared"))
            .order_by(AuditEvent.chain_seq)
        ).all()
        assert [seq for seq, _ in events] == list(range(1, 41))
        assert sorted(subject for _, subject in events) == sorted(claimed)
        assert audit.verify(s).ok
