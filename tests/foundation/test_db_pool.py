"""Pooled PostgreSQL connections: one that sat idle is pinged before use and replaced when the
server dropped it; one just checked in is handed out without a round trip."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

from printsrv import db


@pytest.fixture
def pg_url(postgres_admin_url: str | None) -> str:
    if postgres_admin_url is None:
        pytest.skip("PostgreSQL not reachable (set PRINTSRV_TEST_POSTGRES_URL)")
    return postgres_admin_url


def _pid(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def test_dropped_connection_is_replaced_after_idle(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(pg_url)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        first = _pid(engine)
        with admin.connect() as conn:  # the server restarts, or the link drops
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # the pooled connection sat idle
        second = _pid(engine)  # no error: a fresh connection took its place
        assert second != first
    finally:
        engine.dispose()
        admin.dispose()


def test_recently_used_connection_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(pg_url)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(real_ping(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    try:
        _pid(engine)  # a new connection is pinged once
        _pid(engine)
        _pid(engine)  # checked in a moment ago: no ping
        assert len(pings) == 1
        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)
        _pid(engine)
        assert len(pings) == 2
    finally:
        engine.dispose()
