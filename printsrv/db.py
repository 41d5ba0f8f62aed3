"""Engine and session factory: SQLite (WAL, foreign keys on) by default, PostgreSQL supported."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
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
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process."""
    return make_engine(url)


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
