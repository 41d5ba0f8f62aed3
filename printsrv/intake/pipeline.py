"""Import one signed batch: verify, validate every record, then store all or nothing.

Order of checks: container safety → manifest signature and chain → manifest schema → the file
list (missing and extra files) → every file hash → every record (fields, media). A batch-level
problem rejects the whole batch. Record problems reject the whole batch too, unless the operator
asks for ``accept_valid``; then the valid records are imported and the others written to a
rejection report. Either way each record is imported completely or not at all: a single
transaction holds the batch row, the records, their wrapped keys, encrypted media and audit events.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from printsrv import audit, checkpoints, outbox
from printsrv.audit import AuditTag
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.errors import IntakeError, KeyStoreError
from printsrv.intake import strictjson
from printsrv.intake.container import (
    MAX_MEMBERS,
    BatchContainer,
    BatchProblem,
    cut,
    unsafe_path_reason,
)
from printsrv.intake.index import BatchIndex, DuplicateName
from printsrv.intake.signature import SignatureInvalid, load_trusted_cas, verify_detached
from printsrv.keys import KeyStore, encrypt_media
from printsrv.media import (
    FingerPosition,
    MediaError,
    parse_fmr,
    signature_is_blank,
    verify_jpeg,
    verify_png_image,
)
from printsrv.models import (
    Batch,
    MediaKind,
    Office,
    Record,
    RecordKey,
    RecordMedia,
    RecordState,
)
from printsrv.offices import code_within, ensure_office
from printsrv.outbox import record_state_payload
from printsrv.validation import validate_record

FORMAT = "ktp-approved-batch/1"
MANIFEST, SIGNATURE, RECORDS = "manifest.json", "manifest.sig", "records.jsonl"
_MANIFEST_KEYS = {"format", "batch_id", "issuer", "created_at", "record_count", "files"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MEDIA_KINDS = {
    "photo": MediaKind.PHOTO,
    "signature": MediaKind.SIGNATURE,
    "finger_right_index": MediaKind.FINGER_RIGHT_INDEX,
    "finger_left_index": MediaKind.FINGER_LEFT_INDEX,
}


@dataclass(frozen=True)
class RecordProblem:
    """A problem with one record, named by line, request id/NIK and field."""

    line: int
    request_id: str
    nik: str
    field: str
    reason: str

    def __post_init__(self) -> None:
        # Values echoed from the record (a field of megabytes) are cut here, once for every
        # message, report and audit event that carries the problem.
        for name in ("field", "reason"):
            object.__setattr__(self, name, cut(getattr(self, name)))
        object.__setattr__(self, "request_id", self.request_id[:64])
        object.__setattr__(self, "nik", self.nik[:16])

    def __str__(self) -> str:
        return f"record {self.line} ({self.request_id}/{self.nik}): {self.field}: {self.reason}"

    def as_dict(self) -> dict[str, object]:
        return {
            "scope": "record",
            "line": self.line,
            "request_id": self.request_id,
            "nik": self.nik,
            "field": self.field,
            "reason": self.reason,
        }


Problem = BatchProblem | RecordProblem


@dataclass
class ImportResult:
    """What happened to a batch; ``accepted`` is true only when it was imported."""

    source: str
    batch_id: str | None = None
    accepted: bool = False
    imported: int = 0
    held: int = 0
    already_imported: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)
    holds: list[dict[str, str]] = field(default_factory=list)
    rejection_report: str | None = None
    #: Refused because records belong to offices the importing client may not import for.
    outside_scope: bool = False
    #: The offices that received records: ``{"code", "name", "records"}`` in code order.
    offices: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "batch_id": self.batch_id,
            "accepted": self.accepted,
            "imported": self.imported,
            "held": self.held,
            "already_imported": self.already_imported,
            "rejected": self.rejected,
            "holds": self.holds,
            "problems": [p.as_dict() for p in self.problems],
            "rejection_report": self.rejection_report,
            "outside_scope": self.outside_scope,
            "offices": self.offices,
        }


@dataclass
class _Candidate:
    line: int
    record: dict[str, Any]
    hold_reasons: list[str]
    media: dict[MediaKind, bytes]


Progress = Callable[[int], None]


def _parse_manifest(raw: bytes, index: BatchIndex) -> tuple[dict[str, Any], list[BatchProblem]]:
    """The manifest's fields; its file list goes into ``index`` as it is parsed (never held
    as a dict: 400,000 entries would be over 100 MB), ``manifest["files"]`` its count."""
    problems: list[BatchProblem] = []

    def listed(pairs: list[tuple[str, Any]]) -> None:
        for name, digest in pairs:
            if reason := unsafe_path_reason(name):
                problems.append(BatchProblem(f"{MANIFEST}: files: {name}", reason))
            if not isinstance(digest, str) or not _SHA256.match(digest):
                problems.append(BatchProblem(f"{MANIFEST}: files: {name}", "not a SHA-256 hex"))
        try:
            index.add_listed((name, d if isinstance(d, str) else "") for name, d in pairs)
        except DuplicateName as exc:
            raise strictjson.StrictJsonError(f"duplicate key {str(exc)[:40]!r}") from None

    try:
        manifest = strictjson.loads_streaming(raw.decode("utf-8"), "files", listed)
    except UnicodeDecodeError as exc:
        return {}, [BatchProblem(MANIFEST, f"not valid UTF-8 (byte {exc.start})")]
    except ValueError as exc:
        return {}, [BatchProblem(MANIFEST, cut(str(exc)))]
    if not isinstance(manifest, dict):
        return {}, [BatchProblem(MANIFEST, "not a JSON object")]
    for key in sorted(_MANIFEST_KEYS - manifest.keys()):
        problems.append(BatchProblem(MANIFEST, f"missing key {key!r}"))
    for key in sorted(manifest.keys() - _MANIFEST_KEYS):
        problems.append(BatchProblem(MANIFEST, f"unknown key {key!r}"))
    if manifest.get("format") != FORMAT:
        problems.append(BatchProblem(MANIFEST, f"format must be {FORMAT!r}"))
    if not isinstance(manifest.get("batch_id"), str) or not _BATCH_ID.match(manifest["batch_id"]):
        problems.append(BatchProblem(MANIFEST, "batch_id must be 1-64 letters, digits, . _ -"))
    if not isinstance(manifest.get("issuer"), str) or not manifest.get("issuer"):
        problems.append(BatchProblem(MANIFEST, "issuer must be a non-empty string"))
    try:
        created = datetime.fromisoformat(str(manifest.get("created_at")))
        if created.tzinfo is None:
            problems.append(BatchProblem(MANIFEST, "created_at needs a UTC offset"))
    except ValueError:
        problems.append(BatchProblem(MANIFEST, "created_at is not an ISO 8601 date-time"))
    count = manifest.get("record_count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        problems.append(BatchProblem(MANIFEST, "record_count must be a non-negative integer"))
    files = manifest.get("files")
    if not isinstance(files, strictjson.Streamed) or not files.count:
        problems.append(BatchProblem(MANIFEST, "files must be a non-empty object"))
    elif not index.is_listed(RECORDS):
        problems.append(BatchProblem(MANIFEST, f"files does not list {RECORDS}"))
    if isinstance(files, strictjson.Streamed):
        manifest["files"] = files.count
    return manifest, problems


#: The longest record line accepted: a record is a few kilobytes (media are separate files).
MAX_LINE_BYTES = 256 * 1024


def _split_lines(blocks: Iterable[bytes]) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, the line's bytes, its length) for every line of a stream of blocks, in
    bounded memory: a line longer than :data:`MAX_LINE_BYTES` is never held whole (its bytes
    come as ``None``, skipped up to its end)."""
    parts: list[bytes] = []  # the start of the current line, from earlier blocks
    held, length, number = 0, 0, 0  # bytes in parts; the current line's length so far

    def line_end(tail: bytes) -> tuple[int, bytes | None, int]:
        total = length + len(tail)
        if total > MAX_LINE_BYTES:
            return number, None, total
        return number, b"".join(parts) + tail if parts else tail, total

    for block in blocks:
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            number += 1
            yield line_end(block[start:end])
            parts, held, length = [], 0, 0
            start = end + 1
        rest = block[start:] if start else block
        if rest:
            length += len(rest)
            if length <= MAX_LINE_BYTES:
                parts.append(rest)
                held += len(rest)
            elif held:  # an over-long line: count it, hold none of it
                parts, held = [], 0
    if length:
        number += 1
        yield line_end(b"")


