"""An audit chain's hash and the appending of events, with nothing but a DB-API cursor.

The hash of an event (:func:`event_hash`) and the statements that append events and move a
chain's head, on SQLite and PostgreSQL. :mod:`printsrv.audit` (the session API every writer
uses) appends through :func:`append_many` and re-exports the rest; a command that reads and
writes a few rows through :mod:`printsrv.rawdb` (``render --queued``) uses this module
directly, so that it starts without SQLAlchemy or the table classes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from printsrv.auditscan import GENESIS_HASH
from printsrv.errors import InvalidValue

#: The chain of every event not written to a station's, node's or user's own chain.
MAIN_CHAIN = "main"
TAG = re.compile(r"^[a-z0-9_]+:[a-z0-9_]+:[a-z0-9_]+$")


def checked_tag(tag: object) -> str:
    """``tag`` as text; raises :class:`InvalidValue` unless it is ``source:subject:action``."""
    text = str(tag)
    if not TAG.match(text):
        raise InvalidValue(f"audit tag {text!r} is not source:subject:action")
    return text


def _canonical(fields: Any) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_json(details: dict[str, Any]) -> str:
    """An event's details as they are hashed and stored."""
    return _canonical(details).decode()


def event_hash(
    chain: str,
    chain_seq: int,
    at: datetime,
    tag: str,
    actor: str,
    office_code: str | None,
    subject: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of an event's content, its place in its chain and the
    previous hash of that chain."""
    content = _content(chain, chain_seq, at, tag, actor, office_code, subject, details, prev_hash)
    return hashlib.sha256(_canonical(content)).hexdigest()


def _content(
    chain: str,
    chain_seq: int | None,
    at: datetime,
    tag: str,
    actor: str,
    office_code: str | None,
    subject: str | None,
    details: dict[str, Any],
    prev_hash: str | None,
) -> dict[str, Any]:
    """What an event's hash covers (the canonical JSON of this, keys sorted)."""
    if at.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        at = at.replace(tzinfo=UTC)
    return {
        "chain": chain,
        "seq": chain_seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "tag": tag,
        "actor": actor,
        "office_code": office_code,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }


_HASHED = sorted(_content("", 0, datetime.now(UTC), "", "", None, None, {}, ""))


def pg_hash_expression(from_sql: dict[str, str]) -> str:
    """:func:`event_hash` as a PostgreSQL expression, for an event written by the same
    statement that learns some of its fields (``from_sql``: field name → SQL expression, e.g.
    the chain position from the locked head row). The other fields come as parameters
    ``%(hashed0)s``, ``%(hashed1)s``… (see :func:`pg_append_params`). The canonical JSON is built
    by concatenation: ``to_json(text)`` escapes exactly as Python's ``json.dumps`` with
    ``ensure_ascii=False`` does (tested against :func:`event_hash`)."""
    pieces: list[str] = []
    for key in _HASHED:
        if key in from_sql:
            pieces += [
                f"%(hashed{len(pieces) // 2})s::text",
                f"coalesce(to_json({from_sql[key]})::text, 'null')",
            ]
    pieces.append(f"%(hashed{len(pieces) // 2})s::text")
    return f"encode(sha256(convert_to({' || '.join(pieces)}, 'UTF8')), 'hex')"


def _hash_params(from_sql: dict[str, str], known: dict[str, Any]) -> dict[str, str]:
    """The parameters of :func:`pg_hash_expression`: the canonical JSON of ``known`` (an
    event's :func:`_content`) cut around the fields the statement fills in."""
    texts, current = [], "{"
    for n, key in enumerate(_HASHED):
        current += ("," if n else "") + f'"{key}":'
        if key in from_sql:
            texts.append(current)
            current = ""
        else:
            current += _canonical(known[key]).decode()
    texts.append(current + "}")
    return {f"hashed{n}": text for n, text in enumerate(texts)}



def pg_append_ctes(head: str, from_sql: dict[str, str]) -> str:
    """The common table expressions that append one event on PostgreSQL, inside a statement
    that may do more (a station's claim): ``head`` is a SELECT that locks the chain's head row
    (``FOR UPDATE`` hands back its newest version, so writers on one chain queue there) and
    gives ``seq`` (its ``last_seq + 1``), ``prev_hash`` and whatever else ``from_sql`` names
    (field → column of ``head``). The event is hashed from them in SQL
    (:func:`pg_hash_expression`), written, and the head moves on; ``moved`` returns the new
    ``last_seq``, no row when the chain has no head yet. Parameters: :func:`pg_append_params`.
    """
    office = from_sql.get("office_code", "%(office_code)s")
    subject = from_sql.get("subject", "%(subject)s")
    return (
        f"head AS ({head}),"
        f" event AS (SELECT head.*, {pg_hash_expression(from_sql)} AS hash FROM head),"
        " written AS (INSERT INTO audit_event (chain, chain_seq, at, tag, actor, office_code,"
        " subject, details, prev_hash, hash) SELECT %(chain)s, seq, %(at)s, %(tag)s,"
        f" %(actor)s, {office}, {subject}, %(details)s::json, prev_hash, hash FROM event),"
        " moved AS (UPDATE audit_head SET last_seq = event.seq, last_hash = event.hash"
        " FROM event WHERE audit_head.chain = %(chain)s RETURNING audit_head.last_seq)"
    )


def pg_append_params(
    from_sql: dict[str, str],
    *,
    chain: str,
    at: datetime,
    tag: str,
    actor: str,
    details: dict[str, Any],
    office_code: str | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """The parameters of :func:`pg_append_ctes` (``details`` as :func:`canonical_json`
    gives them: what is stored is what was hashed). ``office_code`` and ``subject`` count only
    where ``from_sql`` does not name them."""
    known = _content(chain, None, at, tag, actor, office_code, subject, details, None)
    return {
        "chain": chain,
        "at": at,
        "tag": tag,
        "actor": actor,
        "office_code": office_code,
        "subject": subject,
        "details": canonical_json(details),
        **_hash_params(from_sql, known),
    }


# An event on its own: one statement, one round trip (eight events per card).
_FROM_HEAD = {"seq": "seq", "prev_hash": "prev_hash"}
PG_RECORD = (
    "WITH "
    + pg_append_ctes(
        "SELECT last_seq + 1 AS seq, last_hash AS prev_hash FROM audit_head"
        " WHERE chain = %(chain)s FOR UPDATE",
        _FROM_HEAD,
    )
    + " SELECT last_seq FROM moved"
)


#: An event's time as SQLite stores it (SQLAlchemy's DATETIME text, in UTC): the fast verify
#: hashes these stored bytes, so every writer must store this form.
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"

_SQLITE_ADVANCE_BY = (
    "UPDATE audit_head SET last_seq = last_seq + ? WHERE chain = ? RETURNING last_seq, last_hash"
)
_SQLITE_INSERT = (
    "INSERT INTO audit_event (chain, chain_seq, at, tag, actor, office_code, subject, details,"
    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_MOVE_HASH = "UPDATE audit_head SET last_hash = ? WHERE chain = ?"
_CREATE_HEAD = (
    "INSERT INTO audit_head (chain, last_seq, last_hash) VALUES ({p}, 0, {p})"
    " ON CONFLICT DO NOTHING"
)


def append_many(
    cursor: Any,
    postgresql: bool,
    tag: object,
    events: Sequence[tuple[str | None, str | None, dict[str, Any]]],
    *,
    actor: str,
    chain: str,
) -> None:
    """Append one event per ``(office_code, subject, details)`` of ``events`` to ``chain``, in
    that order, in the cursor's transaction. On SQLite in three statements in all (the head
    moves by ``len(events)``, the events are inserted together, the head takes the last hash);
    on PostgreSQL one statement per event (the head row locked, the hash made in SQL)."""
    if not events:
        return
    tag = checked_tag(tag)
    at = datetime.now(UTC)
    if postgresql:
        for office_code, subject, details in events:
            params = pg_append_params(
                _FROM_HEAD, chain=chain, at=at, tag=tag, actor=actor, details=details,
                office_code=office_code, subject=subject,
            )  # fmt: skip
            cursor.execute(PG_RECORD, params)
            if cursor.fetchone() is None:  # a new chain: make its head, then append
                cursor.execute(_CREATE_HEAD.format(p="%s"), (chain, GENESIS_HASH))
                cursor.execute(PG_RECORD, params)
                if cursor.fetchone() is None:
                    raise InvalidValue(f"audit chain {chain!r} has no head")
        return
    cursor.execute(_SQLITE_ADVANCE_BY, (len(events), chain))
    row = cursor.fetchone()
    if row is None:
        cursor.execute(_CREATE_HEAD.format(p="?"), (chain, GENESIS_HASH))
        cursor.execute(_SQLITE_ADVANCE_BY, (len(events), chain))
        row = cursor.fetchone()
    chain_seq, prev_hash = int(row[0]) - len(events), str(row[1])
    stored_at = at.strftime(SQLITE_TIME)
    rows = []
    for office_code, subject, details in events:
        chain_seq += 1
        canonical = _canonical(details)
        stored = json.loads(canonical)  # hash exactly what is stored
        digest = event_hash(chain, chain_seq, at, tag, actor, office_code, subject, stored,
                            prev_hash)  # fmt: skip
        rows.append((chain, chain_seq, stored_at, tag, actor, office_code, subject,
                     canonical.decode(), prev_hash, digest))  # fmt: skip
        prev_hash = digest
    cursor.executemany(_SQLITE_INSERT, rows)
    cursor.execute(_SQLITE_MOVE_HASH, (prev_hash, chain))
