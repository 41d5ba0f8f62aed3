"""The event outbox: state changes that others must learn of, durable and in order.

A change (a record queued, held, released, cancelled or issued; every blank and ribbon movement;
a reprint decision; a record's biometrics crypto-shredded) appends one
:class:`~printsrv.models.OutboxEvent` with :func:`publish` **in the same transaction** as the
change: if the change commits, so does its event, and if it rolls
back, no consumer ever hears of it.

Consumers (the SMS sender, the kecamatan sync…) each keep a cursor in ``outbox_consumer`` and get
at-least-once delivery in a stable order: :func:`deliver` hands a batch to a handler and moves
the cursor when the handler returns. A handler that writes to this database in the session it is
given commits with the cursor (exactly once); one that talks to the outside world must apply each
``event_id`` once (an idempotent message id, a unique key on the peer).

Order is ``(tx, id)``. On PostgreSQL, ids are taken before commit, so a later id can commit
first; ``tx`` is the writing transaction's id and an event is read only when every transaction
older than the reader's snapshot has ended (``pg_snapshot_xmin``), so nothing can ever commit
behind a cursor. On SQLite writers take turns: ``tx`` is 0 and ids are commit order.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal_column, select, tuple_, update
from sqlalchemy.orm import Session

from printsrv.errors import NotFound, PrintSrvError
from printsrv.models import OutboxConsumer, OutboxEvent


class Topic(enum.StrEnum):
    """What an event is about; its payload's keys are listed beside each."""

    #: request_id, office, from (None when it enters), to, reason
    RECORD_STATE = "record.state"
    #: serial, stock_type, kind, from, to, office, to_office, station, request_id, cause, reference
    BLANK_MOVEMENT = "blank.movement"
    #: kind (ribbon/film), serial, action, office, station, panels, …
    RIBBON_MOVEMENT = "ribbon.movement"
    #: request_id, office, approved, by, requested_by, from_state, previous_card
    REPRINT_DECISION = "reprint.decision"
    #: request_id, office, reason, at, data_key (bool), media (kinds): a record's biometrics
    #: crypto-shredded (what was destroyed, never the data)
    MEDIA_SHRED = "record.shred"


class OutboxError(PrintSrvError):
    """A consumer name is unknown or already taken, or a delivery could not be recorded."""


@dataclass(frozen=True)
class Event:
    """One outbox event as a consumer sees it."""

    id: int
    tx: int
    event_id: str
    at: datetime
    topic: str
    office_code: str | None
    subject: str | None
    payload: dict[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        return (self.tx, self.id)


@dataclass(frozen=True)
class ConsumerStatus:
    """A consumer's position and how far behind it is."""

    name: str
    position: tuple[int, int]
    delivered: int
    delivered_at: datetime | None
    pending: int
    oldest_pending_at: datetime | None
    error: str | None
    error_at: datetime | None

    def lag(self, now: datetime | None = None) -> timedelta:
        """How long the oldest event it has not had has been waiting (zero when none waits)."""
        if self.oldest_pending_at is None:
            return timedelta(0)
        now = now or datetime.now(UTC)
        oldest = self.oldest_pending_at
        if oldest.tzinfo is None:  # SQLite hands back naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        return max(timedelta(0), now - oldest)


_EVENT_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.tx,
    OutboxEvent.event_id,
    OutboxEvent.at,
    OutboxEvent.topic,
    OutboxEvent.office_code,
    OutboxEvent.subject,
    OutboxEvent.payload,
)


def _row(topic: Topic | str, office_code: str | None, subject: str | None,
         payload: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "at": at,
        "topic": str(topic),
        "office_code": office_code,
        "subject": subject,
        "payload": payload,
    }


def publish(
    session: Session,
    topic: Topic | str,
    *,
    office_code: str | None,
    subject: str | None,
    payload: dict[str, Any],
    at: datetime | None = None,
) -> str:
    """Append one event in the caller's transaction; returns its stable ``event_id``.

    ``payload`` must be JSON (strings, numbers, booleans, None, lists, dicts) and carries no
    biometric data. A Core statement: no ORM flush on this hot path.
    """
    row = _row(topic, office_code, subject, payload, at or datetime.now(UTC))
    session.connection().execute(insert(OutboxEvent), row)
    return str(row["event_id"])


