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

    One statement, ``UPDATE record … WHERE id = (SELECT id … ORDER BY id LIMIT 1 FOR UPDATE
    SKIP LOCKED) RETURNING …``: one round trip instead of a SELECT, a lazy office load and two
    UPDATEs, so the row lock and the audit chain's head lock are held for as short a time as
    possible (measured in ``bench/station``). The state change is audited exactly as
    :func:`printsrv.records.transition` does it (queued → printing, reason "claimed").
    """
    if not offices:
        return None
    pick = (
        select(Record.id)
        .where(Record.office_id.in_(offices), Record.state == RecordState.QUEUED)
        .order_by(Record.id)
        .limit(1)
    )
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    now = datetime.now(UTC)
    stmt = (
        update(Record)
        .where(Record.id == pick.scalar_subquery(), Record.state == RecordState.QUEUED)
        .values(
            state=RecordState.PRINTING,
            lease_owner=owner[:64],
            lease_expires=now + lease,
            updated_at=now,
        )
        .returning(Record)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    record = session.scalars(stmt).first()
    if record is None:
        return None
    if audit:
        from printsrv import audit as audit_log
        from printsrv.audit import AuditTag

        audit_log.record(
            session,
            AuditTag.RECORD_STATE_CHANGE,
            actor=owner,
            office_code=_office_code(session, record.office_id),
            subject=record.request_id,
            details={"from": RecordState.QUEUED.value, "to": RecordState.PRINTING.value,
                     "reason": "claimed"},
        )
    return record


_OFFICE_CODES: dict[tuple[str, int], str] = {}


def _office_code(session: Session, office_id: int) -> str | None:
    """An office's code, remembered per database: codes never change, and the claim (every
    station's hot path) should not pay a round trip for it."""
    key = (str(session.get_bind().url), office_id)
    if key not in _OFFICE_CODES:
        office = session.get(Office, office_id)
        if office is None:
            return None
        _OFFICE_CODES[key] = office.code
    return _OFFICE_CODES[key]


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
