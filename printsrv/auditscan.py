"""Verifying the audit log fast, with nothing but a DB-API cursor: the SQL that builds each
event's hashed bytes from its stored columns, and one scan of the whole log in the order it was
written, split over worker processes when it is long. No SQLAlchemy and no table classes, so
``run.py audit verify`` starts in tens of milliseconds (:mod:`printsrv.audit` is the writer
and the chain-by-chain walk that words a problem).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    events: int
    last_seq: int
    problems: list[ChainProblem]
    chains: int = 1

    @property
    def ok(self) -> bool:
        return not self.problems


def _content_sql(quote: str, at_text: str, details_text: str) -> str:
    """SQL that builds an event's hashed bytes (the canonical JSON of :func:`_content`) from
    its stored columns: ``quote`` makes a JSON string of a text (SQLite's ``json_quote``,
    PostgreSQL's ``to_json``), escaping as ``json.dumps(..., ensure_ascii=False)`` does for
    every ordinary text. Where it would not (a control character, a time or details not
    stored in the usual form, an edit), the hash differs and :func:`_rehash` decides."""
    def q(column: str) -> str:
        return f"coalesce({quote.format(column)}, 'null')"

    return (
        f"""'{{"actor":' || {q('actor')} || ',"at":' || {q(at_text)}"""
        f"""|| ',"chain":' || {q('chain')} || ',"details":' || {details_text}"""
        f"""|| ',"office_code":' || {q('office_code')} || ',"prev_hash":' || {q('prev_hash')}"""
        f"""|| ',"seq":' || chain_seq || ',"subject":' || {q('subject')}"""
        f"""|| ',"tag":' || {q('tag')} || '}}'"""
    )


# One chunk of a chain as plain rows (a DB-API cursor, no ORM objects, no JSON parsing):
# seq, chain_seq, prev_hash, hash and the bytes the hash covers, built by the database from
# the stored columns. SQLite stores UTC times as "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's
# format); PostgreSQL formats them.
_CHUNK_SQLITE = (
    "SELECT seq, chain_seq, prev_hash, hash, "
    + _content_sql(
        "json_quote({})", "substr(at, 1, 10) || 'T' || substr(at, 12) || '+00:00'", "details"
    )
    + " FROM audit_event WHERE chain = ? AND chain_seq > ? ORDER BY chain_seq LIMIT ?"
)
_CHUNK_PG = (
    "SELECT seq, chain_seq, prev_hash, hash, "
    + _content_sql(
        "to_json({})::text",
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')",
        "details::text",
    )
    + " FROM audit_event WHERE chain = %s AND chain_seq > %s ORDER BY chain_seq LIMIT %s"
)


# The whole log in the order it was written (``seq``, the table's own order: no index
# lookups), with each event's hashed bytes built by the database as in ``_CHUNK_*`` and handed
# over as bytes (nothing to decode and re-encode). Within a chain ``seq`` order is its order
# too (the head row serialises a chain's writers), so one scan checks every chain at once.
_SCAN_SQLITE = (
    "SELECT seq, chain, chain_seq, prev_hash, hash, CAST("
    + _CHUNK_SQLITE.split(" hash, ", 1)[1].split(" FROM audit_event", 1)[0]
    + " AS BLOB) FROM audit_event WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
)
_SCAN_PG = (
    "SELECT seq, chain, chain_seq, prev_hash, hash, convert_to("
    + _CHUNK_PG.split(" hash, ", 1)[1].split(" FROM audit_event", 1)[0]
    + ", 'UTF8') FROM audit_event WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s"
)

# PostgreSQL: the same bytes built more cheaply. ``to_json`` on each text column is most of
# the server's work, and for most rows it only adds quotes: a row whose text columns hold no
# character JSON escapes (a quote, a backslash, a control character: the pattern names them,
# so it reads the same whatever ``standard_conforming_strings`` says) has them put between
# plain quotes, which is exactly what ``to_json`` gives; any other row gets the exact form.
# Nothing an edit could put in a column is left unescaped (a raw backslash and ``n`` would
# otherwise read as a line break).
_AT_PG = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
_PLAIN_PG = "concat(actor, chain, office_code, prev_hash, subject, tag)"


def _plain_pg(column: str) -> str:
    return f"""coalesce('"' || {column} || '"', 'null')"""


_CONTENT_PG = (
    f"CASE WHEN {_PLAIN_PG} !~ '[[:cntrl:][.quotation-mark.][.backslash.]]' THEN "
    f"""'{{"actor":"' || actor || '","at":"' || {_AT_PG} || '","chain":"' || chain"""
    f"""|| '","details":' || details::text || ',"office_code":' || {_plain_pg('office_code')}"""
    f"""|| ',"prev_hash":"' || prev_hash || '","seq":' || chain_seq"""
    f"""|| ',"subject":' || {_plain_pg('subject')} || ',"tag":"' || tag || '"}}'"""
    f" ELSE {_content_sql('to_json({})::text', _AT_PG, 'details::text')} END"
)
# One range of the log streamed by one COPY in binary, :data:`PG_BLOCK` events to a COPY row:
# their hashed bytes end to end in one ``bytea`` with each one's length, and their chains,
# chain positions, previous hashes and hashes as arrays. A row per event would cost a protocol
# message and a Python tuple each, and hex-encoded ``bytea`` twice the bytes. Every array of
# a block is aggregated from the same rows in the same pass, so they line up; the blocks and
# the events in them come in ``seq`` order (an order the checks rely on only to pass: out of
# order, the chain positions do not follow and the walk takes over).
PG_BLOCK = 2000
_COPY_PG = (
    "COPY (SELECT g.n, g.top, g.body, g.lens, g.chains, g.seqs, g.prevs, g.hashes"
    " FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1, %(block)s::bigint) AS b,"
    " LATERAL (SELECT count(*) AS n, max(seq) AS top, string_agg(c, ''::bytea) AS body,"
    " array_agg(octet_length(c)) AS lens, array_agg(chain) AS chains,"
    " array_agg(chain_seq) AS seqs, array_agg(prev_hash) AS prevs, array_agg(hash) AS hashes"
    " FROM (SELECT seq, chain, chain_seq, prev_hash, hash, convert_to("
    + _CONTENT_PG
    + ", 'UTF8') AS c FROM audit_event"
    " WHERE seq > b AND seq <= least(b + %(block)s::bigint, %(hi)s::bigint) ORDER BY seq) AS r)"
    " AS g WHERE g.n > 0) TO STDOUT (FORMAT BINARY)"
)
_COPY_TYPES = ["int8", "int8", "bytea", "int4[]", "text[]", "int8[]", "text[]", "text[]"]


class _NotPlain(Exception):
    """An event that is not plainly right, met inside a COPY (leaving it cancels the COPY)."""


#: A chain's part of one scanned range: first chain_seq, its prev_hash, last chain_seq, hash.
Span = list[Any]
#: Below this many events verify does not start worker processes.
PARALLEL_MIN = 100_000


def _scan(cursor: Any, pg: bool, lo: int, hi: int, chunk: int = 20000
          ) -> tuple[int, int, dict[str, Span]] | None:
    """Check the events with ``lo < seq <= hi`` in ``seq`` order: each one's hash over its
    stored bytes, and within each chain the next ``chain_seq`` and the link to the previous
    hash. Gives (events, highest seq, each chain's :data:`Span`), or ``None`` at the first
    event that is not plainly right (:func:`_verify_exact` then says what is wrong).
    PostgreSQL streams the range with one COPY; SQLite reads it ``chunk`` rows at a time."""
    spans: dict[str, Span] = {}
    if pg:
        count, top = 0, lo
        try:
            with cursor.copy(_COPY_PG, {"lo": int(lo), "hi": int(hi), "block": PG_BLOCK}
                             ) as copy:
                copy.set_types(_COPY_TYPES)
                for n, block_top, body, lens, chains, seqs, prevs, hashes in copy.rows():
                    _check_block(n, body, lens, chains, seqs, prevs, hashes, spans)
                    count, top = count + n, block_top
        except _NotPlain:
            return None
        return count, top, spans
    count, top = 0, lo
    while True:
        cursor.execute(_SCAN_SQLITE, (top, hi, chunk))
        rows = cursor.fetchall()
        if not rows:
            return count, top, spans
        try:
            _check(rows, spans)
        except _NotPlain:
            return None
        count += len(rows)
        top = rows[-1][0]


def _check(rows: Iterable[tuple[Any, ...]], spans: dict[str, Span]) -> tuple[int, int]:
    """Check ``rows`` (seq, chain, chain_seq, prev_hash, hash, hashed bytes) in order into
    ``spans``; (how many, the last seq). Raises :class:`_NotPlain` at the first that is not
    plainly right."""
    sha256 = hashlib.sha256
    count, seq = 0, 0
    for seq, chain, chain_seq, prev, digest, content in rows:  # noqa: B007
        span = spans.get(chain)
        if span is None:
            span = spans[chain] = [chain_seq, prev, chain_seq - 1, prev]
        if (
            chain_seq != span[2] + 1
            or prev != span[3]
            or content is None
            or sha256(content).hexdigest() != digest
        ):
            raise _NotPlain
        span[2] = chain_seq
        span[3] = digest
        count += 1
    return count, seq


def _check_block(n: int, body: bytes, lens: list[int | None], chains: list[str],
                 seqs: list[int], prevs: list[str], hashes: list[str],
                 spans: dict[str, Span]) -> None:
    """:func:`_check` for one block of a PostgreSQL range (:data:`_COPY_PG`)."""
    if not (len(lens) == len(chains) == len(seqs) == len(prevs) == len(hashes) == n):
        raise _NotPlain
    sha256 = hashlib.sha256
    view = memoryview(body)
    start = 0
    for length, chain, chain_seq, prev, digest in zip(lens, chains, seqs, prevs, hashes,
                                                      strict=True):
        if length is None:  # no bytes built (string_agg left them out)
            raise _NotPlain
        end = start + length
        span = spans.get(chain)
        if span is None:
            span = spans[chain] = [chain_seq, prev, chain_seq - 1, prev]
        if (
            chain_seq != span[2] + 1
            or prev != span[3]
            or sha256(view[start:end]).hexdigest() != digest
        ):
            raise _NotPlain
        span[2] = chain_seq
        span[3] = digest
        start = end
    if start != len(body):
        raise _NotPlain


def _scan_apart(job: tuple[str, int, int]) -> tuple[int, int, dict[str, Span]] | None:
    """:func:`_scan` in a worker process, on its own connection."""
    from printsrv import rawdb

    url, lo, hi = job
    db = rawdb.connect(url)
    assert db is not None  # only URLs it handles are split (verify_fast)
    with db:
        cursor = db.conn.cursor()
        try:
            return _scan(cursor, db.postgresql, lo, hi)
        finally:
            cursor.close()


def verify_fast(
    cursor: Any, pg: bool, url: str, progress: Callable[[int], Any] | None, workers: int
) -> ChainReport | None:
    """The whole log checked in one scan by ``seq`` (split over ``workers`` processes, each
    on its own connection to ``url``, when it is long), its ranges stitched chain by chain
    and held to the heads. ``cursor``: a DB-API cursor of the caller's connection (``pg``:
    PostgreSQL's placeholders). ``None`` when anything is not plainly right: the chain-by-chain
    walk (:func:`printsrv.audit.verify`) then finds and words it."""
    from printsrv import rawdb

    cursor.execute("SELECT chain, last_seq, last_hash FROM audit_head")
    heads = {chain: (seq, digest) for chain, seq, digest in cursor.fetchall()}
    cursor.execute("SELECT min(seq), max(seq) FROM audit_event")
    low, high = cursor.fetchone()
    parts: list[tuple[int, int, dict[str, Span]] | None] = []
    if low is not None:
        splittable = rawdb.connect_handles(url)
        if workers > 1 and high - low >= PARALLEL_MIN and splittable:
            import multiprocessing

            pieces = workers * 4
            bounds = [low - 1 + (high - low + 1) * n // pieces for n in range(pieces + 1)]
            jobs = [(url, a, b) for a, b in itertools.pairwise(bounds) if b > a]
            found: dict[int, tuple[int, int, dict[str, Span]] | None] = {}
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for n, part in pool.imap_unordered(_numbered_scan, list(enumerate(jobs))):
                    if part is None:
                        return None
                    found[n] = part
                    if progress is not None:
                        progress(part[0])
            parts = [found[n] for n in range(len(jobs))]
        else:
            parts = [_scan(cursor, pg, low - 1, high)]
            if parts[0] is not None and progress is not None:
                progress(parts[0][0])
    tails: dict[str, tuple[int, str]] = {}  # chain → (last chain_seq, its hash) so far
    count, last_seq = 0, 0
    for part in parts:
        if part is None:
            return None
        events, top, spans = part
        count += events
        last_seq = max(last_seq, top if events else 0)
        for chain, (first, first_prev, last, last_hash) in spans.items():
            if (first, first_prev) != (tails.get(chain, (0, GENESIS_HASH))[0] + 1,
                                       tails.get(chain, (0, GENESIS_HASH))[1]):
                return None
            tails[chain] = (last, last_hash)
    for chain in set(heads) | set(tails):
        if heads.get(chain) != tails.get(chain, (0, GENESIS_HASH)):
            return None
    return ChainReport(events=count, last_seq=last_seq, problems=[],
                       chains=len(set(heads) | set(tails)))


def _numbered_scan(job: tuple[int, tuple[str, int, int]]
                   ) -> tuple[int, tuple[int, int, dict[str, Span]] | None]:
    return job[0], _scan_apart(job[1])


