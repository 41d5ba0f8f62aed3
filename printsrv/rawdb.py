"""A plain DB-API connection for commands that read a few rows (``station status``, ``audit
verify``) or read and audit in bulk (``render --queued``): no SQLAlchemy, no table classes, so
they start in tens of milliseconds.

:func:`connect` understands the URLs the project writes (``sqlite:///PATH`` and
``postgresql[+psycopg]://…``); for any other it gives ``None`` and the caller uses the
engine (:mod:`printsrv.db`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass
class RawDb:
    """A DB-API connection, its dialect and the URL it came from."""

    conn: Any
    postgresql: bool
    url: str

    def sql(self, text: str) -> str:
        """``text`` with ``?`` placeholders in this driver's style."""
        return text.replace("?", "%s") if self.postgresql else text

    def rows(self, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(self.sql(text), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in one transaction, committed when the block ends, rolled back if it
        raises. On SQLite the write lock is taken at the start (``BEGIN IMMEDIATE``, as the
        engine's units of work do), so a read-then-write block cannot deadlock."""
        if self.postgresql:
            with self.conn.transaction(), self.conn.cursor() as cursor:
                yield cursor
            return
        cursor = self.conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.commit()
        finally:
            cursor.close()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RawDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def marks(count: int) -> str:
    """``count`` placeholders, ``?, ?, …``, for an ``IN (…)`` list (:meth:`RawDb.sql` turns
    them into the driver's style)."""
    return ", ".join("?" * count)


def connect_handles(url: str) -> bool:
    """Whether :func:`connect` handles ``url`` (a SQLite file, PostgreSQL)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        return bool(path) and path != ":memory:" and "?" not in path
    return url.startswith(("postgresql+psycopg://", "postgresql://"))


def connect(url: str) -> RawDb | None:
    """A read connection to ``url``, or ``None`` for a URL this module does not handle (or a
    SQLite file that does not exist: the engine path then says so its usual way)."""
    if url.startswith("sqlite:///"):
        import sqlite3
        from pathlib import Path

        path = url[len("sqlite:///"):]
        if not path or path == ":memory:" or "?" in path or not Path(path).is_file():
            return None
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")  # as the engine's connections (WAL)
        return RawDb(conn, False, url)
    for scheme in ("postgresql+psycopg://", "postgresql://"):
        if url.startswith(scheme):
            import psycopg

            pg: Any = psycopg.connect("postgresql://" + url[len(scheme):], autocommit=True)
            return RawDb(pg, True, url)
    return None


def as_utc(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back text, PostgreSQL a
    datetime; both were written in UTC)."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
