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

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from printsrv import audit as audit_log
from printsrv.audit import AuditTag
from printsrv.models import Office, Record, RecordState

DEFAULT_LEASE = timedelta(minutes=10)


def office_ids(session: Session, office_code: str) -> list[int]:
    """The office and, for a regency office, its kecamatan offices (their codes are
    remembered for the claim's audit events: a station asks this once, at start)."""
    office = session.scalar(select(Office).where(Office.code == office_code))
    if office is None:
        return []
    children = session.execute(
        select(Office.id, Office.code).where(Office.parent_id == office.id)
    ).all()
    url = str(session.get_bind().url)
    for office_id, code in [(office.id, office.code), *children]:
        _OFFICE_CODES[(url, office_id)] = code
    return [office.id, *(office_id for office_id, _ in children)]


@dataclass(frozen=True)
class Claim:
    """A record leased to a station (now in *printing*): what starting a card needs."""

    id: int
    request_id: str
    office_id: int


def claim_next(
    session: Session,
    offices: list[int],
    owner: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    audit: bool = True,
) -> Claim | None:
    """Lease the oldest queued record of ``offices`` to ``owner`` and move it to *printing*.

    Runs in the caller's transaction; returns ``None`` when nothing is queued. The state change
    is audited exactly as :func:`printsrv.records.transition` does it (queued → printing,
    reason "claimed"), on the session's audit chain. Returns the record's id, request id and
    office, not an ORM object: every station runs this for every card, and loading the whole
    record (its data, its identity-map entry) cost a quarter of the claim's CPU; whoever needs
    the record loads it.

    On PostgreSQL the claim is one statement (:data:`_PG_CLAIM`): the row is picked with
    ``FOR UPDATE SKIP LOCKED``, moved to *printing* and, in the same statement, the audit
    chain's head is advanced; a second statement writes the event. Driver SQL on the session's
    own connection and transaction, so the hot path spends its time in the database, not in
    building statements (measured in ``bench/station``).
    """
    if not offices:
        return None
    now = datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":
        return _claim_postgres(session, offices, owner, now, now + lease, audit)
    pick = (
        select(Record.id)
        .where(Record.office_id.in_(offices), Record.state == RecordState.QUEUED)
        .order_by(Record.id)
        .limit(1)
    )
    stmt = (
        update(Record)
        .where(Record.id == pick.scalar_subquery(), Record.state == RecordState.QUEUED)
        .values(
            state=RecordState.PRINTING,
            lease_owner=owner[:64],
            lease_expires=now + lease,
            updated_at=now,
        )
        .returning(Record.id, Record.request_id, Record.office_id)
    )
    row = session.connection().execute(stmt).first()
    if row is None:
        return None
    claim = Claim(int(row[0]), str(row[1]), int(row[2]))
    if audit:
        audit_log.record(
            session,
            AuditTag.RECORD_STATE_CHANGE,
            actor=owner,
            office_code=_office_code(session, claim.office_id),
            subject=claim.request_id,
            details=_CLAIMED,
        )
    return claim


_CLAIMED = {"from": RecordState.QUEUED.value, "to": RecordState.PRINTING.value, "reason": "claimed"}

# The pick, the move to *printing* and (when ``audit``) the advance of the audit chain's head,
# in one statement. The head moves only when a record was picked; a chain without a head row
# yet gives a NULL ``last_seq`` and the event goes through :func:`audit_log.record`, which
# creates it.
_PG_CLAIM = (
    "WITH picked AS ("
    " UPDATE record SET state = 'printing', lease_owner = %(owner)s,"
    " lease_expires = %(expires)s, updated_at = %(now)s"
    " WHERE id = (SELECT id FROM record WHERE office_id = ANY(%(offices)s)"
    " AND state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " AND state = 'queued' RETURNING id, request_id, office_id),"
    " head AS ("
    " UPDATE audit_head SET last_seq = last_seq + 1"
    " WHERE chain = %(chain)s AND %(audit)s AND EXISTS (SELECT 1 FROM picked)"
    " RETURNING last_seq, last_hash)"
    " SELECT picked.id, picked.request_id, picked.office_id, head.last_seq, head.last_hash"
    " FROM picked LEFT JOIN head ON true"
)


def _claim_postgres(
    session: Session,
    offices: list[int],
    owner: str,
    now: datetime,
    expires: datetime,
    audit: bool,
) -> Claim | None:
    chain = str(session.info.get(audit_log.CHAIN_KEY, audit_log.MAIN_CHAIN))
    conn = session.connection()
    row = conn.exec_driver_sql(
        _PG_CLAIM,
        {
            "owner": owner[:64],
            "expires": expires,
            "now": now,
            "offices": offices,
            "chain": chain,
            "audit": audit,
        },
    ).first()
    if row is None:
        return None
    claim = Claim(int(row[0]), str(row[1]), int(row[2]))
    chain_seq, prev_hash = row[3], row[4]
    if audit:
        office_code = _office_code(session, claim.office_id)
        if chain_seq is None:
            audit_log.record(
                session,
                AuditTag.RECORD_STATE_CHANGE,
                actor=owner,
                office_code=office_code,
                subject=claim.request_id,
                details=_CLAIMED,
            )
        else:
            audit_log.append(
                conn,
                chain,
                int(chain_seq),
                str(prev_hash),
                AuditTag.RECORD_STATE_CHANGE.value,
                actor=owner,
                office_code=office_code,
                subject=claim.request_id,
                details=_CLAIMED,
            )
    return claim


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
            select(Record).where(Record.state == RecordState.PRINTING, Record.lease_expires < now)
        )
    )