def publish_many(
    session: Session,
    topic: Topic | str,
    events: Iterable[tuple[str | None, str | None, dict[str, Any]]],
    *,
    at: datetime | None = None,
) -> int:
    """Append many events of one topic (``(office_code, subject, payload)`` each) in one
    statement per thousand; returns how many."""
    at = at or datetime.now(UTC)
    rows = [_row(topic, office, subject, payload, at) for office, subject, payload in events]
    conn = session.connection()
    for start in range(0, len(rows), 1000):
        conn.execute(insert(OutboxEvent), rows[start : start + 1000])
    return len(rows)


def record_state_payload(
    request_id: str, office_code: str, old: str | None, new: str, reason: str | None
) -> dict[str, Any]:
    """The payload of a :attr:`Topic.RECORD_STATE` event (``old`` is None when a record enters)."""
    return {
        "request_id": request_id,
        "office": office_code,
        "from": None if old is None else str(old),
        "to": str(new),
        "reason": reason,
    }


# ----------------------------------------------------------------------------------- consumers


def register(session: Session, name: str, *, from_now: bool = False) -> OutboxConsumer:
    """Register consumer ``name`` (idempotent). A new consumer starts at the first event, or
    after the newest committed one with ``from_now``."""
    if not name or len(name) > 64:
        raise OutboxError(f"consumer name {name!r}: 1 to 64 characters")
    consumer = session.get(OutboxConsumer, name)
    if consumer is not None:
        return consumer
    position = (0, 0)
    if from_now:
        newest = session.execute(
            _visible(select(OutboxEvent.tx, OutboxEvent.id), session)
            .order_by(OutboxEvent.tx.desc(), OutboxEvent.id.desc())
            .limit(1)
        ).first()
        if newest is not None:
            position = (int(newest[0]), int(newest[1]))
    consumer = OutboxConsumer(
        name=name, cursor_tx=position[0], cursor_id=position[1], delivered=0,
        registered_at=datetime.now(UTC),
    )  # fmt: skip
    session.add(consumer)
    session.flush()
    return consumer


def _consumer(session: Session, name: str, *, lock: bool = False) -> OutboxConsumer:
    stmt = select(OutboxConsumer).where(OutboxConsumer.name == name)
    if lock:
        stmt = stmt.with_for_update()
    consumer = session.scalar(stmt)
    if consumer is None:
        raise NotFound(f"no outbox consumer {name!r}")
    return consumer


#: PostgreSQL: the oldest transaction still running that may belong to this database. Ids of
#: transactions are numbered across the whole server, so a transaction of another database
#: shows in the snapshot too; one is left out only when ``pg_stat_activity`` positively names
#: another database for its id (read after the snapshot, so a miss only makes us wait).
_HORIZON: Any = literal_column("""(
    SELECT coalesce(
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap.s) AS x
         WHERE (x::text::bigint % 4294967296) NOT IN (
             SELECT backend_xid::text::bigint FROM pg_stat_activity
             WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database())),
        pg_snapshot_xmax(snap.s)::text::bigint)
    FROM (SELECT pg_current_snapshot() AS s) AS snap)""")


def _visible(stmt: Any, session: Session) -> Any:
    """Only events that no still running, older transaction can precede (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.where(OutboxEvent.tx < _HORIZON)
    return stmt


def _after(position: tuple[int, int]) -> Any:
    return tuple_(OutboxEvent.tx, OutboxEvent.id) > tuple_(*position)


def fetch(
    session: Session, name: str, *, limit: int = 500, topics: Sequence[str] | None = None
) -> list[Event]:
    """The next events for consumer ``name`` after its cursor, oldest first (read only)."""
    consumer = _consumer(session, name)
    stmt = _visible(select(*_EVENT_COLUMNS), session).where(
        _after((consumer.cursor_tx, consumer.cursor_id))
    )
    if topics:
        stmt = stmt.where(OutboxEvent.topic.in_([str(t) for t in topics]))
    stmt = stmt.order_by(OutboxEvent.tx, OutboxEvent.id).limit(limit)
    return [Event(*row) for row in session.execute(stmt)]


def acknowledge(session: Session, name: str, last: Event, *, count: int = 1) -> None:
    """Move consumer ``name``'s cursor to ``last`` (never backwards) and clear its error."""
    consumer = _consumer(session, name, lock=True)
    if last.position <= (consumer.cursor_tx, consumer.cursor_id):
        return
    consumer.cursor_tx, consumer.cursor_id = last.position
    consumer.delivered += count
    consumer.delivered_at = datetime.now(UTC)
    consumer.error = None
    consumer.error_at = None


