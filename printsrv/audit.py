"""The append-only, hash-chained audit log.

:func:`record` is the only writer. Each event's hash covers its content and the previous hash,
so an edited, deleted or reordered event breaks the chain that :func:`verify` walks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, Text, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from printsrv.audit_tags import AuditTag
from printsrv.auditchain import (  # noqa: F401 - re-exported
    _FROM_HEAD,
    _HASHED,
    MAIN_CHAIN,
    PG_RECORD,
    _canonical,
    _content,
    _hash_params,
    append_many,
    canonical_json,
    checked_tag,
    event_hash,
    pg_append_ctes,
    pg_append_params,
    pg_hash_expression,
)
from printsrv.auditscan import (  # noqa: F401 - re-exported
    _CHUNK_PG,
    _CHUNK_SQLITE,
    GENESIS_HASH,
    PARALLEL_MIN,
    ChainProblem,
    ChainReport,
    verify_fast,
)
from printsrv.models import AuditEvent, AuditHead

CHAIN_KEY = "audit_chain"

__all__ = ["AuditTag"]  # its home is printsrv.audit_tags


def station_chain(station: str) -> str:
    """The audit chain a station's own units of work write to."""
    return f"station:{station}"[:64]


def node_chain(node_id: str) -> str:
    """The audit chain of what a kecamatan node's sync requests change at the server: each
    node's own, so that thirty nodes' syncs never queue on one chain's head."""
    return f"node:{node_id}"[:64]


def user_chain(username: str) -> str:
    """The audit chain of what a web user saw, exported or approved: each user's own, so that
    concurrent page views never queue on one chain's head."""
    return f"user:{username}"[:64]


_HEAD_TABLE = cast(Table, AuditHead.__table__)
_EVENT_TABLE = cast(Table, AuditEvent.__table__)
_HEAD = _HEAD_TABLE.c
# SQLite's statements, built once (building them per event cost a fifth of a card's time on
# SQLite in bench/station): lock and move the head, write the event, move the head's hash.
_ADVANCE = (
    update(_HEAD_TABLE)
    .where(_HEAD.chain == bindparam("head_chain"))
    .values(last_seq=_HEAD.last_seq + 1)
    .returning(_HEAD.last_seq, _HEAD.last_hash)
)
# The details go in as their canonical text (what is hashed), not through the JSON type's
# serializer: verify hashes the stored bytes as they are.
_INSERT_EVENT = insert(_EVENT_TABLE).values(details=bindparam("details_text", type_=Text))
_MOVE_HASH = (
    update(_HEAD_TABLE)
    .where(_HEAD.chain == bindparam("head_chain"))
    .values(last_hash=bindparam("head_hash"))
)

def _create_head(conn: Connection, chain: str) -> None:
    """The head row of a new chain (a no-op when another writer made it first)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(_HEAD_TABLE)
        .values(chain=chain, last_seq=0, last_hash=GENESIS_HASH)
        .on_conflict_do_nothing()
    )


def record(
    session: Session,
    tag: AuditTag | str,
    *,
    actor: str,
    office_code: str | None = None,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
    chain: str | None = None,
) -> None:
    """Append one event in the caller's transaction. Never logs personal biometric data.

    The event goes to ``chain`` if given, else to the chain named by
    ``session.info["audit_chain"]`` (a station's unit of work sets its own), else to the main
    chain. Core statements on the session's connection: no ORM flush or identity-map work on
    this hot path.
    """
    tag = checked_tag(tag)
    chain = chain or str(session.info.get(CHAIN_KEY, MAIN_CHAIN))
    canonical = _canonical(details or {})
    details = json.loads(canonical)  # store exactly what was hashed
    at = datetime.now(UTC)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = pg_append_params(
            _FROM_HEAD, chain=chain, at=at, tag=tag, actor=actor, details=details,
            office_code=office_code, subject=subject,
        )  # fmt: skip
        if conn.exec_driver_sql(PG_RECORD, params).first() is None:
            _create_head(conn, chain)
            conn.exec_driver_sql(PG_RECORD, params).one()
        return
    # SQLite: the UPDATE comes first because it takes the write lock before we read the head.
    row = conn.execute(_ADVANCE, {"head_chain": chain}).first()
    if row is None:
        _create_head(conn, chain)
        row = conn.execute(_ADVANCE, {"head_chain": chain}).one()
    chain_seq, prev_hash = int(row[0]), str(row[1])
    digest = event_hash(chain, chain_seq, at, tag, actor, office_code, subject, details, prev_hash)
    conn.execute(
        _INSERT_EVENT,
        {
            "chain": chain,
            "chain_seq": chain_seq,
            "at": at,
            "tag": tag,
            "actor": actor,
            "office_code": office_code,
            "subject": subject,
            "details_text": canonical.decode(),
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    conn.execute(_MOVE_HASH, {"head_chain": chain, "head_hash": digest})


def record_many(
    session: Session,
    tag: AuditTag | str,
    events: Sequence[tuple[str | None, str | None, dict[str, Any]]],
    *,
    actor: str,
    chain: str | None = None,
) -> None:
    """Append one event per ``(office_code, subject, details)`` of ``events``, in that order,
    as :func:`record` would one by one (same chain, same hashes), in the session's
    transaction: on SQLite in three statements in all, on PostgreSQL one per event
    (:func:`printsrv.auditchain.append_many`)."""
    if not events:
        return
    chain = chain or str(session.info.get(CHAIN_KEY, MAIN_CHAIN))
    postgresql = session.connection().dialect.name == "postgresql"
    cursor = _cursor(session)
    try:
        append_many(cursor, postgresql, tag, events, actor=actor, chain=chain)
    finally:
        cursor.close()


def _cursor(session: Session) -> Any:
    return session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _events(session: Session, chain: str, chunk: int = 20000) -> Iterator[tuple[Any, ...]]:
    """A chain's events in order, as plain rows read in chunks (keyset on ``chain_seq``)."""
    pg = session.connection().dialect.name == "postgresql"
    sql = _CHUNK_PG if pg else _CHUNK_SQLITE
    cursor = _cursor(session)
    try:
        last = 0
        while True:
            cursor.execute(sql, (chain, last, chunk))
            rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][1]
    finally:
        cursor.close()


