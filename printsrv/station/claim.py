"""Leases on queued records: many stations, never the same record twice.

PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`` picks a row no other transaction holds,
then the row moves to *printing* with ``lease_owner``/``lease_expires`` in the same
transaction. SQLite: :func:`printsrv.db.make_engine` begins every transaction with
``BEGIN IMMEDIATE``, which serialises writers, so a plain ``SELECT … LIMIT 1`` is safe.

A lease is not a licence for others to take a record back when it expires: a record in
*printing* may have a blank in a printer. Only the owning station's recovery, or an operator
(``station resolve``), ends it. An expired lease is reported as *stale*.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from printsrv.models import Office, Record, RecordState
from printsrv.records import transition

DEFAULT_LEASE = timedelta(minutes=10)


def office_ids(session: Session, office_code: str) -> list[int]:
    """The office and, for a regency office, its kecamatan offices."""
    office = session.scalar(select(Office).where(Office.code == office_code))
    if office is None:
        return []
    children = session.scalars(select(Office.id).where(Office.parent_id == office.id))
    return [office.id, *children]


def claim_next(
    session: Session,
    offices: list[int],
    owner: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    audit: bool = True,
) -> Record | None:
    """Lease the oldest queued record of ``offices`` to ``owner`` and move it to *printing*.

    Runs in the caller's transaction; returns ``None`` when nothing is queued.
    """
    if not offices:
        return None
    query = (
        select(Record)
        .where(Record.office_id.in_(offices), Record.state == RecordState.QUEUED)
        .order_by(Record.id)
        .limit(1)
    )
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Record)
    record = session.scalar(query)
    if record is None:
        return None
    now = datetime.now(UTC)
    if audit:
        transition(session, record, RecordState.PRINTING, actor=owner, reason="claimed")
    else:
        record.state = RecordState.PRINTING
        record.updated_at = now
    record.lease_owner = owner[:64]
    record.lease_expires = now + lease
    session.flush()
    return record


def renew_lease(
    session: Session, record_id: int, owner: str, *, lease: timedelta = DEFAULT_LEASE
) -> bool:
    """Extend ``owner``'s lease on a record in *printing*; ``False`` if it is not theirs."""
    result = session.execute(
        update(Record)
        .where(
            Record.id == record_id,
            Record.lease_owner == owner,
            Record.state == RecordState.PRINTING,
        )
        .values(lease_expires=datetime.now(UTC) + lease)
    )
    return bool(result.rowcount)


def drop_lease(record: Record) -> None:
    """Clear the lease fields (the record left *printing*)."""
    record.lease_owner = None
    record.lease_expires = None


def stale_leases(session: Session, now: datetime | None = None) -> list[Record]:
    """Records in *printing* whose lease has expired (their station died or hangs)."""
    now = now or datetime.now(UTC)
    return list(
        session.scalars(
            select(Record).where(
                Record.state == RecordState.PRINTING, Record.lease_expires < now
            )
        )
    )
