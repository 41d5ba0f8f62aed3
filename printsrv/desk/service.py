"""The handover desk's work: find a ready card, receive it at the desk, hand it over, follow up
the cards nobody collects, and flag handovers the two-person rule forbids.

Record states: issued → at_desk → collected; a card at the desk may go back to storage
(at_desk → issued). Every step is a record transition (audited, and an outbox event).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from printsrv import audit
from printsrv.audit_tags import DeskTag
from printsrv.config import Settings
from printsrv.desk.models import CardCollection
from printsrv.errors import PrintSrvError, StateError
from printsrv.localtime import office_zone
from printsrv.models import Office, Record, RecordState
from printsrv.nik import NikError, parse_nik, structure_hold_reasons
from printsrv.notify.models import Notification, NotificationState
from printsrv.notify.pickup import short_reference
from printsrv.notify.rules import pickup_rules
from printsrv.offices import office_code
from printsrv.records import transition
from printsrv.station.journal import CardJob, CardOutcome

S = RecordState
READY = (S.ISSUED, S.AT_DESK)
#: Who may collect a card, and the words the desk and the receipt use.
RELATIONS: dict[str, str] = {
    "owner": "Pemilik KTP-el",
    "spouse": "Suami/Istri",
    "parent": "Orang tua",
    "child": "Anak",
    "sibling": "Saudara kandung",
    "other_family": "Anggota keluarga lain (satu KK)",
}
HANDOVER_TAG = DeskTag.CARD_HANDOVER
ARRIVE_TAG = DeskTag.CARD_ARRIVE
RETURN_TAG = DeskTag.CARD_RETURN
REMIND_TAG = DeskTag.CARD_REMIND


class InvalidCollection(PrintSrvError, ValueError):
    """A handover form with a missing or wrong field; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def find_ready(
    session: Session, office_ids: list[int], query: str, limit: int = 50
) -> list[Record]:
    """Ready cards (issued or at the desk) of ``office_ids`` by NIK (16 digits), request
    reference (the end of the request id, as the SMS gives it) or part of the name."""
    text = query.strip()
    if len(text) < 3:
        return []
    stmt = select(Record).where(Record.office_id.in_(office_ids), Record.state.in_(READY))
    if re.fullmatch(r"\d{16}", text):
        stmt = stmt.where(Record.nik == text)
    else:
        needle = text.upper()
        stmt = stmt.where(or_(func.upper(Record.request_id).endswith(needle),
                              func.upper(Record.nama).contains(needle)))  # fmt: skip
    return list(session.scalars(stmt.order_by(Record.nama).limit(limit)))


def _audit(
    session: Session, tag: DeskTag, record: Record, actor: str, details: dict[str, Any]
) -> None:
    audit.record(session, tag, actor=actor, office_code=office_code(session, record.office_id),
                 subject=record.request_id, details=details)  # fmt: skip


def arrive(session: Session, record: Record, *, actor: str) -> None:
    """The printed card has reached the pickup desk."""
    if record.state is not S.ISSUED:
        raise StateError(f"record {record.request_id} is {record.state.value}, not issued")
    transition(session, record, S.AT_DESK, actor=actor, reason="at the pickup desk")
    _audit(session, ARRIVE_TAG, record, actor, {})


