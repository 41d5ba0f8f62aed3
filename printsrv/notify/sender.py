"""The SMS sender: an outbox consumer that turns "card issued" into a pickup message, and the
rounds that hand messages to the gateway.

1. :func:`collect` reads the outbox (consumer ``sms``). Each ``record.state`` event to *issued*
   books the first free pickup day and writes one :class:`Notification` in the same
   transaction as the consumer's cursor: exactly one message per issued card, whatever dies.
2. :func:`send_due` takes the messages that are due, outside the quiet hours of their office
   (21:00–07:00 local: they wait for the morning), marks them *sending* (committed: the intent
   before the action), hands them to the gateway, and records what it said. Refusals that may
   pass are retried with a doubling delay; after ``max_attempts`` the message has *failed*.
3. :func:`apply_report` takes the gateway's delivery reports. A message left *sending* by a
   killed sender is not handed over again while a report may still come: the report settles
   it; only after ``unconfirmed_seconds`` without one is it sent again, with the same id.
"""

from __future__ import annotations

import time as clock
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from printsrv import outbox
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.errors import InvalidValue, NotFound
from printsrv.localtime import office_zone
from printsrv.models import Office, Record
from printsrv.notify import phone as phones
from printsrv.notify.gateways import Handover, SmsGateway, gateway_for
from printsrv.notify.models import Notification, NotificationState
from printsrv.notify.pickup import first_free_day, ready_text
from printsrv.notify.rules import SmsSettings, pickup_rules, sms_settings

CONSUMER = "sms"
N = NotificationState


# ------------------------------------------------------------------------------- from the outbox


def _office_name(session: Session, code: str) -> str:
    name = session.scalar(select(Office.name).where(Office.code == code))
    return name or f"Kantor Dukcapil {code}"


def _ready(session: Session, settings: Settings, event: outbox.Event, now: datetime) -> None:
    request_id = event.payload["request_id"]
    office_code = event.payload["office"]
    record = session.scalar(select(Record).where(Record.request_id == request_id))
    if record is None:
        raise NotFound(f"outbox event {event.event_id}: no record {request_id}")
    zone = office_zone(office_code)
    rules = pickup_rules(settings, office_code)
    day = first_free_day(session, office_code, rules, zone.local(event.at).date())
    text = ready_text(office_name=_office_name(session, office_code), rules=rules, day=day,
                      zone=zone.name, request_id=request_id)  # fmt: skip
    raw_phone = (record.data or {}).get("phone")
    state, number, error = N.PENDING, None, None
    if not raw_phone:
        state, error = N.INVALID, "no phone number on the record"
    else:
        try:
            number = phones.normalise(str(raw_phone))
        except phones.InvalidPhone as exc:
            state, error = N.INVALID, str(exc)
    session.add(
        Notification(
            message_id=str(uuid.uuid4()),
            event_id=event.event_id,
            kind="ready",
            request_id=request_id,
            office_code=office_code,
            phone=number,
            text=text,
            state=state,
            attempts=0,
            next_attempt_at=now,
            pickup_day=day,
            error=error,
            created_at=now,
        )
    )


def collect(settings: Settings, *, now: datetime | None = None, limit: int = 500) -> int:
    """Turn every new "issued" event into a message; returns how many messages were made."""
    with unit_of_work(settings) as session:
        outbox.register(session, CONSUMER)
    made = 0

    def handle(session: Session, events: list[outbox.Event]) -> None:
        nonlocal made
        moment = now or datetime.now(UTC)
        issued = [e for e in events if e.payload.get("to") == "issued"]
        for event in issued:
            _ready(session, settings, event, moment)
        made += len(issued)  # counted only for rounds that commit

    while True:
        before = made
        try:
            n = outbox.deliver(lambda: unit_of_work(settings), CONSUMER, handle, limit=limit,
                               topics=[outbox.Topic.RECORD_STATE])  # fmt: skip
        except Exception:
            made = before
            raise
        if n < limit:
            return made


# ----------------------------------------------------------------------------------- quiet hours


def quiet_until(sms: SmsSettings, office_code: str, now: datetime) -> datetime | None:
    """When the office's quiet hours end, if ``now`` is inside them (else ``None``)."""
    zone = office_zone(office_code)
    local = zone.local(now)
    start, end = sms.quiet_from, sms.quiet_until
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    morning = datetime.combine(local.date(), end, tzinfo=zone.tz)
    if t >= end:
        morning += timedelta(days=1)
    return morning.astimezone(UTC)


# ----------------------------------------------------------------------------------- the rounds