def _decode_lines(blocks: Iterable[bytes]) -> Iterable[tuple[int, object | None, str | None]]:
    """(line number, parsed JSON or None, reason) for every non-empty line; a line longer
    than :data:`MAX_LINE_BYTES` is refused before it is decoded or parsed."""
    for number, line, length in _split_lines(blocks):
        if line is None:
            yield number, None, f"line of {length} bytes (at most {MAX_LINE_BYTES})"
            continue
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not valid UTF-8 (byte {exc.start})"
            continue
        try:
            yield number, strictjson.loads(text), None
        except ValueError as exc:
            yield number, None, cut(str(exc))


def _ident(obj: object) -> tuple[str, str]:
    if isinstance(obj, dict):
        return str(obj.get("request_id", "?"))[:64], str(obj.get("nik", "?"))[:16]
    return "?", "?"


def _verify_media(kind: MediaKind, data: bytes, settings: Settings) -> Any:
    """Check one medium; the decoded signature image (for the blank check), else ``None``."""
    if kind is MediaKind.PHOTO:
        verify_jpeg(data, max_pixels=settings.max_image_pixels, min_size=settings.min_photo_size)
    elif kind is MediaKind.SIGNATURE:
        return verify_png_image(data, max_pixels=settings.max_image_pixels)[1]
    else:
        position = (
            FingerPosition.RIGHT_INDEX
            if kind is MediaKind.FINGER_RIGHT_INDEX
            else FingerPosition.LEFT_INDEX
        )
        parse_fmr(data, finger_position=position)
    return None


