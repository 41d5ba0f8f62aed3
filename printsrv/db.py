"""Engine and session factory: SQLite (WAL, foreign keys on) by default, PostgreSQL supported."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from printsrv.config import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the project's connection settings."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that a
        # read-then-write unit of work cannot be upgraded into a deadlock.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))

        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    _ping_idle_connections(engine)
    return engine


#: A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle: ``SELECT 1`` before a
    connection unused for :data:`PING_AFTER_IDLE` seconds is handed out, and a fresh one if
    the server went away (restarted, or the link to the central server dropped). SQLAlchemy's
    ``pool_pre_ping`` pings on *every* checkout: one more round trip for each unit of work,
    a tenth of a station's claim (bench/station); a connection checked in milliseconds ago
    needs none."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in", 0.0) < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as err:
            raise DisconnectionError(f"stale pooled connection: {err}") from err


#: Engines kept per process; the least recently used one beyond this is disposed.
ENGINES_KEPT = 8
_engines: OrderedDict[str, Engine] = OrderedDict()
_engines_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per URL per process. One pushed out of the cache is disposed (its pooled
    connections closed now, not left to the garbage collector)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is not None:
            _engines.move_to_end(url)
            return engine
        engine = _engines[url] = make_engine(url)
        evicted = [_engines.popitem(last=False)[1]
                   for _ in range(len(_engines) - ENGINES_KEPT)]
    for old in evicted:
        old.dispose()
    return engine


def dispose_engine(url: str) -> None:
    """Close the pooled connections of ``url``'s engine and forget it (a database about to be
    dropped, a test's scratch database done)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """A session factory bound to the settings' database."""
    return sessionmaker(bind=engine_for(settings.sqlalchemy_url), expire_on_commit=False)


@contextmanager
def unit_of_work(settings: Settings, *, audit_chain: str | None = None) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error.

    ``audit_chain`` names the audit chain its events go to (a station uses its own, so that
    stations never wait on each other's audit head); default the main chain.
    """
    with session_factory(settings)() as session, session.begin():
        if audit_chain:
            session.info["audit_chain"] = audit_chain
        yield session
