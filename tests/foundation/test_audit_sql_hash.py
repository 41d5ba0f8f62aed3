"""The audit hash computed inside PostgreSQL (a station's claim writes its event in the same
statement that picks the record) is the hash :func:`printsrv.audit.event_hash` computes, for
any text the statement fills in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from printsrv import audit

# PostgreSQL text holds any character but NUL; lone surrogates are not text at all.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
JSON_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), TEXT)

# Chain position and previous hash always come from the statement; office and subject may.
FROM_SQL = {"seq": "%(seq)s::int", "prev_hash": "%(prev)s::text"}
OPTIONAL = {"office_code": "%(office)s::text", "subject": "%(subject)s::text"}


@settings(max_examples=300, deadline=None)
@given(
    actor=TEXT,
    chain=TEXT,
    tag=TEXT,
    office=st.none() | TEXT,
    subject=st.none() | TEXT,
    prev=TEXT,
    seq=st.integers(1, 2**31 - 1),
    details=st.dictionaries(TEXT, JSON_VALUE, max_size=4),
    micros=st.integers(0, 10**15),
    optional=st.sets(st.sampled_from(sorted(OPTIONAL))),
)
def test_sql_hash_is_event_hash(
    pg: psycopg.Connection,
    actor: str,
    chain: str,
    tag: str,
    office: str | None,
    subject: str | None,
    prev: str,
    seq: int,
    details: dict[str, object],
    micros: int,
    optional: set[str],
) -> None:
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    from_sql = FROM_SQL | {key: OPTIONAL[key] for key in optional}
    given_here = {key: value for key, value in (("office_code", office), ("subject", subject))
                  if key not in optional}  # fmt: skip
    params = audit.pg_append_params(
        from_sql, chain=chain, at=at, tag=tag, actor=actor, details=details, **given_here
    )
    row = pg.execute(
        f"SELECT {audit.pg_hash_expression(from_sql)}",
        {**params, "seq": seq, "prev": prev, "office": office, "subject": subject},
    ).fetchone()
    assert row is not None
    assert row[0] == audit.event_hash(chain, seq, at, tag, actor, office, subject, details, prev)