#: The largest manifest accepted: its file list names at most every zip member
#: (:data:`~printsrv.intake.container.MAX_MEMBERS`), about 110 bytes each.
MAX_MANIFEST_BYTES = 200 * MAX_MEMBERS


def _check_manifest(
    settings: Settings, container: BatchContainer, result: ImportResult, index: BatchIndex
) -> dict[str, Any]:
    """The batch-level checks (signature and chain, manifest, the file list); fills
    ``result.problems``. The files present are in ``index`` already."""
    for required in (MANIFEST, SIGNATURE):
        if not index.is_present(required):
            result.problems.append(BatchProblem(required, "missing"))
    if result.problems:
        return {}
    manifest_raw = container.read(MANIFEST, MAX_MANIFEST_BYTES)
    try:
        signer = verify_detached(
            manifest_raw,
            container.read(SIGNATURE, 1_000_000),
            load_trusted_cas(settings.registry_ca_paths),
        )
    except SignatureInvalid as exc:
        result.problems.append(BatchProblem(SIGNATURE, str(exc)))
        return {}
    manifest, problems = _parse_manifest(manifest_raw, index)
    result.problems += problems
    if problems:
        return manifest
    manifest["_signer"] = signer.subject.rfc4514_string()
    manifest["_sha256"] = hashlib.sha256(manifest_raw).hexdigest()
    del manifest_raw
    result.batch_id = manifest["batch_id"]
    for name in index.unlisted(exclude={MANIFEST, SIGNATURE}):
        result.problems.append(BatchProblem(name, "present but not listed in the manifest"))
    for name in index.missing():
        result.problems.append(BatchProblem(name, "listed in the manifest but missing"))
    return manifest