def printed_by(session: Session, record: Record) -> str | None:
    """The operator of the station job that issued the card last."""
    return session.scalar(
        select(CardJob.operator)
        .where(CardJob.record_id == record.id, CardJob.outcome == CardOutcome.ISSUED)
        .order_by(CardJob.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class Collector:
    """Who takes the card, as the desk form gives it."""

    name: str
    relation: str
    nik: str
    authorization: str = ""
    signature_png: bytes | None = None
    note: str = ""


def _check(collector: Collector, record: Record) -> None:
    if collector.relation not in RELATIONS:
        raise InvalidCollection("relation", f"one of {', '.join(RELATIONS)}")
    if not collector.name.strip():
        raise InvalidCollection("collector_name", "the collector's name is required")
    try:
        problems = structure_hold_reasons(parse_nik(collector.nik))
    except NikError as exc:
        raise InvalidCollection("collector_nik", str(exc)) from exc
    if problems:
        raise InvalidCollection("collector_nik", "; ".join(problems))
    if collector.relation == "owner":
        if collector.nik != record.nik:
            raise InvalidCollection("collector_nik", "the owner's NIK is not the card's NIK")
    else:
        if collector.nik == record.nik:
            raise InvalidCollection("relation", "the card's own NIK: choose 'owner'")
        if not collector.authorization.strip():
            raise InvalidCollection(
                "authorization", "a family member needs a power of attorney (surat kuasa) number"
            )
    png = collector.signature_png
    if png is not None and (not png.startswith(b"\x89PNG\r\n\x1a\n") or len(png) > 200_000):
        raise InvalidCollection("signature", "a PNG image of at most 200 kB")


def hand_over(
    session: Session,
    settings: Settings,
    record: Record,
    collector: Collector,
    *,
    officer: str,
    witness: str | None = None,
) -> CardCollection:
    """Hand the card over (a card still in storage passes the desk on the way); returns the
    receipt's row. Raises :class:`InvalidCollection` naming the field that is wrong."""
    if record.state not in READY:
        raise StateError(
            f"record {record.request_id} is {record.state.value}: nothing to hand over"
        )
    _check(collector, record)
    code = office_code(session, record.office_id)
    rules = pickup_rules(settings, code)
    witness = (witness or "").strip() or None
    if rules.two_person_handover and witness is None:
        raise InvalidCollection("witness", "this office hands cards over with a second officer")
    if witness is not None and witness.lower() == officer.lower():
        raise InvalidCollection("witness", "the witness must be another officer")
    if record.state is S.ISSUED:
        arrive(session, record, actor=officer)
    transition(session, record, S.COLLECTED, actor=officer,
               reason=f"handed over ({collector.relation})")  # fmt: skip
    now = datetime.now(UTC)
    local = office_zone(code).local(now)
    collection = CardCollection(
        receipt_number=f"TT/{code}/{local:%Y%m}/{uuid.uuid4().hex[:8].upper()}",
        record_id=record.id,
        request_id=record.request_id,
        office_code=code,
        collector_name=collector.name.strip()[:120],
        relation=collector.relation,
        collector_nik=collector.nik,
        authorization=collector.authorization.strip()[:80] or None,
        signature_png=collector.signature_png,
        officer=officer,
        witness=witness,
        printed_by=printed_by(session, record),
        note=collector.note.strip()[:500] or None,
        at=now,
    )
    session.add(collection)
    session.flush()
    _audit(session, HANDOVER_TAG, record, officer, {
        "receipt": collection.receipt_number,
        "relation": collector.relation,
        "collector": collection.collector_name,
        "collector_nik_end": collector.nik[-4:],  # the whole NIK stays off the audit log
        "authorization": collection.authorization,
        "witness": witness,
        "signature": collector.signature_png is not None,
    })  # fmt: skip
    return collection


def return_to_storage(session: Session, record: Record, *, actor: str, reason: str) -> None:
    """A card at the desk goes back to storage (not collected, or to be destroyed after a
    reprint); it stays issued."""
    if record.state is not S.AT_DESK:
        raise StateError(f"record {record.request_id} is {record.state.value}, not at the desk")
    if not reason.strip():
        raise InvalidCollection("reason", "say why the card goes back")
    transition(session, record, S.ISSUED, actor=actor, reason=f"back to storage: {reason[:200]}")
    _audit(session, RETURN_TAG, record, actor, {"reason": reason[:500]})


@dataclass(frozen=True)
class Uncollected:
    record: Record
    days: int
    reminders: int


def uncollected(
    session: Session, settings: Settings, office_ids: list[int], now: datetime | None = None
) -> list[Uncollected]:
    """Ready cards not collected within their office's ``uncollected_days`` of printing,
    oldest first, with how many reminders were sent."""
    now = now or datetime.now(UTC)
    out = []
    records = session.scalars(
        select(Record).where(Record.office_id.in_(office_ids), Record.state.in_(READY),
                             Record.issued_at.is_not(None))
        .order_by(Record.issued_at)
    )  # fmt: skip
    reminders = dict(
        session.execute(
            select(Notification.request_id, func.count())
            .where(Notification.kind == "reminder")
            .group_by(Notification.request_id)
        ).all()
    )
    for record in records:
        issued = record.issued_at
        assert issued is not None
        if issued.tzinfo is None:
            issued = issued.replace(tzinfo=UTC)
        days = (now - issued).days
        if days >= pickup_rules(settings, office_code(session, record.office_id)).uncollected_days:
            out.append(Uncollected(record, days, int(reminders.get(record.request_id, 0))))
    return out


def remind(session: Session, settings: Settings, record: Record, *, actor: str) -> Notification:
    """Queue a reminder SMS for a card nobody has collected (sent by the SMS sender)."""
    if record.state not in READY:
        raise StateError(f"record {record.request_id} is {record.state.value}: nothing to collect")
    from printsrv.notify import phone as phones

    code = office_code(session, record.office_id)
    rules = pickup_rules(settings, code)
    office_name = session.scalar(select(Office.name).where(Office.code == code)) or code
    where = office_name + (f", {rules.address}" if rules.address else "")
    zone = office_zone(code)
    ref = short_reference(record.request_id)
    text = (f"Pengingat: KTP-el Anda sudah lama menunggu diambil di {where}, hari kerja pukul "
            f"{rules.hours} {zone.name}. Bawa {rules.bring}. Ref {ref}")  # fmt: skip
    raw = (record.data or {}).get("phone")
    state, number, error = NotificationState.PENDING, None, None
    try:
        number = phones.normalise(str(raw)) if raw else None
        if number is None:
            state, error = NotificationState.INVALID, "no phone number on the record"
    except phones.InvalidPhone as exc:
        state, error = NotificationState.INVALID, str(exc)
    now = datetime.now(UTC)
    note = Notification(
        message_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), kind="reminder",
        request_id=record.request_id, office_code=code, phone=number, text=text, state=state,
        attempts=0, next_attempt_at=now, error=error, created_at=now,
    )  # fmt: skip
    session.add(note)
    _audit(session, REMIND_TAG, record, actor, {"message": note.message_id, "state": state.value})
    return note


def self_handovers(
    session: Session, office_codes: list[str], since: datetime | None = None
) -> list[CardCollection]:
    """Handovers by the officer who printed the card, without a witness, at offices whose rules
    ask for two people: the anomaly page flags them."""
    since = since or datetime.now(UTC) - timedelta(days=31)
    rows = session.scalars(
        select(CardCollection).where(
            CardCollection.office_code.in_(office_codes),
            CardCollection.witness.is_(None),
            CardCollection.printed_by.is_not(None),
            func.lower(CardCollection.officer) == func.lower(CardCollection.printed_by),
            CardCollection.at >= since,
        ).order_by(CardCollection.at)
    )
    return list(rows)


def collections_of(session: Session, record: Record) -> list[CardCollection]:
    return list(session.scalars(
        select(CardCollection).where(CardCollection.record_id == record.id)
        .order_by(CardCollection.id)))  # fmt: skip
