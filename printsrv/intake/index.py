"""A batch's bookkeeping on disk: the manifest's file list, the files present, the media used
and the request ids and NIKs seen, in a temporary SQLite file in the instance folder (memory
stays bounded whatever the batch's size; a 100,000-record file list is ~45 MB of JSON).

Request ids and NIKs are stored only as keyed hashes (a key of this import, never written), so
the file holds no personal data; the folder is removed when the import ends.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Rows written per statement.
BATCH = 10_000


class DuplicateName(ValueError):
    """The same file name twice in the manifest's file list."""


class BatchIndex:
    """Temporary tables: ``listed`` (manifest: name → digest, used), ``present`` (the files
    in the batch) and ``seen`` (request ids and NIKs → first line)."""

    def __init__(self, parent: Path | None = None) -> None:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._dir = Path(tempfile.mkdtemp(prefix="intake-index-", dir=parent))
        self._key = secrets.token_bytes(16)
        self.db = sqlite3.connect(self._dir / "index.db", isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-8000",
                       "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(
            "CREATE TABLE listed (name TEXT PRIMARY KEY, digest TEXT NOT NULL,"
            " used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
            "CREATE TABLE present (name TEXT PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE seen (key BLOB PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID;"
            "BEGIN"
        )
        self.listed_count = 0

    def close(self) -> None:
        """Drop the tables and their folder."""
        try:
            self.db.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> BatchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the manifest's file list and the files present ------------------------------------

    def add_listed(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Manifest entries (name, digest); :class:`DuplicateName` for a name listed twice."""
        rows = list(pairs)
        try:
            self.db.executemany("INSERT INTO listed (name, digest) VALUES (?, ?)", rows)
        except sqlite3.IntegrityError:
            names: set[str] = set()
            for name, _digest in rows:
                if name in names or self.db.execute(
                    "SELECT 1 FROM listed WHERE name = ?", (name,)
                ).fetchone():
                    raise DuplicateName(name) from None
                names.add(name)
            raise
        self.listed_count += len(rows)

    def add_present(self, names: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO present (name) VALUES (?)",
                            ((n,) for n in names))

    def digest(self, name: str) -> str | None:
        """The manifest's digest for ``name``, ``None`` when not listed."""
        row = self.db.execute("SELECT digest FROM listed WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def claim(self, names: Iterable[str]) -> dict[str, tuple[str, bool]]:
        """Mark the listed files among ``names`` as used, in one statement (a record's media):
        name → (the manifest's digest, whether this was its first use). A name not listed is
        not in the answer; a name given twice is claimed once (the caller sees the second)."""
        unique = list(dict.fromkeys(names))
        if not unique:
            return {}
        rows = self.db.execute(
            "UPDATE listed SET used = used + 1 WHERE name IN "
            f"({', '.join('?' * len(unique))}) RETURNING name, digest, used",
            unique,
        ).fetchall()
        return {str(name): (str(digest), used == 1) for name, digest, used in rows}

    def is_listed(self, name: str) -> bool:
        return self.digest(name) is not None

    def is_present(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM present WHERE name = ?", (name,)).fetchone() \
            is not None

    def unlisted(self, exclude: Iterable[str] = ()) -> Iterator[str]:
        """Files present but not in the manifest, in name order."""
        skip = set(exclude)
        for (name,) in self.db.execute(
            "SELECT name FROM present WHERE name NOT IN (SELECT name FROM listed) ORDER BY name"
        ):
            if name not in skip:
                yield name

    def missing(self) -> Iterator[str]:
        """Files in the manifest but not present, in name order."""
        for (name,) in self.db.execute(
            "SELECT name FROM listed WHERE name NOT IN (SELECT name FROM present) ORDER BY name"
        ):
            yield name

    def unused(self, exclude: Iterable[str] = ()) -> Iterator[str]:
        """Listed files no record used, in name order (read in pages: the caller may write)."""
        skip, last = set(exclude), ""
        while True:
            page = [n for (n,) in self.db.execute(
                "SELECT name FROM listed WHERE used = 0 AND name > ? ORDER BY name LIMIT 1000",
                (last,),
            )]
            if not page:
                return
            yield from (n for n in page if n not in skip)
            last = page[-1]

    # --- request ids and NIKs -------------------------------------------------------------

    def first_line(self, kind: str, value: str, line: int) -> int | None:
        """Remember ``value`` (of ``kind``: "request_id", "nik") at ``line``; the line it was
        first seen at when it was seen before, else ``None``."""
        key = hashlib.blake2b(f"{kind}\x00{value}".encode(), key=self._key,
                              digest_size=16).digest()
        cursor = self.db.execute("INSERT OR IGNORE INTO seen (key, line) VALUES (?, ?)",
                                 (key, line))
        if cursor.rowcount == 1:
            return None
        row = self.db.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def seen(self, kind: str, value: str) -> int | None:
        """The line ``value`` was first seen at, without remembering it."""
        key = hashlib.blake2b(f"{kind}\x00{value}".encode(), key=self._key,
                              digest_size=16).digest()
        row = self.db.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])