def _candidates(
    settings: Settings,
    container: BatchContainer,
    manifest: dict[str, Any],
    result: ImportResult,
    progress: Progress | None,
    index: BatchIndex,
    on_total: Progress | None = None,
) -> Iterator[_Candidate]:
    """Every record of the batch that passes its checks, one at a time as ``records.jsonl``
    is read (bounded memory whatever the batch's size); every problem goes to
    ``result.problems``. The file's hash is known only at its end: when it does not match the
    manifest, the record problems found are dropped for that batch problem, and the caller,
    which stores in one transaction, rolls back. What must be remembered across records (the
    ids seen, the media used) is in ``index``, on disk."""

    def read_checked(name: str, max_bytes: int, digest: str | None = None) -> bytes | None:
        data = container.read(name, max_bytes)
        if hashlib.sha256(data).hexdigest() != (digest or index.digest(name)):
            result.problems.append(BatchProblem(name, "SHA-256 does not match the manifest"))
            return None
        return data

    records_hash = hashlib.sha256()

    def hashed(blocks: Iterable[bytes]) -> Iterator[bytes]:
        for block in blocks:
            records_hash.update(block)
            yield block

    if on_total is not None:
        on_total(manifest["record_count"])
    today = date.today()
    lines = 0
    # The media of the next records are read, hashed and decoded in threads (Pillow, hashlib
    # and file reads let go of the GIL) while this one checks the records; each record is
    # finished in its order, its problems in the order they were always reported.
    pool = ThreadPoolExecutor(max_workers=MEDIA_THREADS, thread_name_prefix="intake-media")
    pending: deque[tuple[int, str, str, Any, list[RecordProblem], list[Any], Any]] = deque()

    def finish(entry: tuple[int, str, str, Any, list[RecordProblem], list[Any], Any]
               ) -> Iterator[_Candidate]:
        number, request_id, nik, check, problems_here, slots, future = entry
        if check is None:  # a line that did not parse
            result.problems += problems_here
            return
        media: dict[MediaKind, bytes] = {}
        blank: bool | None = None
        outcomes = future.result() if future is not None else []
        for key, kind, path, outcome in slots:
            if isinstance(outcome, str):
                problems_here.append(RecordProblem(number, request_id, nik, f"media.{key}",
                                                   outcome))
                continue
            data, hash_ok, error, is_blank = outcomes[outcome]
            if not hash_ok:
                result.problems.append(BatchProblem(path, "SHA-256 does not match the manifest"))
            elif error is not None:
                problems_here.append(RecordProblem(number, request_id, nik, f"media.{key}",
                                                   error))
            else:
                media[kind] = data
                if kind is MediaKind.SIGNATURE:
                    blank = is_blank
        if problems_here:
            result.problems += problems_here
            result.rejected += 1
            return
        holds = list(check.hold_reasons) + _print_hold_reasons(check.record, media, blank)
        yield _Candidate(number, check.record, holds, media)

    try:
        for number, obj, reason in _decode_lines(
            hashed(container.blocks(RECORDS, settings.max_batch_bytes))
        ):
            lines += 1
            if progress:
                progress(1)
            request_id, nik = _ident(obj)
            if reason is not None:
                pending.append((number, request_id, nik, None,
                                [RecordProblem(number, request_id, nik, "-", reason)], [], None))
                continue
            check = validate_record(obj, today=today, religions=settings.religions)
            problems_here = [
                RecordProblem(number, request_id, nik, p.field, p.reason) for p in check.problems
            ]
            first = index.first_line("request_id", request_id, number)
            if first is not None and isinstance(obj, dict) and "request_id" in obj:
                problems_here.append(
                    RecordProblem(
                        number,
                        request_id,
                        nik,
                        "request_id",
                        f"duplicate of line {first} in this batch",
                    )
                )
            if isinstance(obj, dict) and isinstance(obj.get("nik"), str) and not problems_here:
                first = index.first_line("nik", obj["nik"], number)
                if first is not None:
                    problems_here.append(RecordProblem(
                        number, request_id, nik, "nik",
                        f"the same person as line {first} in this batch "
                        "(one print request per NIK)"))
            # key, kind, path, and why it is refused already or the index of its check
            slots: list[tuple[str, MediaKind, str, str | int]] = []
            checks: list[tuple[MediaKind, str, str]] = []  # kind, path, digest: one task
            media_refs = obj.get("media") if isinstance(obj, dict) else None
            if not problems_here and isinstance(media_refs, dict):
                refs = [(key, MEDIA_KINDS[key], path) for key, path in media_refs.items()
                        if key in MEDIA_KINDS and isinstance(path, str)]  # fmt: skip
                claimed = index.claim(path for _, _, path in refs)  # one statement a record
                claimed_here: set[str] = set()
                for key, kind, path in refs:
                    if path not in claimed:
                        slots.append((key, kind, path, f"{path} not in batch"))
                        continue
                    digest, first_use = claimed[path]
                    if not first_use or path in claimed_here:
                        slots.append((key, kind, path, f"{path} used by two records"))
                        continue
                    claimed_here.add(path)
                    slots.append((key, kind, path, len(checks)))
                    checks.append((kind, path, digest))
            future = pool.submit(_check_media, container, settings, checks) if checks else None
            pending.append((number, request_id, nik, check, problems_here, slots, future))
            if len(pending) > LOOKAHEAD:
                yield from finish(pending.popleft())
        while pending:
            yield from finish(pending.popleft())
    finally:
        pool.shutdown(cancel_futures=True)

    if records_hash.hexdigest() != index.digest(RECORDS):
        # The records are not the ones signed for: their own problems do not count.
        result.problems[:] = [p for p in result.problems if not isinstance(p, RecordProblem)]
        result.rejected = 0
        result.problems.append(BatchProblem(RECORDS, "SHA-256 does not match the manifest"))
        return
    if lines != manifest["record_count"]:
        result.problems.append(
            BatchProblem(RECORDS, f"{lines} records, manifest says {manifest['record_count']}")
        )
    # Every listed file is checked, also those no valid record referenced.
    for name in index.unused(exclude={RECORDS}):
        if not any(isinstance(p, BatchProblem) and p.where == name for p in result.problems):
            read_checked(name, settings.max_media_bytes)