def note_error(session: Session, name: str, error: str) -> None:
    """Record why consumer ``name``'s last delivery failed (shown by ``outbox status``)."""
    session.execute(
        update(OutboxConsumer)
        .where(OutboxConsumer.name == name)
        .values(error=error[:1000], error_at=datetime.now(UTC))
    )


Handler = Callable[[Session, list[Event]], None]


def deliver(
    sessions: Callable[[], Any],
    name: str,
    handler: Handler,
    *,
    limit: int = 500,
    topics: Sequence[str] | None = None,
) -> int:
    """One round for consumer ``name``: fetch up to ``limit`` events, hand them to ``handler``
    with the open session, and move the cursor in the same transaction. Returns how many were
    delivered (0: nothing waits).

    ``sessions`` is a unit-of-work factory (``printsrv.db.unit_of_work`` bound to settings). The
    consumer's row is locked for the round, so two processes of one consumer take turns. If the
    handler raises, the cursor stays, the error is recorded, and the exception propagates: the
    same events come again on the next round (at least once).
    """
    try:
        with sessions() as session:
            _consumer(session, name, lock=True)
            events = fetch(session, name, limit=limit)
            if topics:  # the cursor passes events of other topics too
                wanted = {str(t) for t in topics}
                handler(session, [e for e in events if e.topic in wanted])
            elif events:
                handler(session, events)
            if events:
                acknowledge(session, name, events[-1], count=len(events))
            return len(events)
    except Exception as exc:
        with sessions() as session:
            note_error(session, name, f"{type(exc).__name__}: {exc}")
        raise


def status(session: Session, now: datetime | None = None) -> list[ConsumerStatus]:
    """Every consumer with its position, how many committed events it has not had, and the time
    of the oldest of them."""
    out = []
    for consumer in session.scalars(select(OutboxConsumer).order_by(OutboxConsumer.name)):
        position = (consumer.cursor_tx, consumer.cursor_id)
        pending, oldest = session.execute(
            _visible(select(func.count(), func.min(OutboxEvent.at)), session).where(
                _after(position)
            )
        ).one()
        out.append(
            ConsumerStatus(
                name=consumer.name,
                position=position,
                delivered=consumer.delivered,
                delivered_at=consumer.delivered_at,
                pending=int(pending),
                oldest_pending_at=oldest,
                error=consumer.error,
                error_at=consumer.error_at,
            )
        )
    return out


def totals(session: Session) -> tuple[int, datetime | None]:
    """How many events the outbox holds and the time of the newest."""
    count, newest = session.execute(select(func.count(), func.max(OutboxEvent.at))).one()
    return int(count), newest


def prune(session: Session, *, older_than: timedelta) -> int:
    """Delete events every consumer has had and that are older than ``older_than``; returns how
    many. With no consumer registered nothing is deleted (someone may still register)."""
    consumers = session.scalars(select(OutboxConsumer)).all()
    if not consumers:
        return 0
    slowest = min((c.cursor_tx, c.cursor_id) for c in consumers)
    cutoff = datetime.now(UTC) - older_than
    result = session.execute(
        delete(OutboxEvent).where(
            tuple_(OutboxEvent.tx, OutboxEvent.id) <= tuple_(*slowest), OutboxEvent.at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def unregister(session: Session, name: str) -> None:
    """Remove consumer ``name`` (its cursor no longer holds events back from :func:`prune`)."""
    session.delete(_consumer(session, name))
