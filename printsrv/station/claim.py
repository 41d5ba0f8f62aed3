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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from printsrv import audit as audit_log
from printsrv.audit import AuditTag
from printsrv.models import Record, RecordState
from printsrv.offices import office_code, scope_office_ids
from printsrv.products import CARD_TYPES
from printsrv.records import audit_state_change, state_change_details

DEFAULT_LEASE = timedelta(minutes=10)


def office_ids(session: Session, office_code: str) -> list[int]:
    """The office and, for a regency office, its kecamatan offices (their codes are
    remembered for the claim's audit events: a station asks this once, at start)."""
    return scope_office_ids(session, office_code)


@dataclass(frozen=True)
class Claim:
    """A record leased to a station (now in *printing*): what starting a card needs."""

    id: int
    request_id: str
    office_id: int
    card_type: str = CARD_TYPES[0]


def claim_next(
    session: Session,
    offices: list[int],
    owner: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    audit: bool = True,
    card_types: Sequence[str] = CARD_TYPES,
) -> Claim | None:
    """Lease the oldest queued record of ``offices`` to ``owner`` and move it to *printing*.

    Only records of ``card_types`` are taken: the card types whose blank stock the station has
    in its hopper (:func:`printsrv.products.card_types_for_stock`); the others stay queued.

    Runs in the caller's transaction; returns ``None`` when nothing is queued. The state change
    is audited exactly as :func:`printsrv.records.transition` does it (queued → printing,
    reason "claimed"), on the session's audit chain. Returns the record's id, request id and
    office, not an ORM object: every station runs this for every card, and loading the whole
    record (its data, its identity-map entry) cost a quarter of the claim's CPU; whoever needs
    the record loads it.

    On PostgreSQL the claim is one statement (:data:`PG_CLAIM`), the audit event and its
    hash included (one round trip; it was two), as driver SQL on the session's own connection
    and transaction, so that the hot path spends its time in the database, not in Python or
    on the wire (measured in ``bench/station``; the oldest first means the oldest of each
    office's next records, "oldest" by record id).
    """
    if not offices or not card_types:
        return None
    now = datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":
        return _claim_postgres(session, offices, owner, now, now + lease, audit, card_types)
    pick = (
        select(Record.id)
        .where(
            Record.office_id.in_(offices),
            Record.state == RecordState.QUEUED,
            Record.card_type.in_(card_types),
            Record.owner_node.is_(None),  # a kecamatan node's record is the node's to print
        )
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
        .returning(Record.id, Record.request_id, Record.office_id, Record.card_type)
    )
    row = session.connection().execute(stmt).first()
    if row is None:
        return None
    claim = Claim(int(row[0]), str(row[1]), int(row[2]), str(row[3]))
    if audit:
        _audit(session, claim, owner)
    return claim


_CLAIMED = state_change_details(RecordState.QUEUED, RecordState.PRINTING, "claimed")


def _audit(session: Session, claim: Claim, owner: str) -> None:
    """The claim's audit event as :func:`printsrv.records.transition` writes it (SQLite; on
    PostgreSQL only for a chain's first event, whose head that creates)."""
    audit_state_change(session, claim.office_id, claim.request_id, _CLAIMED, actor=owner)

# The claim's audit event, hashed inside the statement: its chain position and previous hash
# come from the locked head row, its subject and office from the picked record.
_CLAIM_TAG = AuditTag.RECORD_STATE_CHANGE.value
_FROM_SQL = {
    "seq": "seq",
    "prev_hash": "prev_hash",
    "subject": "request_id",
    "office_code": "office_code",
}

# The whole claim in one statement: pick the oldest of each office's next queued record that no
# other transaction holds (SKIP LOCKED; one index probe per office, migration 0009; a station
# serving several offices holds each office's next record until its transaction ends, and
# others skip to the one after; the office is a range, not an equality, so that only that
# index gives the order asked for: with an equality the planner may walk the id-ordered index
# of every queued record instead, 25 ms for an office with nothing queued among 100,000),
# move it to *printing*, and append its audit event (:func:`audit_log.pg_append_ctes`). The
# event is written only when a record was picked and ``audit`` is set; a chain without a head
# row yet gives a NULL ``last_seq`` and the event goes through :func:`audit_log.record`, which
# creates it.
PG_CLAIM = (
    "WITH picked AS ("
    " UPDATE record SET state = 'printing', lease_owner = %(owner)s,"
    " lease_expires = %(expires)s, updated_at = %(at)s"
    " WHERE id = (SELECT min(next.id) FROM unnest(%(offices)s::int[]) AS o(id), LATERAL"
    " (SELECT id FROM record WHERE office_id BETWEEN o.id AND o.id AND state = 'queued'"
    " AND card_type = ANY(%(card_types)s::text[]) AND owner_node IS NULL"
    " ORDER BY office_id, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS next)"
    " AND state = 'queued' RETURNING id, request_id, office_id, card_type), "
    + audit_log.pg_append_ctes(
        "SELECT h.last_seq + 1 AS seq, h.last_hash AS prev_hash, p.request_id,"
        " (SELECT u.code FROM unnest(%(offices)s::int[], %(codes)s::text[]) AS u(id, code)"
        " WHERE u.id = p.office_id) AS office_code"
        " FROM audit_head h, picked p WHERE h.chain = %(chain)s AND %(audit)s FOR UPDATE OF h",
        _FROM_SQL,
    )
    + " SELECT picked.id, picked.request_id, picked.office_id, (SELECT last_seq FROM moved),"
    " picked.card_type FROM picked"
)


def pg_claim_parameters(
    offices: list[int],
    codes: Sequence[str | None],
    owner: str,
    chain: str,
    now: datetime,
    expires: datetime,
    audit: bool,
    card_types: Sequence[str] = CARD_TYPES,
) -> dict[str, Any]:
    """The parameters of :data:`PG_CLAIM` (``codes``: each office's code, for the event;
    ``card_types``: the card types the station has blanks for)."""
    return {
        "owner": owner[:64],
        "card_types": list(card_types),
        "expires": expires,
        "offices": offices,
        "codes": codes,
        "audit": audit,
        **audit_log.pg_append_params(
            _FROM_SQL, chain=chain, at=now, tag=_CLAIM_TAG, actor=owner, details=_CLAIMED
        ),
    }


def _claim_postgres(
    session: Session,
    offices: list[int],
    owner: str,
    now: datetime,
    expires: datetime,
    audit: bool,
    card_types: Sequence[str],
) -> Claim | None:
    chain = str(session.info.get(audit_log.CHAIN_KEY, audit_log.MAIN_CHAIN))
    codes = [office_code(session, office) for office in offices]
    row = (
        session.connection()
        .exec_driver_sql(
            PG_CLAIM, pg_claim_parameters(
                offices, codes, owner, chain, now, expires, audit, card_types
            )
        )
        .first()
    )
    if row is None:
        return None
    claim = Claim(int(row[0]), str(row[1]), int(row[2]), str(row[4]))
    if audit and row[3] is None:  # the chain's first event: record() creates its head
        _audit(session, claim, owner)
    return claim


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
    return bool(cast("CursorResult[Any]", result).rowcount)  # an UPDATE's result


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