def _office(session: Session, code: str, cache: dict[str, int]) -> int:
    """Id of kecamatan office ``code`` (created from the region table when new), cached."""
    if code not in cache:
        cache[code] = ensure_office(session, code, actor="intake").id
    return cache[code]


class _Store:
    """Writes a batch's records chunk by chunk in the caller's transaction: the batch row
    first (:meth:`begin`), then :meth:`add` per chunk of candidates, then :meth:`finish`."""

    def __init__(
        self, session: Session, keys: KeyStore, manifest: dict[str, Any], result: ImportResult,
        actor: str,
    ) -> None:  # fmt: skip
        self.session, self.keys, self.manifest = session, keys, manifest
        self.result, self.actor = result, actor
        self.batch: Batch | None = None
        self.offices: dict[str, int] = {}
        self.per_office: dict[str, int] = {}  # records stored per office code
        self.now = datetime.now(UTC)

    def begin(self) -> bool:
        """The batch row (new, or the one of an earlier import of the same content); false,
        with a problem, for a batch id imported before with other content."""
        manifest, session = self.manifest, self.session
        batch = session.scalar(select(Batch).where(Batch.batch_id == manifest["batch_id"]))
        if batch is not None and batch.manifest_sha256 != manifest["_sha256"]:
            self.result.problems.append(
                BatchProblem(
                    MANIFEST, f"batch_id {batch.batch_id} was imported before with other content"
                )
            )
            return False
        if batch is None:
            batch = Batch(
                batch_id=manifest["batch_id"],
                issuer=manifest["issuer"],
                created_at=datetime.fromisoformat(manifest["created_at"]).astimezone(UTC),
                record_count=manifest["record_count"],
                manifest_sha256=manifest["_sha256"],
                signer=manifest["_signer"][:400],
                imported_by=self.actor,
            )
            session.add(batch)
            session.flush()
        self.batch = batch
        return True

    def add(self, candidates: list[_Candidate]) -> None:
        """Store one chunk: records, wrapped keys, encrypted media, hold events."""
        session, result, batch = self.session, self.result, self.batch
        assert batch is not None
        ids = [c.record["request_id"] for c in candidates]
        existing = set(session.scalars(select(Record.request_id)
                                       .where(Record.request_id.in_(ids))))
        fresh = [c for c in candidates if c.record["request_id"] not in existing]
        result.already_imported += len(candidates) - len(fresh)
        _hold_open_requests(session, fresh)
        if fresh:
            self._insert(fresh)
        for c in fresh:
            if c.hold_reasons:
                result.holds.append(
                    {"request_id": c.record["request_id"], "reason": "; ".join(c.hold_reasons)}
                )
                audit.record(
                    session,
                    AuditTag.INTAKE_RECORD_HOLD,
                    actor=self.actor,
                    office_code=c.record["office_code"],
                    subject=c.record["request_id"],
                    details={"reasons": c.hold_reasons},
                )
        result.imported += len(fresh)
        for c in fresh:
            code = c.record["office_code"]
            self.per_office[code] = self.per_office.get(code, 0) + 1

    def _insert(self, chunk: list[_Candidate]) -> None:
        session, batch = self.session, self.batch
        assert batch is not None
        rows = []
        for c in chunk:
            rec = c.record
            rows.append(
                {
                    "request_id": rec["request_id"],
                    "batch_id": batch.id,
                    "line_no": c.line,
                    "nik": rec["nik"],
                    "nama": rec["nama"],
                    "card_type": rec.get("card_type", "KTP-EL"),
                    "office_id": _office(session, rec["office_code"], self.offices),
                    "state": RecordState.HELD if c.hold_reasons else RecordState.QUEUED,
                    "hold_reason": "; ".join(c.hold_reasons) or None,
                    "data": {k: v for k, v in rec.items() if k != "media"},
                    "created_at": self.now,
                    "updated_at": self.now,
                }
            )
        returned = session.execute(insert(Record).returning(Record.id, Record.request_id), rows)
        id_by_request = {request_id: rid for rid, request_id in returned}
        key_rows, media_rows = [], []
        for c in chunk:
            request_id = c.record["request_id"]
            data_key = AESGCM.generate_key(256)
            key_rows.append(
                {
                    "record_id": id_by_request[request_id],
                    "key_label": "storage-kek",
                    "wrapped_key": self.keys.wrap_data_key(data_key, request_id.encode()),
                }
            )
            for kind, plain in c.media.items():
                nonce, ct = encrypt_media(data_key, request_id, kind, plain)
                media_rows.append(
                    {
                        "record_id": id_by_request[request_id],
                        "kind": kind,
                        "nonce": nonce,
                        "ciphertext": ct,
                    }
                )
        session.execute(insert(RecordKey), key_rows)
        if media_rows:
            session.execute(insert(RecordMedia), media_rows)
        outbox.publish_many(
            session,
            outbox.Topic.RECORD_STATE,
            (
                (c.record["office_code"], row["request_id"],
                 record_state_payload(row["request_id"], c.record["office_code"], None,
                                      row["state"], row["hold_reason"] or f"batch {batch.id}"))
                for c, row in zip(chunk, rows, strict=True)
            ),
            at=self.now,
        )  # fmt: skip

    def finish(self) -> None:
        """The batch's counts and its import event."""
        result, batch = self.result, self.batch
        assert batch is not None
        result.held = len(result.holds)
        result.offices = [
            {"code": code, "name": self.session.get_one(Office, self.offices[code]).name,
             "records": n}
            for code, n in sorted(self.per_office.items())
        ]  # fmt: skip
        batch.imported_count += result.imported
        batch.rejected_count = result.rejected
        audit.record(
            self.session,
            AuditTag.INTAKE_BATCH_IMPORT,
            actor=self.actor,
            subject=batch.batch_id,
            details={
                "imported": result.imported,
                "held": result.held,
                "already_imported": result.already_imported,
                "rejected": result.rejected,
                "manifest_sha256": batch.manifest_sha256,
                "signer": batch.signer,
            },
        )