@dataclass
class Round:
    """What one sending round did."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    deferred: int = 0  # quiet hours
    errors: list[str] = field(default_factory=list)

    @property
    def handed_over(self) -> int:
        return self.sent + self.retry + self.failed


def _due(session: Session, sms: SmsSettings, now: datetime, limit: int) -> Any:
    unconfirmed = now - timedelta(seconds=sms.unconfirmed_seconds)
    stmt = (
        select(Notification)
        .where(
            or_(
                (Notification.state == N.PENDING) & (Notification.next_attempt_at <= now),
                (Notification.state == N.SENDING) & (Notification.attempted_at <= unconfirmed),
            )
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).all()


def _backoff(sms: SmsSettings, attempts: int) -> timedelta:
    seconds = sms.first_retry_seconds * 2 ** (attempts - 1)
    return timedelta(seconds=min(sms.max_retry_seconds, seconds))


def send_due(
    settings: Settings,
    *,
    gateway: SmsGateway | None = None,
    now: datetime | None = None,
    limit: int | None = None,
    workers: int = 8,
) -> Round:
    """One round: the due messages, outside quiet hours, handed to the gateway."""
    sms = sms_settings(settings)
    gateway = gateway or gateway_for(settings, sms)
    frozen = now is not None
    now = now or datetime.now(UTC)
    result = Round()
    batch: list[tuple[int, str, str, str]] = []
    with unit_of_work(settings) as session:
        for note in _due(session, sms, now, limit or sms.batch):
            morning = quiet_until(sms, note.office_code, now)
            if morning is not None:
                note.state, note.next_attempt_at = N.PENDING, morning
                result.deferred += 1
                continue
            note.state = N.SENDING
            note.attempts += 1
            note.attempted_at = now
            note.gateway = gateway.name
            batch.append((note.id, note.message_id, note.phone or "", note.text))
    if not batch:
        return result
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(batch)))) as pool:
        replies = list(pool.map(lambda m: gateway.send(m[1], m[2], m[3]), batch))
    done = now if frozen else datetime.now(UTC)
    with unit_of_work(settings) as session:
        notes = {
            note.id: note
            for note in session.scalars(
                select(Notification)
                .where(Notification.id.in_([m[0] for m in batch]))
                .with_for_update()  # a delivery report may be settling one of them
            )
        }
        for (note_id, _message_id, _phone, _text), reply in zip(batch, replies, strict=True):
            _record_handover(notes[note_id], reply, sms, done, result)
    return result


def _record_handover(
    note: Notification, reply: Handover, sms: SmsSettings, at: datetime, result: Round
) -> None:
    note.gateway_reply = reply.reply[:500]
    if note.state is not N.SENDING:  # a delivery report got here first: it knows better
        result.sent += reply.accepted
        return
    if reply.accepted:
        note.state, note.sent_at, note.error = N.SENT, at, None
        result.sent += 1
    elif reply.retryable and note.attempts < sms.max_attempts:
        note.state = N.PENDING
        note.next_attempt_at = at + _backoff(sms, note.attempts)
        note.error = reply.reply[:500]
        result.retry += 1
        result.errors.append(f"{note.request_id}: {reply.reply[:120]}")
    else:
        note.state, note.error = N.FAILED, reply.reply[:500]
        result.failed += 1
        result.errors.append(f"{note.request_id}: {reply.reply[:120]}")


# ------------------------------------------------------------------------------ delivery reports

#: Kannel's report types → the state they prove (None: no change of state).
REPORT_STATES: dict[int, NotificationState | None] = {
    1: N.DELIVERED, 2: N.FAILED, 4: None, 8: N.SENT, 16: N.FAILED,
}  # fmt: skip
_RANK = {N.PENDING: 0, N.SENDING: 1, N.SENT: 2, N.FAILED: 3, N.DELIVERED: 4, N.INVALID: 5}


def apply_report(
    settings: Settings, message_id: str, report: int, *, at: datetime | None = None
) -> NotificationState:
    """Apply a delivery report (Kannel's type number) to its message; reports may come in any
    order and twice, and never move a message backwards. Returns the message's state."""
    if report not in REPORT_STATES:
        raise InvalidValue(f"unknown delivery report type {report}")
    at = at or datetime.now(UTC)
    with unit_of_work(settings) as session:
        note = session.scalar(  # locked: two reports of one message may come at once
            select(Notification).where(Notification.message_id == message_id).with_for_update()
        )
        if note is None:
            raise NotFound(f"no message {message_id}")
        from printsrv.notify.gateways import KannelGateway

        target = REPORT_STATES[report]
        if target is not None and _RANK[target] < _RANK[note.state]:
            return note.state  # a late report of an earlier step (8 after 1)
        note.report = KannelGateway.REPORTS.get(report, str(report))
        if target is not None and _RANK[target] > _RANK[note.state]:
            note.state = target
            if note.sent_at is None:
                note.sent_at = at
            if target is N.DELIVERED:
                note.delivered_at = at
        return note.state


# ------------------------------------------------------------------------------------- overview


def counts(session: Session) -> dict[str, int]:
    """Messages per state."""
    rows = session.execute(
        select(Notification.state, func.count()).group_by(Notification.state)
    ).all()
    return {state.value: int(n) for state, n in rows}


def for_record(session: Session, request_id: str) -> list[Notification]:
    """The messages of one record, oldest first (the record page shows them)."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.request_id == request_id)
            .order_by(Notification.id)
        )
    )


def run(
    settings: Settings,
    *,
    interval: float = 5.0,
    stop: Callable[[], bool] = lambda: False,
    on_round: Callable[[int, Round], None] | None = None,
) -> None:
    """The daemon: collect and send until ``stop()`` says so."""
    sms = sms_settings(settings)
    gateway = gateway_for(settings, sms)
    while not stop():
        collected = collect(settings)
        result = send_due(settings, gateway=gateway)
        if on_round is not None and (collected or result.handed_over or result.deferred):
            on_round(collected, result)
        if not result.handed_over:
            clock.sleep(interval)


def pickup_day_of(session: Session, request_id: str) -> date | None:
    """The booked pickup day of a record's newest ready message."""
    return session.scalar(
        select(Notification.pickup_day)
        .where(Notification.request_id == request_id, Notification.kind == "ready")
        .order_by(Notification.id.desc())
        .limit(1)
    )

