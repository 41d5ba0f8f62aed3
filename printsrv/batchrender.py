"""Rendering the queue in bulk (``run.py render --queued``): many card faces in one command.

The calling process is the data layer: per chunk of records it reads the records, their
wrapped keys and their photo and signature in three statements, unwraps and decrypts them, and
writes one audit event per record (purpose ``render``), all in one transaction. It does so on a
plain DB-API connection (:mod:`printsrv.rawdb`, :func:`printsrv.auditchain.append_many`):
without SQLAlchemy and the table classes to import, the first chunk reaches the workers a
third of a second sooner, which is a quarter of a 1,000-card batch on two cores. Worker
processes (one per core, forked) only lay out the faces (:func:`printsrv.layout.render_page`):
they never touch the database or the token. The chunks come back in queue order and become the
pages of one PDF (fonts written once, pages written as they arrive, so memory stays bounded) or
one PDF per card in a folder.

A record that cannot be rendered (a field that does not fit, a purged or unreadable photo) is
reported by request id and field; the others are rendered.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from printsrv import rawdb
from printsrv.audit_tags import AuditTag
from printsrv.auditchain import MAIN_CHAIN, append_many
from printsrv.cardinput import CardInput
from printsrv.config import Settings
from printsrv.errors import KeyStoreError, PrintSrvError
from printsrv.keys import KeyStore, decrypt_media
from printsrv.layout.batch import PageOptions, Rendered, render_chunk, warm_up
from printsrv.layout.pdfwriter import PdfDocument
from printsrv.localtime import local_date
from printsrv.renderpool import start_workers

#: Records per unit of work and per task of a worker: large enough that the bulk reads and the
#: hand-over to a worker cost little per card, small enough for a smooth progress bar.
CHUNK = 50
#: A chunk takes well under a second; a worker silent this long was killed or hangs (a pool
#: replaces a dead worker but never answers for its task).
CHUNK_TIMEOUT = 300.0
#: The media a face shows (``media_kind`` values).
_FACE_MEDIA = ("photo", "signature")


@dataclass
class BatchRenderResult:
    """What ``render --queued`` did: ``problems`` name each record not rendered and why,
    ``warnings`` each rendered record's warnings."""

    out: Path
    selected: int = 0
    rendered: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a photo background of the wrong colour
    ink_total: dict[str, float] = field(default_factory=dict)

    @property
    def ink_mean(self) -> dict[str, float]:
        """Mean ink coverage per channel over the rendered cards."""
        return {k: v / self.rendered for k, v in self.ink_total.items()} if self.rendered else {}


def open_database(settings: Settings) -> rawdb.RawDb:
    """The instance's database as a plain DB-API connection; a clear error when there is none."""
    db = rawdb.connect(settings.sqlalchemy_url)
    if db is None:
        raise PrintSrvError(
            f"no database at {settings.sqlalchemy_url} that render --queued can open "
            "(run.py init creates one; SQLite files and PostgreSQL are supported)"
        )
    return db


def queued_ids(
    db: rawdb.RawDb, *, office: str | None = None, limit: int | None = None
) -> list[int]:
    """Ids of the queued records in queue order; ``office`` (``PP.KK`` or ``PP.KK.CC``) keeps
    the records of that office and, for a regency, of its kecamatan offices."""
    sql = "SELECT record.id FROM record"
    params: list[object] = ["queued"]
    if office:
        sql += " JOIN office ON office.id = record.office_id"
    sql += " WHERE record.state = ?"
    if office:
        # The office or its kecamatan offices (offices.code_within), with no LIKE wildcards.
        sql += " AND (office.code = ? OR substr(office.code, 1, ?) = ?)"
        params += [office, len(office) + 1, office + "."]
    sql += " ORDER BY record.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [int(row[0]) for row in db.rows(sql, tuple(params))]