#: Records stored per round of statements (and held in memory, media included, at once).
CHUNK = 500


def _check_medium(container: BatchContainer, settings: Settings, kind: MediaKind, path: str,
                  digest: str) -> tuple[bytes, bool, str | None, bool | None]:
    """One medium read and checked (in a thread): its bytes, whether its hash matches the
    manifest, why it is refused (``None`` if not) and, for a signature, whether it is blank."""
    data = container.read(path, settings.max_media_bytes)
    if hashlib.sha256(data).hexdigest() != digest:
        return data, False, None, None
    try:
        decoded = _verify_media(kind, data, settings)
    except MediaError as exc:
        return data, True, str(exc), None
    blank = signature_is_blank(data, decoded) if kind is MediaKind.SIGNATURE else None
    return data, True, None, blank


def _check_media(container: BatchContainer, settings: Settings,
                 checks: list[tuple[MediaKind, str, str]]
                 ) -> list[tuple[bytes, bool, str | None, bool | None]]:
    """A record's media (kind, path, digest) read and checked in one task, in order."""
    return [_check_medium(container, settings, kind, path, digest)
            for kind, path, digest in checks]


#: Records read ahead while their media are checked in threads (their media held meanwhile).
LOOKAHEAD = 32
MEDIA_THREADS = 2