def _rehash(session: Session, chain: str, seq: int) -> str | None:
    """The slow, exact check of an event whose stored bytes did not hash: read and parse its
    columns and hash them the way :func:`record` did (details not in canonical form, a time not
    in the usual text). ``None`` when the row does not even parse (edited)."""
    pg = session.connection().dialect.name == "postgresql"
    cursor = _cursor(session)
    try:
        cursor.execute(
            "SELECT chain_seq, at, tag, actor, office_code, subject,"
            + (" details::text" if pg else " details")
            + ", prev_hash FROM audit_event WHERE seq = "
            + ("%s" if pg else "?"),
            (seq,),
        )
        chain_seq, at, tag, actor, office, subject, details, prev_hash = cursor.fetchone()
    finally:
        cursor.close()
    try:
        when = at if isinstance(at, datetime) else datetime.fromisoformat(at)
        content = json.loads(details)
    except (TypeError, ValueError):
        return None
    return event_hash(chain, chain_seq, when, tag, actor, office, subject, content, prev_hash)


def event_count(session: Session) -> int:
    """How many events the chains' heads say the log holds (what :func:`verify` will walk)."""
    return int(session.scalar(select(func.coalesce(func.sum(AuditHead.last_seq), 0))) or 0)


def _verify_fast(
    session: Session, progress: Callable[[int], Any] | None, workers: int
) -> ChainReport | None:
    """:func:`printsrv.auditscan.verify_fast` on the session's connection."""
    conn = session.connection()
    url = conn.engine.url.render_as_string(hide_password=False)
    cursor = _cursor(session)
    try:
        return verify_fast(cursor, conn.dialect.name == "postgresql", url, progress, workers)
    finally:
        cursor.close()


def verify(
    session: Session, progress: Callable[[int], Any] | None = None, *, workers: int = 1
) -> ChainReport:
    """Check every chain; report every gap, edit, deletion or reordering found. ``progress``
    is called with the number of events checked since its last call. A log that is right is
    confirmed by one scan in the order it was written (``workers`` processes, forked, share
    a long one: only from a command, never inside a threaded server); any doubt and every
    chain is walked again in its own order to say exactly what is wrong."""
    fast = _verify_fast(session, progress, workers)
    if fast is not None:
        return fast
    return _verify_exact(session, progress)


def _verify_exact(
    session: Session, progress: Callable[[int], Any] | None = None
) -> ChainReport:
    """Walk every chain in its own order; report every gap, edit, deletion or reordering
    found. ``progress`` is called with the number of events checked since its last call."""
    problems: list[ChainProblem] = []
    heads = {h.chain: (h.last_seq, h.last_hash) for h in session.scalars(select(AuditHead))}
    chains = sorted(set(heads) | set(session.scalars(select(AuditEvent.chain).distinct())))
    count, last_seq = 0, 0
    sha256 = hashlib.sha256
    for chain in chains:
        expected, prev_hash, last_event = 1, GENESIS_HASH, 0
        done = 0
        for seq, chain_seq, stored_prev, stored_hash, content in _events(session, chain):
            count += 1
            last_event = seq
            if seq > last_seq:
                last_seq = seq
            if chain_seq != expected:
                problems.append(
                    ChainProblem(seq, f"chain {chain}: sequence gap at {expected} (events deleted)")
                )
            if stored_prev != prev_hash:
                problems.append(
                    ChainProblem(
                        seq, f"chain {chain}: previous-hash link broken (deleted or reordered)"
                    )
                )
            if (
                (content is None or sha256(content.encode()).hexdigest() != stored_hash)
                and _rehash(session, chain, seq) != stored_hash
            ):
                problems.append(
                    ChainProblem(seq, f"chain {chain}: content does not match its hash (edited)")
                )
            expected, prev_hash = chain_seq + 1, stored_hash
            done += 1
            if progress is not None and done == 20000:
                progress(done)
                done = 0
        if progress is not None and done:
            progress(done)
        head = heads.get(chain)
        if head is None:
            problems.append(ChainProblem(last_event, f"chain {chain}: head row missing"))
        elif head[0] != expected - 1:
            problems.append(
                ChainProblem(
                    last_event,
                    f"chain {chain}: head says {head[0]} events, found {expected - 1} "
                    "(events deleted at the end)",
                )
            )
        elif head[1] != prev_hash:
            problems.append(ChainProblem(last_event, f"chain {chain}: head hash differs"))
    return ChainReport(events=count, last_seq=last_seq, problems=problems, chains=len(chains))
