"""The append-only, hash-chained audit log.

:func:`record` is the only writer. Each event's hash covers its content and the previous hash,
so an edited, deleted or reordered event breaks the chain that :func:`verify` walks.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from printsrv.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
_TAG = re.compile(r"^[a-z0-9_]+:[a-z0-9_]+:[a-z0-9_]+$")


class AuditTag(enum.StrEnum):
    """Known event tags, ``source:subject:action`` (Warehouse ``events/tags.py`` style)."""

    SYSTEM_DATABASE_UPGRADE = "system:database:upgrade"
    SYSTEM_KEYS_CREATE = "system:keys:create"
    INTAKE_BATCH_IMPORT = "intake:batch:import"
    INTAKE_BATCH_REJECT = "intake:batch:reject"
    INTAKE_RECORD_IMPORT = "intake:record:import"
    INTAKE_RECORD_HOLD = "intake:record:hold"
    RECORD_STATE_CHANGE = "record:record:state_change"
    RECORD_MEDIA_PURGE = "record:media:purge"
    RECORD_MEDIA_DECRYPT = "record:media:decrypt"
    OFFICE_OFFICE_CREATE = "admin:office:create"
    USER_USER_CREATE = "admin:user:create"


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(
    seq: int,
    at: datetime,
    tag: str,
    actor: str,
    office_code: str | None,
    subject: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of an event's content and the previous hash."""
    if at.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        at = at.replace(tzinfo=UTC)
    content = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "tag": tag,
        "actor": actor,
        "office_code": office_code,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical(content)).hexdigest()


def record(
    session: Session,
    tag: AuditTag | str,
    *,
    actor: str,
    office_code: str | None = None,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction. Never logs personal biometric data."""
    tag = str(tag)
    if not _TAG.match(tag):
        raise ValueError(f"audit tag {tag!r} is not source:subject:action")
    details = json.loads(_canonical(details or {}))  # store exactly what was hashed
    # UPDATE first: it takes the row lock (PostgreSQL) / write lock (SQLite) before we read.
    row = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(last_seq=AuditHead.last_seq + 1)
        .returning(AuditHead.last_seq, AuditHead.last_hash)
    ).one()
    seq, prev_hash = int(row[0]), str(row[1])
    at = datetime.now(UTC)
    digest = event_hash(seq, at, tag, actor, office_code, subject, details, prev_hash)
    event = AuditEvent(
        seq=seq,
        at=at,
        tag=tag,
        actor=actor,
        office_code=office_code,
        subject=subject,
        details=details,
        prev_hash=prev_hash,
        hash=digest,
    )
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest))
    return event


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    events: int
    last_seq: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _events(session: Session, chunk: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(chunk)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> ChainReport:
    """Walk the whole chain; report every gap, edit, deletion or reordering found."""
    problems: list[ChainProblem] = []
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for ev in _events(session):
        count += 1
        if ev.seq != expected_seq:
            problems.append(
                ChainProblem(ev.seq, f"sequence gap: expected {expected_seq} (events deleted)")
            )
        if ev.prev_hash != prev_hash:
            problems.append(
                ChainProblem(ev.seq, "previous-hash link broken (deleted or reordered)")
            )
        digest = event_hash(
            ev.seq, ev.at, ev.tag, ev.actor, ev.office_code, ev.subject, ev.details, ev.prev_hash
        )
        if digest != ev.hash:
            problems.append(ChainProblem(ev.seq, "content does not match its hash (edited)"))
        expected_seq, prev_hash = ev.seq + 1, ev.hash
    head = session.get(AuditHead, 1)
    if head is not None:
        if head.last_seq != expected_seq - 1:
            problems.append(
                ChainProblem(head.last_seq, f"head says {head.last_seq} events, found {count}")
            )
        elif head.last_hash != prev_hash:
            problems.append(ChainProblem(head.last_seq, "head hash differs from last event"))
    return ChainReport(events=count, last_seq=expected_seq - 1, problems=problems)