def _print_hold_reasons(record: dict[str, Any], media: dict[MediaKind, bytes],
                        blank: bool | None = None) -> list[str]:
    """What would only show at the printer, found at intake: text the card's font cannot draw
    (another script, a combining mark) and a blank signature. Such a record is held."""
    reasons = []
    chars = _drawable_chars(_template_name(record))
    for name, value in record.items():
        if not isinstance(value, str) or name in _NOT_PRINTED:
            continue
        if missing := set(value).difference(chars):
            bad = sorted(missing)
            shown = " ".join(f"U+{ord(c):04X}" for c in bad[:5])
            reasons.append(f"{name}: huruf yang tidak dapat dicetak font kartu ({shown})")
    signature = media.get(MediaKind.SIGNATURE)
    if signature is not None and (signature_is_blank(signature) if blank is None else blank):
        reasons.append("tanda tangan kosong (tidak ada goresan)")
    return reasons


#: Record fields that never reach the card face (ids, codes, media paths, contact).
_NOT_PRINTED = frozenset({"request_id", "office_code", "phone", "penunggalan", "card_type"})


def _template_name(record: dict[str, Any]) -> str:
    from printsrv.cardinput import CardInput
    from printsrv.layout.render import template_for

    fields = {k: v for k, v in record.items() if isinstance(v, str)}
    return template_for(CardInput(record.get("request_id", ""), fields, b"", b""))


@lru_cache(maxsize=8)
def _drawable_chars(template: str) -> frozenset[str]:
    """Characters every text font of ``template`` can draw (OCR-B is for the NIK digits),
    combining marks left out (a record's text is checked with one set difference)."""
    from printsrv.layout.fonts import face
    from printsrv.layout.template import load_template

    tpl = load_template(template)
    sets = [face(path).chars for name, path in tpl.fonts.items() if "ocr" not in name.lower()]
    common = frozenset.intersection(*sets) if sets else frozenset()
    return frozenset(c for c in common if not unicodedata.combining(c))


#: States in which a NIK already has a card on its way: a new request for it waits for review.
_OPEN = (RecordState.QUEUED, RecordState.HELD, RecordState.PRINTING)


def _hold_open_requests(session: Session, candidates: list[_Candidate]) -> None:
    """Hold a new request for a NIK that already has one queued, held or printing."""
    niks = [c.record["nik"] for c in candidates]
    open_by_nik: dict[str, str] = {}
    for start in range(0, len(niks), 500):
        open_by_nik.update(session.execute(
            select(Record.nik, Record.request_id)
            .where(Record.nik.in_(niks[start:start + 500]), Record.state.in_(_OPEN))
        ).all())
    for c in candidates:
        other = open_by_nik.get(c.record["nik"])
        if other is not None:
            c.hold_reasons.append(f"NIK sudah punya permohonan yang belum selesai ({other})")


