"""The reprint window: biometrics kept after issue until ``media_purge_due``, the purge sweep
(library, station idle loop, ``records purge``), and reprints of issued records through the
web app's dual control, printed again by the station."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from printsrv.audit import AuditTag
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.errors import StateError
from printsrv.ledger.models import Blank, BlankMovement, BlankState, MovementKind
from printsrv.models import (
    AuditEvent,
    Office,
    Record,
    RecordKey,
    RecordMedia,
    RecordState,
    Role,
    User,
)
from printsrv.records import purge_expired_media, transition
from printsrv.station.journal import CardOutcome
from printsrv.web.models import ApprovalRequest, RequestStatus
from tests.station.conftest import OFFICE, Rig, counts, ledger_problems
from tests.web.conftest import sign_in

WINDOW = 30


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives back naive UTC datetimes, PostgreSQL aware ones."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _with_window(rig: Rig, days: int = WINDOW) -> Rig:
    rig.settings = dataclasses.replace(rig.settings, reprint_window_days=days)
    return rig


def _records(settings: Settings) -> dict[str, Record]:
    with unit_of_work(settings) as session:
        return {r.request_id: r for r in session.scalars(select(Record).order_by(Record.id))}


def _keys(settings: Settings) -> set[int]:
    with unit_of_work(settings) as session:
        return set(session.scalars(select(RecordKey.record_id)))


def _set_due(settings: Settings, request_id: str, due: datetime) -> None:
    with unit_of_work(settings) as session:
        rec = session.scalar(select(Record).where(Record.request_id == request_id))
        assert rec is not None
        rec.media_purge_due = due


def _purge_events(settings: Settings) -> list[AuditEvent]:
    with unit_of_work(settings) as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.tag == AuditTag.RECORD_MEDIA_PURGE)
                .order_by(AuditEvent.seq)
            )
        )


# -- at issue ------------------------------------------------------------------------------


def test_window_zero_shreds_at_issue(rig: Rig) -> None:
    assert rig.settings.reprint_window_days == 0
    results = rig.station().run(until_empty=True)
    assert [r.outcome for r in results] == [CardOutcome.ISSUED] * 5
    assert _keys(rig.settings) == set()
    for rec in _records(rig.settings).values():
        assert rec.state is RecordState.ISSUED
        assert rec.media_purged_at is not None and rec.media_purge_due is None
    events = _purge_events(rig.settings)
    assert len(events) == 5 and {e.details["reason"] for e in events} == {"issued"}
    assert ledger_problems(rig.settings) == []


def test_window_keeps_media_and_sets_due(rig: Rig) -> None:
    _with_window(rig)
    before = datetime.now(UTC)
    results = rig.station().run(until_empty=True)
    after = datetime.now(UTC)
    assert [r.outcome for r in results] == [CardOutcome.ISSUED] * 5
    records = _records(rig.settings)
    assert _keys(rig.settings) == {r.id for r in records.values()}  # still encrypted at rest
    with unit_of_work(rig.settings) as session:
        assert session.scalar(select(func.count()).select_from(RecordMedia)) >= 5
    for rec in records.values():
        assert rec.state is RecordState.ISSUED and rec.media_purged_at is None
        due = _utc(rec.media_purge_due)
        assert due is not None
        assert before + timedelta(days=WINDOW) <= due <= after + timedelta(days=WINDOW)
    assert _purge_events(rig.settings) == []  # the idle sweep found nothing due
    with unit_of_work(rig.settings) as session:
        issues = session.scalars(
            select(AuditEvent).where(AuditEvent.tag == "station:card:issue")
        ).all()
        assert len(issues) == 5 and all(e.details["media_purge_due"] for e in issues)
    assert ledger_problems(rig.settings) == []


# -- the sweep -----------------------------------------------------------------------------


def test_sweep_shreds_only_expired_and_audits_each(rig: Rig) -> None:
    _with_window(rig)
    rig.station().run(until_empty=True)
    ids = list(_records(rig.settings))
    now = datetime.now(UTC)
    expired, requeued = ids[:2], ids[2]
    for rid in expired:
        _set_due(rig.settings, rid, now - timedelta(minutes=1))
    _set_due(rig.settings, ids[3], now + timedelta(minutes=5))  # not yet
    with unit_of_work(rig.settings) as session:  # printing again for a reprint: left alone
        rec = session.scalar(select(Record).where(Record.request_id == requeued))
        assert rec is not None
        transition(session, rec, RecordState.QUEUED, actor="test", reason="reprint")
        rec.media_purge_due = now - timedelta(days=1)

    with unit_of_work(rig.settings) as session:
        assert purge_expired_media(session, now=now, actor="tester", office_ids=[]) == 0
        assert purge_expired_media(session, now=now, actor="tester") == 2
    with unit_of_work(rig.settings) as session:
        assert purge_expired_media(session, now=now, actor="tester") == 0  # nothing twice

    records = _records(rig.settings)
    keys = _keys(rig.settings)
    for rid, rec in records.items():
        if rid in expired:
            assert rec.id not in keys and rec.media_purged_at is not None
            assert rec.media_purge_due is None
        else:
            assert rec.id in keys and rec.media_purged_at is None
    with unit_of_work(rig.settings) as session:
        left = session.scalars(select(RecordMedia.record_id).distinct()).all()
        assert {records[rid].id for rid in expired}.isdisjoint(left)
    events = _purge_events(rig.settings)
    assert sorted(e.subject for e in events) == sorted(expired)
    assert all(e.actor == "tester" for e in events)
    assert all("reprint window ended" in e.details["reason"] for e in events)


def test_station_sweeps_when_idle_at_most_every_few_minutes(rig: Rig) -> None:
    _with_window(rig)
    station = rig.station()
    station.run(until_empty=True)  # swept once when the queue ran empty: nothing due
    first, second, *_ = list(_records(rig.settings))
    _set_due(rig.settings, first, datetime.now(UTC) - timedelta(seconds=1))
    station.run(until_empty=True)
    assert _purge_events(rig.settings) == []  # throttled: the same station swept moments ago
    station = rig.station()
    station.run(until_empty=True)  # nothing queued: the first idle poll sweeps
    assert [e.subject for e in _purge_events(rig.settings)] == [first]
    assert _purge_events(rig.settings)[0].actor == rig.config.actor
    _set_due(rig.settings, second, datetime.now(UTC) - timedelta(seconds=1))
    assert station.purge_sweep() == 0  # throttled: swept moments ago
    assert station.purge_sweep(force=True) == 1
    assert [e.subject for e in _purge_events(rig.settings)] == [first, second]
    assert ledger_problems(rig.settings) == []


def test_records_purge_cli(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from printsrv.cli import main

    _with_window(rig)
    rig.station().run(until_empty=True)
    target = next(iter(_records(rig.settings)))
    _set_due(rig.settings, target, datetime.now(UTC) - timedelta(hours=1))
    monkeypatch.setenv("PRINTSRV_INSTANCE_DIR", str(rig.settings.instance_dir))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", rig.settings.sqlalchemy_url)
    monkeypatch.delenv("PRINTSRV_CONFIG", raising=False)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        return int(exit_info.value.code or 0), capsys.readouterr().out

    assert run("records", "purge", "--actor", "cron") == (
        0,
        "shredded the biometrics of 1 record\n",
    )
    events = _purge_events(rig.settings)
    assert [(e.subject, e.actor) for e in events] == [(target, "cron")]
    assert _records(rig.settings)[target].media_purged_at is not None
    assert run("records", "purge") == (0, "shredded the biometrics of 0 records\n")


# -- reprints of issued records --------------------------------------------------------------


def _users(settings: Settings) -> None:
    from printsrv.web.auth_service import hash_password

    pw = hash_password("correct horse battery")
    with unit_of_work(settings) as session:
        office = session.scalar(select(Office).where(Office.code == OFFICE))
        assert office is not None
        for name, role in (
            ("op1", Role.OPERATOR),
            ("sup1", Role.SUPERVISOR),
            ("sup2", Role.SUPERVISOR),
        ):
            session.add(
                User(
                    username=name,
                    role=role,
                    office_id=office.id,
                    password_hash=pw,
                    failed_logins=0,
                    active=True,
                )
            )


def _client(settings: Settings) -> FlaskClient:
    from printsrv.web import create_app

    app = create_app(
        settings,
        {"TESTING": True, "SESSION_COOKIE_SECURE": False, "WTF_CSRF_ENABLED": False},
    )
    return app.test_client()


def _issued_blanks(settings: Settings, record_id: int) -> list[Blank]:
    with unit_of_work(settings) as session:
        return list(
            session.scalars(
                select(Blank)
                .join(BlankMovement, BlankMovement.blank_id == Blank.id)
                .where(
                    BlankMovement.kind == MovementKind.ISSUE, BlankMovement.record_id == record_id
                )
                .order_by(BlankMovement.id)
            )
        )


def test_reprint_of_issued_record_is_printed_again(rig: Rig) -> None:
    from printsrv.ledger.check import check_ledger

    _with_window(rig)
    rig.station().run(until_empty=True)
    _users(rig.settings)
    rec = next(iter(_records(rig.settings).values()))
    (first_card,) = _issued_blanks(rig.settings, rec.id)
    assert first_card.chip_uid

    client = _client(rig.settings)
    sign_in(client, rig.settings, "sup1")
    page = client.get(f"/records/{rec.id}").get_data(as_text=True)
    assert f'/records/{rec.id}/reprint"' in page  # the form is offered inside the window
    resp = client.post(f"/records/{rec.id}/reprint", data={"reason": "kartu rusak"})
    assert resp.status_code == 302
    with unit_of_work(rig.settings) as session:
        req = session.scalar(select(ApprovalRequest).where(ApprovalRequest.record_id == rec.id))
        assert req is not None and req.status is RequestStatus.PENDING
        req_id = req.id
    assert client.post(f"/approvals/{req_id}/approve", data={"note": ""}).status_code == 403
    assert _records(rig.settings)[rec.request_id].state is RecordState.ISSUED

    sign_in(client, rig.settings, "sup2")  # a different supervisor approves
    resp = client.post(f"/approvals/{req_id}/approve", data={"note": "ok"})
    assert resp.status_code == 302
    again = _records(rig.settings)[rec.request_id]
    assert again.state is RecordState.QUEUED and again.media_purge_due is None
    with unit_of_work(rig.settings) as session:
        approval = session.scalar(select(AuditEvent).where(AuditEvent.tag == "web:reprint:approve"))
        assert approval is not None and approval.actor == "sup2"
        previous = approval.details["previous_card"]
        assert previous["blank_serial"] == first_card.serial
        assert previous["chip_uid"] == first_card.chip_uid
        assert previous["status"] == "invalid" and "destruction" in previous["note"]
        change = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.tag == AuditTag.RECORD_STATE_CHANGE, AuditEvent.subject == rec.request_id
            )
            .order_by(AuditEvent.seq.desc())
        ).first()
        assert change is not None
        assert change.details == {"from": "issued", "to": "queued", "reason": "reprint"}
    assert ledger_problems(rig.settings) == []

    results = rig.station().run(until_empty=True)
    assert [(r.request_id, r.outcome) for r in results] == [(rec.request_id, CardOutcome.ISSUED)]
    assert results[0].blank_serial != first_card.serial
    printed = _records(rig.settings)[rec.request_id]
    assert printed.state is RecordState.ISSUED and printed.media_purge_due is not None
    assert [b.serial for b in _issued_blanks(rig.settings, rec.id)] == [
        first_card.serial,
        results[0].blank_serial,
    ]
    assert counts(rig.settings) == {"issued": 5}
    assert ledger_problems(rig.settings) == []
    with unit_of_work(rig.settings) as session:
        assert check_ledger(session).ok
        assert (
            session.scalar(
                select(func.count()).select_from(Blank).where(Blank.state == BlankState.ISSUED)
            )
            == 6
        )


def test_issued_to_queued_only_for_a_reprint(rig: Rig) -> None:
    rig.station().run(until_empty=True)
    with unit_of_work(rig.settings) as session:
        rec = session.scalars(select(Record)).first()
        assert rec is not None
        with pytest.raises(StateError, match="reprint"):
            transition(session, rec, RecordState.QUEUED, actor="test", reason="blank released")
        with pytest.raises(StateError):
            transition(session, rec, RecordState.PRINTING, actor="test")


def test_reprint_of_purged_issued_record_is_refused(rig: Rig) -> None:
    from printsrv.web import services as svc

    rig.station().run(until_empty=True)  # window 0: shredded at issue
    _users(rig.settings)
    rec = next(iter(_records(rig.settings).values()))
    client = _client(rig.settings)
    sign_in(client, rig.settings, "op1")

    page = client.get(f"/records/{rec.id}").get_data(as_text=True)
    assert f'/records/{rec.id}/reprint"' not in page
    assert "Data biometrik sudah dihapus" in page and "permohonan cetak baru" in page

    resp = client.post(f"/records/{rec.id}/reprint", data={"reason": "kartu hilang"})
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'class="flash error"' in page
    assert f"Cetak ulang {rec.request_id} tidak dapat dilakukan" in page
    assert "data biometrik sudah dihapus" in page and "permohonan cetak baru" in page

    client.post("/lang", data={"lang": "en"})
    resp = client.post(f"/records/{rec.id}/reprint", data={"reason": "lost"})
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"Reprint of {rec.request_id} refused" in page and "new print request" in page

    with unit_of_work(rig.settings) as session:
        assert session.scalar(select(func.count()).select_from(ApprovalRequest)) == 0
        record = session.get(Record, rec.id)
        operator = session.scalar(select(User).where(User.username == "op1"))
        assert record is not None and operator is not None
        with pytest.raises(svc.ReprintNeedsNewRequest, match="permohonan cetak"):
            svc.request_reprint(session, operator, record, "rusak")
    assert _records(rig.settings)[rec.request_id].state is RecordState.ISSUED


def test_approval_after_the_window_ended_is_refused(rig: Rig) -> None:
    _with_window(rig)
    rig.station().run(until_empty=True)
    _users(rig.settings)
    rec = next(iter(_records(rig.settings).values()))
    client = _client(rig.settings)
    sign_in(client, rig.settings, "op1")
    assert client.post(f"/records/{rec.id}/reprint", data={"reason": "rusak"}).status_code == 302
    _set_due(rig.settings, rec.request_id, datetime.now(UTC) - timedelta(seconds=1))
    with unit_of_work(rig.settings) as session:
        assert purge_expired_media(session, now=datetime.now(UTC), actor="test") == 1
        req_id = session.scalar(select(ApprovalRequest.id))

    sign_in(client, rig.settings, "sup1")
    resp = client.post(f"/approvals/{req_id}/approve", data={"note": ""})
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'class="flash error"' in page and "permohonan cetak baru" in page
    with unit_of_work(rig.settings) as session:
        req = session.get(ApprovalRequest, req_id)
        assert req is not None and req.status is RequestStatus.PENDING
        assert session.get(Record, rec.id).state is RecordState.ISSUED  # type: ignore[union-attr]
    # a rejection still closes it
    resp = client.post(f"/approvals/{req_id}/reject", data={"note": "data sudah dihapus"})
    assert resp.status_code == 302
    with unit_of_work(rig.settings) as session:
        req = session.get(ApprovalRequest, req_id)
        assert req is not None and req.status is RequestStatus.REJECTED


def test_a_cancelled_record_is_shredded_at_once(rig: Rig) -> None:
    """A held record rejected by a supervisor (or any record cancelled) is never printed: its
    biometrics go with the cancellation, whatever the reprint window."""
    _with_window(rig)
    records = _records(rig.settings)
    first, second = list(records)[:2]
    with unit_of_work(rig.settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == first))
        assert record is not None
        transition(session, record, RecordState.HELD, actor="t", reason="NIK check")
        transition(session, record, RecordState.CANCELLED, actor="spv", reason="duplicate")
    kept = _keys(rig.settings)
    by_id = _records(rig.settings)
    assert by_id[first].id not in kept and by_id[first].media_purged_at is not None
    assert by_id[second].id in kept  # the others keep theirs
    with unit_of_work(rig.settings) as session:
        assert session.scalar(select(func.count()).select_from(RecordMedia).where(
            RecordMedia.record_id == by_id[first].id)) == 0
        purge = session.scalars(select(AuditEvent).where(
            AuditEvent.tag == AuditTag.RECORD_MEDIA_PURGE.value,
            AuditEvent.subject == first)).all()
        assert len(purge) == 1 and purge[0].actor == "spv"