def load_cards(
    db: rawdb.RawDb, cursor: Any, keys: KeyStore, ids: Sequence[int], *, actor: str
) -> tuple[list[CardInput], list[str]]:
    """Decrypt the face media of the records ``ids`` (bulk reads on ``cursor``, in the
    caller's transaction; one audit event per record decrypted, all written together).
    Returns the cards in the order of ``ids`` and a problem per record left out."""

    def rows(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        cursor.execute(db.sql(sql), tuple(params))
        return list(cursor.fetchall())

    marks = rawdb.marks(len(ids))
    by_id = {
        int(row[0]): row for row in rows(
            "SELECT record.id, record.request_id, record.data, record.state, office.code"
            " FROM record JOIN office ON office.id = record.office_id"
            f" WHERE record.id IN ({marks})", ids,
        )
    }  # fmt: skip
    wrapped = {
        int(record_id): bytes(key) for record_id, key in rows(
            f"SELECT record_id, wrapped_key FROM record_key WHERE record_id IN ({marks})", ids
        )
    }  # fmt: skip
    media: dict[int, list[tuple[str, bytes, bytes]]] = {}
    for record_id, kind, nonce, ciphertext in rows(
        "SELECT record_id, kind, nonce, ciphertext FROM record_media"
        f" WHERE record_id IN ({marks}) AND kind IN ({rawdb.marks(len(_FACE_MEDIA))})",
        [*ids, *_FACE_MEDIA],
    ):
        media.setdefault(int(record_id), []).append((str(kind), bytes(nonce), bytes(ciphertext)))
    cards: list[CardInput] = []
    problems: list[str] = []
    events: list[tuple[str | None, str | None, dict[str, object]]] = []
    for record_id in ids:
        row = by_id.get(record_id)
        if row is None or row[3] != "queued":
            continue  # taken by a station (or gone) since it was selected
        _, request_id, data, _, office_code = row
        if record_id not in wrapped:
            problems.append(f"record {request_id}: media: biometric data was purged")
            continue
        try:
            data_key = keys.unwrap_data_key(wrapped[record_id], request_id.encode())
            plain = {
                kind: decrypt_media(data_key, request_id, kind, nonce, ct)
                for kind, nonce, ct in media.get(record_id, [])
            }
        except (KeyStoreError, InvalidTag):
            problems.append(f"record {request_id}: media: does not decrypt (wrong key or tampered)")
            continue
        fields = data if isinstance(data, dict) else json.loads(data)  # PostgreSQL: parsed
        events.append((office_code, request_id, {"purpose": "render", "media": sorted(plain)}))
        cards.append(CardInput(
            request_id=request_id,
            fields={k: v for k, v in fields.items() if isinstance(v, str)},
            photo_jpeg=plain.get("photo", b""),
            signature_png=plain.get("signature", b""),
            issue_date=local_date(office_code),  # the office's date, as for one card
        ))  # fmt: skip
    append_many(cursor, db.postgresql, AuditTag.RECORD_MEDIA_DECRYPT, events, actor=actor,
                chain=MAIN_CHAIN)  # fmt: skip
    return cards, problems


def _chunks(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def render_queued(
    settings: Settings,
    out: Path,
    *,
    office: str | None = None,
    limit: int | None = None,
    processes: int | None = None,
    options: PageOptions | None = None,
    actor: str = "cli",
    progress: Callable[[int], object] | None = None,
    on_total: Callable[[int], object] | None = None,
    workers: Pool | None = None,
) -> BatchRenderResult:
    """Render the queued records (in queue order) to ``out``: one PDF with a page per card
    when ``out`` ends in ``.pdf``, else a folder with ``REQUEST_ID.pdf`` per card.

    ``processes`` workers lay out the faces (default: one per CPU; 1 renders in this process);
    ``workers`` is a pool already started (:func:`printsrv.renderpool.start_workers`), which
    the caller closes. ``progress(n)`` is called as cards are done, ``on_total(n)`` once the
    records are counted.
    """
    options = options or PageOptions()
    processes = max(1, processes or os.cpu_count() or 1)
    as_document = out.suffix.lower() == ".pdf"
    if as_document and not out.parent.is_dir():
        raise PrintSrvError(f"{out.parent}: no such folder for {out.name}")
    if not as_document:
        if out.exists() and not out.is_dir():
            raise PrintSrvError(f"{out}: not a folder (give FILE.pdf or a folder)")
        out.mkdir(parents=True, exist_ok=True)
    result = BatchRenderResult(out)
    with open_database(settings) as db:
        ids = queued_ids(db, office=office, limit=limit)
    result.selected = len(ids)
    if on_total:
        on_total(len(ids))
    if not ids:
        return result  # nothing to write, nothing to decrypt: the token is not opened
    folder = None if as_document else str(out)
    partial = out.with_name(out.name + ".part") if as_document else None
    pool = workers
    if pool is None and processes > 1 and len(ids) > CHUNK:
        warm_up()  # before the fork: every worker starts with the templates and fonts
        pool = start_workers(min(processes, -(-len(ids) // CHUNK)))
    try:
        with (open_database(settings) as db, KeyStore.open(settings) as keys,
              _document(partial) as document):
            pending: deque[AsyncResult[list[Rendered | str]]] = deque()

            def collect(pages: list[Rendered | str]) -> None:
                for page in pages:
                    if isinstance(page, str):
                        result.problems.append(page)
                        continue
                    if document is not None and page.page is not None:
                        document.add_page(page.page)
                    result.rendered += 1
                    result.warnings += page.warnings
                    for k, v in page.ink_coverage.items():
                        result.ink_total[k] = result.ink_total.get(k, 0.0) + v
                if progress:
                    progress(len(pages))

            for chunk in _chunks(ids, CHUNK):
                with db.transaction() as cursor:
                    cards, problems = load_cards(db, cursor, keys, chunk, actor=actor)
                result.problems += problems
                if progress and len(cards) < len(chunk):  # refused or no longer queued
                    progress(len(chunk) - len(cards))
                if pool is None:
                    collect(render_chunk(cards, options, folder))
                    continue
                pending.append(pool.apply_async(render_chunk, (cards, options, folder)))
                while len(pending) > 2 * processes:  # bounded: pages are written in order
                    collect(_answer(pending.popleft()))
            while pending:
                collect(_answer(pending.popleft()))
    except BaseException:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None and workers is None:
            pool.terminate()
            pool.join()
    if partial is not None:
        if result.rendered:
            partial.replace(out)
        else:
            partial.unlink(missing_ok=True)
    return result


def _answer(task: AsyncResult[list[Rendered | str]]) -> list[Rendered | str]:
    try:
        return task.get(CHUNK_TIMEOUT)
    except multiprocessing.TimeoutError:
        raise PrintSrvError(
            f"a render worker gave no answer in {CHUNK_TIMEOUT:.0f} s (killed?); nothing written"
        ) from None


@contextmanager
def _document(path: Path | None) -> Iterator[PdfDocument | None]:
    """The output PDF, written to ``path`` (the caller renames it when complete)."""
    if path is None:
        yield None
        return
    with path.open("wb") as file:
        document = PdfDocument(file, b"ktp-printsrv card faces")
        yield document
        document.close()