def import_batch(
    settings: Settings,
    path: Path,
    *,
    accept_valid: bool = False,
    actor: str = "cli",
    progress: Progress | None = None,
    on_total: Progress | None = None,
    office_scope: str | None = None,
) -> ImportResult:
    """Import the batch at ``path`` (directory or zip); never raises for a bad batch, the
    result's ``problems`` say what is wrong and ``accepted`` is false.

    ``office_scope`` (an API client token's office): a record for any office outside it (not
    the office nor one of its kecamatan) refuses the whole batch, ``outside_scope`` set."""
    result = ImportResult(source=str(path))
    try:
        with BatchIndex(settings.instance_dir / "tmp") as index, BatchContainer(
            path, max_total_bytes=settings.max_batch_bytes,
            max_file_bytes=settings.max_batch_bytes, on_names=index.add_present,
        ) as container:
            index.add_present(container.names)  # a zip's (a folder's went in as found)
            manifest = _check_manifest(settings, container, result, index)
            if not result.problems:
                _import_records(settings, container, manifest, result, index,
                                accept_valid=accept_valid, actor=actor, progress=progress,
                                on_total=on_total, office_scope=office_scope)  # fmt: skip
    except IntakeError as exc:
        result.problems += [p for p in exc.problems if isinstance(p, BatchProblem | RecordProblem)]
        if not result.problems:
            result.problems.append(BatchProblem(str(path), str(exc)))
        _undo(result)
    if _refused(result, accept_valid):
        _log_rejection(settings, result, actor)
        return result
    result.accepted = True
    if result.rejected:
        result.rejection_report = str(write_rejection_report(settings, result))
    return result


def _refused(result: ImportResult, accept_valid: bool) -> bool:
    """A batch problem refuses the batch; a record problem too, unless ``accept_valid``."""
    return any(isinstance(p, BatchProblem) for p in result.problems) or bool(
        result.problems and not accept_valid
    )


def _undo(result: ImportResult) -> None:
    """The counts of a batch whose transaction was rolled back."""
    result.imported = result.held = result.already_imported = 0
    result.holds = []


def _import_records(
    settings: Settings,
    container: BatchContainer,
    manifest: dict[str, Any],
    result: ImportResult,
    index: BatchIndex,
    *,
    accept_valid: bool,
    actor: str,
    progress: Progress | None,
    on_total: Progress | None,
    office_scope: str | None,
) -> None:
    """Check and store the records as they are read, :data:`CHUNK` at a time, in one
    transaction that is rolled back when the batch is refused (a problem found at any point,
    the file's hash at its end included). Once refused, the rest is still checked (every
    problem is reported) but no longer stored."""
    with KeyStore.open(settings) as keys:
        with unit_of_work(settings) as session:
            store = _Store(session, keys, manifest, result, actor)
            if not store.begin():
                session.rollback()
                return
            chunk: list[_Candidate] = []
            for candidate in _candidates(settings, container, manifest, result, progress,
                                         index, on_total):  # fmt: skip
                code = str(candidate.record.get("office_code", ""))
                if office_scope is not None and not code_within(code, office_scope):
                    result.outside_scope = True
                    result.problems.append(BatchProblem(
                        f"{RECORDS}: line {candidate.line}",
                        f"office {code[:20]} is outside this client's office {office_scope}",
                    ))
                if _refused(result, accept_valid):
                    chunk = []
                    continue
                chunk.append(candidate)
                if len(chunk) >= CHUNK:
                    store.add(chunk)
                    chunk = []
            if _refused(result, accept_valid):
                session.rollback()
                _undo(result)
                return
            if chunk:
                store.add(chunk)
            store.finish()
        checkpoints.checkpoint_now(settings, keys, reason="batch")


def _log_rejection(settings: Settings, result: ImportResult, actor: str) -> None:
    """The refusal as an audit event, then a checkpoint that signs it (a token problem is not
    the batch's: the refusal stands, and the next checkpoint covers it)."""
    with unit_of_work(settings) as session:
        audit.record(
            session,
            AuditTag.INTAKE_BATCH_REJECT,
            actor=actor,
            subject=result.batch_id or result.source[-120:],
            details={
                "problems": len(result.problems),
                "first": [str(p) for p in result.problems[:5]],
            },
        )
    with contextlib.suppress(KeyStoreError), KeyStore.open(settings) as keys:
        checkpoints.checkpoint_now(settings, keys, reason="batch_refused")


def write_rejection_report(settings: Settings, result: ImportResult) -> Path:
    """Write the rejected records and their reasons as JSON lines under ``var/reports``."""
    folder = settings.instance_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"rejected-{result.batch_id}-{stamp}.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for p in result.problems:
            fh.write(json.dumps(p.as_dict(), ensure_ascii=False) + "\n")
    return path
