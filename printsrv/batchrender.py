"""Rendering the queue in bulk (``run.py render --queued``): many card faces in one command.

The calling process is the data layer: per chunk of records it reads the records, their
wrapped keys and their photo and signature in three statements, unwraps and decrypts them, and
writes one audit event per record (purpose ``render``), all in one unit of work. Worker
processes (one per core, forked) only lay out the faces (:func:`printsrv.layout.render_page`):
they never touch the database or the token. The chunks come back in queue order and become the
pages of one PDF (fonts written once, pages written as they arrive, so memory stays bounded) or
one PDF per card in a folder.

A record that cannot be rendered (a field that does not fit, a purged or unreadable photo) is
reported by request id and field; the others are rendered.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv import audit
from printsrv.audit import AuditTag
from printsrv.cardinput import CardInput
from printsrv.config import Settings
from printsrv.db import engine_for, unit_of_work
from printsrv.errors import KeyStoreError, PrintSrvError
from printsrv.keys import KeyStore, decrypt_media
from printsrv.layout.batch import PageOptions, Rendered, render_chunk, warm_up
from printsrv.layout.pdfwriter import PdfDocument
from printsrv.localtime import local_date
from printsrv.models import MediaKind, Office, Record, RecordKey, RecordMedia, RecordState
from printsrv.offices import code_within_clause
from printsrv.renderpool import start_workers

#: Records per unit of work and per task of a worker: large enough that the bulk reads and the
#: hand-over to a worker cost little per card, small enough for a smooth progress bar.
CHUNK = 50
#: A chunk takes well under a second; a worker silent this long was killed or hangs (a pool
#: replaces a dead worker but never answers for its task).
CHUNK_TIMEOUT = 300.0
_FACE_MEDIA = (MediaKind.PHOTO, MediaKind.SIGNATURE)


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


def queued_ids(
    session: Session, *, office: str | None = None, limit: int | None = None
) -> list[int]:
    """Ids of the queued records in queue order; ``office`` (``PP.KK`` or ``PP.KK.CC``) keeps
    the records of that office and, for a regency, of its kecamatan offices."""
    query = select(Record.id).where(Record.state == RecordState.QUEUED).order_by(Record.id)
    if office:
        query = query.join(Office, Office.id == Record.office_id).where(
            code_within_clause(office)
        )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def load_cards(
    session: Session, keys: KeyStore, ids: Sequence[int], *, actor: str
) -> tuple[list[CardInput], list[str]]:
    """Decrypt the face media of the records ``ids`` (bulk reads; one audit event per record
    decrypted, all written together). Returns the cards in the order of ``ids`` and a problem
    per record left out."""
    rows = session.execute(
        select(Record.id, Record.request_id, Record.data, Record.state, Office.code)
        .join(Office, Office.id == Record.office_id)
        .where(Record.id.in_(ids))
    ).all()
    wrapped = {
        record_id: key for record_id, key in session.execute(
            select(RecordKey.record_id, RecordKey.wrapped_key).where(RecordKey.record_id.in_(ids))
        )
    }  # fmt: skip
    media: dict[int, list[tuple[MediaKind, bytes, bytes]]] = {}
    for record_id, kind, nonce, ciphertext in session.execute(
        select(RecordMedia.record_id, RecordMedia.kind, RecordMedia.nonce, RecordMedia.ciphertext)
        .where(RecordMedia.record_id.in_(ids), RecordMedia.kind.in_(_FACE_MEDIA))
    ):
        media.setdefault(record_id, []).append((kind, nonce, ciphertext))
    by_id = {row.id: row for row in rows}
    cards: list[CardInput] = []
    problems: list[str] = []
    events: list[tuple[str | None, str | None, dict[str, object]]] = []
    for record_id in ids:
        row = by_id.get(record_id)
        if row is None or row.state is not RecordState.QUEUED:
            continue  # taken by a station (or gone) since it was selected
        if record_id not in wrapped:
            problems.append(f"record {row.request_id}: media: biometric data was purged")
            continue
        try:
            data_key = keys.unwrap_data_key(wrapped[record_id], row.request_id.encode())
            plain = {
                kind: decrypt_media(data_key, row.request_id, kind, nonce, ct)
                for kind, nonce, ct in media.get(record_id, [])
            }
        except (KeyStoreError, InvalidTag):
            problems.append(
                f"record {row.request_id}: media: does not decrypt (wrong key or tampered)"
            )
            continue
        media_names = sorted(k.value for k in plain)
        events.append((row.code, row.request_id, {"purpose": "render", "media": media_names}))
        cards.append(CardInput(
            request_id=row.request_id,
            fields={k: v for k, v in row.data.items() if isinstance(v, str)},
            photo_jpeg=plain.get(MediaKind.PHOTO, b""),
            signature_png=plain.get(MediaKind.SIGNATURE, b""),
            issue_date=local_date(row.code),  # the office's date, as for one card
        ))  # fmt: skip
    audit.record_many(session, AuditTag.RECORD_MEDIA_DECRYPT, events, actor=actor)
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
    with unit_of_work(settings) as session:
        ids = queued_ids(session, office=office, limit=limit)
    result.selected = len(ids)
    if on_total:
        on_total(len(ids))
    # The forked workers must not share this process's pooled connections.
    engine_for(settings.sqlalchemy_url).dispose()
    folder = None if as_document else str(out)
    partial = out.with_name(out.name + ".part") if as_document else None
    pool = workers
    if pool is None and processes > 1 and len(ids) > CHUNK:
        warm_up()  # before the fork: every worker starts with the templates and fonts
        pool = start_workers(min(processes, -(-len(ids) // CHUNK)))
    try:
        with KeyStore.open(settings) as keys, _document(partial) as document:
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
                with unit_of_work(settings) as session:
                    cards, problems = load_cards(session, keys, chunk, actor=actor)
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
