"""Encrypted, consistent backups of an instance, their restore, and print holds.

A backup file is ``MAGIC``, one JSON header line, then a tar archive sealed in chunks with
AES-256-GCM (each chunk's nonce is a random prefix plus its index; the header's hash, the index
and a final-chunk flag are authenticated, so a reordered, cut or spliced file fails to open).
The archive holds:

* ``manifest.json``: when, which schema revision, which database, row counts per table and the
  audit chain heads (chain, sequence, hash) at the moment of the snapshot;
* ``db.sqlite`` (SQLite online backup API) or ``db.pgdump`` (``pg_dump -Fc``, one MVCC
  snapshot): consistent while stations keep printing;
* ``keys/``: the instance's key folder (certificates, trust anchors). Records' data keys are in
  the database, wrapped by the token's storage key, so they travel with it;
* ``token/`` with ``--with-token`` only: the SoftHSM token files. The token's own keys are not
  extractable; with a hardware HSM their backup is the vendor's procedure (docs/operations.md).

A restore goes only into an empty instance, and it always leaves a :class:`PrintHold`: the
restored ledger may be older than the cards printed after the backup was made, so no station
prints until a supervisor acknowledges. When the anchor the auditors hold (an earlier
manifest, or any JSON with ``heads``) is newer than the restored audit chains, the hold says
which chains are behind and by how many events.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from printsrv.audit_tags import OpsTag
from printsrv.config import Settings
from printsrv.errors import PrintSrvError

MAGIC = b"KTPBAK1\n"
FORMAT = 1
CHUNK = 1 << 20
_NONCE_PREFIX = 8


class BackupError(PrintSrvError):
    """A backup cannot be written, opened or restored."""


# --- keys ---------------------------------------------------------------------------------------


def default_key_path(settings: Settings) -> Path:
    """Where the instance keeps its backup key unless ``--key-file`` names another."""
    return settings.keys_dir / "backup.key"


def load_key(path: Path, *, create: bool = False) -> bytes:
    """Read a 32-byte backup key (hex); with ``create``, make one (0600) when absent."""
    if not path.exists():
        if not create:
            raise BackupError(f"backup key {path} not found")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(os.urandom(32).hex() + "\n")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError as exc:
        raise BackupError(f"backup key {path}: not 64 hex digits") from exc
    if len(key) != 32:
        raise BackupError(f"backup key {path}: {len(key)} bytes, expected 32")
    return key


def key_id(key: bytes) -> str:
    """A fingerprint of the key (never the key): which key a backup needs."""
    return hashlib.sha256(b"ktp-printsrv backup key\0" + key).hexdigest()[:16]


# --- the sealed stream --------------------------------------------------------------------------


class _SealedWriter(io.RawIOBase):
    """Write-only stream: plaintext in, header + sealed chunks out."""

    def __init__(self, out: IO[bytes], key: bytes, header: dict[str, Any]) -> None:
        self._out, self._aead = out, AESGCM(key)
        self._prefix = os.urandom(_NONCE_PREFIX)
        header = {**header, "nonce_prefix": self._prefix.hex(), "key_id": key_id(key)}
        line = json.dumps(header, sort_keys=True).encode() + b"\n"
        out.write(MAGIC + line)
        self._header_hash = hashlib.sha256(MAGIC + line).digest()
        self._buffer = bytearray()
        self._index = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        while len(self._buffer) >= CHUNK:
            self._seal(bytes(self._buffer[:CHUNK]), final=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _seal(self, plain: bytes, *, final: bool) -> None:
        nonce = self._prefix + self._index.to_bytes(4, "big")
        aad = self._header_hash + self._index.to_bytes(8, "big") + (b"\1" if final else b"\0")
        sealed = self._aead.encrypt(nonce, plain, aad)
        self._out.write(len(sealed).to_bytes(4, "big") + sealed)
        self._index += 1

    def finish(self) -> None:
        """Seal what is buffered as the final chunk (an empty one if nothing is left)."""
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()


def read_header(fh: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    """The backup's clear header and the hash that binds it to every chunk."""
    if fh.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a ktp-printsrv backup (bad magic)")
    line = fh.readline(64 * 1024)
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise BackupError("backup header is not JSON") from exc
    if header.get("format") != FORMAT:
        raise BackupError(f"backup format {header.get('format')!r} not supported")
    return header, hashlib.sha256(MAGIC + line).digest()


def _chunks(fh: IO[bytes], key: bytes) -> Iterator[bytes]:
    header, header_hash = read_header(fh)
    if header.get("key_id") != key_id(key):
        raise BackupError(
            f"wrong backup key: the backup needs key {header.get('key_id')}, "
            f"this key is {key_id(key)}"
        )
    try:
        prefix = bytes.fromhex(str(header["nonce_prefix"]))
    except (KeyError, ValueError) as exc:
        raise BackupError("the backup's header is damaged: its nonce prefix is not hex") from exc
    aead = AESGCM(key)
    index = 0
    while True:
        size_bytes = fh.read(4)
        if len(size_bytes) < 4:
            raise BackupError("backup is truncated (final chunk missing)")
        sealed = fh.read(int.from_bytes(size_bytes, "big"))
        nonce = prefix + index.to_bytes(4, "big")
        for final in (False, True):
            aad = header_hash + index.to_bytes(8, "big") + (b"\1" if final else b"\0")
            try:
                plain = aead.decrypt(nonce, sealed, aad)
            except InvalidTag:
                continue
            break
        else:
            raise BackupError(f"backup chunk {index} does not authenticate (altered or cut)")
        yield plain
        index += 1
        if final:
            if fh.read(1):
                raise BackupError("data after the backup's final chunk")
            return


class _OpenedReader(io.RawIOBase):
    """Read-only stream of the plaintext of a backup."""

    def __init__(self, fh: IO[bytes], key: bytes) -> None:
        self._chunks = _chunks(fh, key)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


# --- snapshot -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    bytes: int
    manifest: dict[str, Any]


def _libpq_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(settings.sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _sqlite_path(settings: Settings) -> Path:
    return Path(settings.sqlalchemy_url.split("///", 1)[1])


def manifest_of(session: Session, *, postgres: bool) -> dict[str, Any]:
    """What a backup (or a restore) holds: revision, row counts, audit chain heads."""
    from printsrv.models import AuditHead, Base

    counts = {
        table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
        for table in Base.metadata.sorted_tables
    }
    heads = {
        h.chain: {"seq": h.last_seq, "hash": h.last_hash}
        for h in session.scalars(select(AuditHead).order_by(AuditHead.chain))
    }
    return {
        "format": FORMAT,
        "revision": "+".join(sorted(
            session.execute(text("SELECT version_num FROM alembic_version")).scalars()
        )),
        "database": "postgresql" if postgres else "sqlite",
        "counts": counts,
        "heads": heads,
    }


def _snapshot(settings: Settings, work: Path) -> tuple[Path, dict[str, Any]]:
    """A consistent copy of the database in ``work`` and the manifest of that same copy."""
    from printsrv.db import engine_for

    if settings.is_postgres:
        dump = work / "db.pgdump"
        # One repeatable-read snapshot, exported so that pg_dump and the manifest see the same
        # database state while stations keep committing.
        engine = engine_for(settings.sqlalchemy_url)
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                _run(
                    ["pg_dump", "-Fc", "--no-owner", f"--snapshot={snapshot}",
                     "-f", str(dump), "-d", _libpq_url(settings)],
                    "pg_dump",
                )  # fmt: skip
                with Session(bind=conn) as session:
                    manifest = manifest_of(session, postgres=True)
        return dump, manifest
    copy = work / "db.sqlite"
    source = sqlite3.connect(_sqlite_path(settings), timeout=30)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)  # online backup API: a consistent copy under concurrent writers
    finally:
        source.close()
        target.close()
    copy_engine = _sqlite_engine(copy)
    try:
        with Session(bind=copy_engine) as session:
            manifest = manifest_of(session, postgres=False)
    finally:
        copy_engine.dispose()
    return copy, manifest


def _sqlite_engine(path: Path) -> Any:
    from sqlalchemy import create_engine

    return create_engine(f"sqlite:///{path}")


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError as exc:
        raise BackupError(f"{what} not installed (Debian: postgresql-client)") from exc
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip()[:500]}")


def create_backup(
    settings: Settings, out: Path, key: bytes, *, with_token: bool = False
) -> BackupSummary:
    """Write an encrypted backup to ``out`` (atomically, mode 0600)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="printsrv-backup-") as tmp:
        work = Path(tmp)
        dump, manifest = _snapshot(settings, work)
        manifest = {
            **manifest,
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "with_token": with_token,
        }
        partial = out.with_name(out.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            header = {"format": FORMAT, "created_utc": manifest["created_utc"]}
            sealed = _SealedWriter(fh, key, header)
            with tarfile.open(fileobj=sealed, mode="w|") as tar:
                data = json.dumps(manifest, indent=1, sort_keys=True).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
                tar.add(dump, arcname=dump.name)
                if settings.keys_dir.is_dir():
                    tar.add(settings.keys_dir, arcname="keys")
                if with_token and settings.softhsm_conf is None:
                    tokens = settings.softhsm_conf_path.parent / "tokens"
                    if tokens.is_dir():
                        tar.add(tokens, arcname="token")
            sealed.finish()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, out)
    return BackupSummary(out, out.stat().st_size, manifest)


def rotate(out_dir: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups in ``out_dir``; return what was deleted."""
    backups = sorted(out_dir.glob("printsrv-*.ktpbak"))
    doomed = backups[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink()
    return doomed


# --- restore ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreSummary:
    manifest: dict[str, Any]
    behind: dict[str, int] = field(default_factory=dict)
    hold_reason: str = ""


_ALLOWED_TOP = {"manifest.json", "db.sqlite", "db.pgdump", "keys", "token"}


def _safe_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        parts = Path(member.name).parts
        if (
            not parts
            or parts[0] not in _ALLOWED_TOP
            or member.name.startswith("/")
            or ".." in parts
            or not (member.isfile() or member.isdir())
        ):
            raise BackupError(f"backup holds an unexpected member {member.name!r}")
        yield member


def _instance_is_empty(settings: Settings) -> bool:
    from sqlalchemy import inspect

    from printsrv.db import engine_for
    from printsrv.models import Base

    engine = engine_for(settings.sqlalchemy_url)
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name in present and conn.execute(
                select(func.count()).select_from(table)
            ).scalar_one():
                return False
    return True


def _clear_schema(settings: Settings) -> None:
    from printsrv.db import engine_for
    from printsrv.models import Base

    engine = engine_for(settings.sqlalchemy_url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        if settings.is_postgres:
            # Enum types outlive their tables on PostgreSQL.
            for (name,) in conn.execute(
                text("SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                     " WHERE n.nspname = 'public' AND t.typtype = 'e'")
            ):  # fmt: skip
                conn.execute(text(f'DROP TYPE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def behind_anchor(restored: dict[str, Any], anchor: dict[str, Any]) -> dict[str, int]:
    """Chains whose restored head is older than the anchor's: chain → events missing."""
    mine = restored.get("heads", {})
    behind = {}
    for chain, head in anchor.get("heads", {}).items():
        seq = int(head["seq"] if isinstance(head, dict) else head)
        have = int(mine.get(chain, {}).get("seq", 0))
        if have < seq:
            behind[chain] = seq - have
    return behind


def restore_backup(
    settings: Settings,
    path: Path,
    key: bytes,
    *,
    anchor: dict[str, Any] | None = None,
    anchor_checkpoints: Path | None = None,
    actor: str = "cli",
) -> RestoreSummary:
    """Restore ``path`` into this (empty) instance and hold every station until acknowledged."""
    from printsrv import audit, schema
    from printsrv.db import engine_for, unit_of_work

    if not _instance_is_empty(settings):
        raise BackupError(
            "this instance holds data: restore only into an empty instance (a fresh "
            "database and instance folder)"
        )
    with tempfile.TemporaryDirectory(prefix="printsrv-restore-") as tmp:
        work = Path(tmp)
        with open(path, "rb") as fh:
            plain = io.BufferedReader(_OpenedReader(fh, key), buffer_size=CHUNK)
            try:
                with tarfile.open(fileobj=plain, mode="r|") as tar:
                    for member in _safe_members(tar):
                        tar.extract(member, work, filter="data")
            except tarfile.TarError as exc:
                raise BackupError(f"backup archive is damaged: {exc}") from exc
        manifest = json.loads((work / "manifest.json").read_text())
        if manifest["database"] == "postgresql" and not settings.is_postgres:
            raise BackupError("a PostgreSQL backup restores into a PostgreSQL database")
        if manifest["database"] == "sqlite" and settings.is_postgres:
            raise BackupError("a SQLite backup restores into a SQLite database")
        engine_for(settings.sqlalchemy_url).dispose()
        if settings.is_postgres:
            _clear_schema(settings)
            _run(
                ["pg_restore", "--no-owner", "--exit-on-error", "-d", _libpq_url(settings),
                 str(work / "db.pgdump")],
                "pg_restore",
            )  # fmt: skip
        else:
            target = _sqlite_path(settings)
            target.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(work / "db.sqlite", target)
            target.chmod(0o600)
        for folder, dest in (("keys", settings.keys_dir),
                             ("token", settings.softhsm_conf_path.parent / "tokens")):
            if (work / folder).is_dir():
                _copy_missing(work / folder, dest)
    engine_for(settings.sqlalchemy_url).dispose()
    schema.upgrade(settings)
    # The signed checkpoints outside the database, if this instance kept them, are an anchor
    # too: the restored log must reach every chain's newest signed sequence.
    from printsrv import checkpoints

    files = [p for p in (checkpoints.anchor_file(settings), anchor_checkpoints)
             if p is not None and p.exists()]
    for path in files:
        anchor = {"heads": {**checkpoints.signed_heads(path, settings),
                            **(anchor or {}).get("heads", {})}}
    behind = behind_anchor(manifest, anchor) if anchor else {}
    if behind:
        reason = (
            f"restored from the backup of {manifest.get('created_utc')}: its audit log is "
            f"behind the anchor in {len(behind)} chain(s) "
            f"({', '.join(f'{c} by {n}' for c, n in sorted(behind.items()))}); cards printed "
            "after the backup are missing from the ledger"
        )
    elif anchor:
        reason = (
            f"restored from the backup of {manifest.get('created_utc')}: the audit log is not "
            "behind the anchor given; confirm that no card was printed after the backup"
        )
    else:
        reason = (
            f"restored from the backup of {manifest.get('created_utc')}: not compared with "
            "an anchor; cards printed after the backup may be missing from the ledger"
        )
    with unit_of_work(settings) as session:
        add_hold(session, reason, {"backup": str(path), "behind": behind}, actor=actor)
        audit.record(
            session,
            OpsTag.BACKUP_RESTORE,
            actor=actor,
            subject=manifest.get("created_utc"),
            details={"behind": behind, "revision": manifest.get("revision")},
        )
    return RestoreSummary(manifest, behind, reason)


def _copy_missing(source: Path, dest: Path) -> None:
    """Copy files from ``source`` that ``dest`` lacks (never overwrite a key or a token)."""
    for item in sorted(source.rglob("*")):
        target = dest / item.relative_to(source)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(item, target)
            target.chmod(0o600)


# --- print holds --------------------------------------------------------------------------------


def add_hold(session: Session, reason: str, details: dict[str, Any], *, actor: str) -> None:
    """Stop every station until a supervisor acknowledges ``reason``."""
    from printsrv.models import PrintHold

    session.add(PrintHold(reason=reason, details={**details, "by": actor}))


def active_hold(session: Session) -> str | None:
    """The reason of the oldest unacknowledged hold, or ``None``."""
    from printsrv.models import PrintHold

    return session.scalars(
        select(PrintHold.reason)
        .where(PrintHold.acknowledged_at.is_(None))
        .order_by(PrintHold.id)
        .limit(1)
    ).first()


def acknowledge_holds(session: Session, *, by: str, settings: Settings | None = None) -> int:
    """A supervisor acknowledges every open hold (audited); return how many."""
    from printsrv import audit
    from printsrv.models import PrintHold

    holds = session.scalars(select(PrintHold).where(PrintHold.acknowledged_at.is_(None))).all()
    now = datetime.now(UTC)
    if settings is not None and any((h.details or {}).get("behind") for h in holds):
        # The log was taken back before checkpoints the file still holds: that file is kept,
        # renamed, for the auditors, and a new one starts from the restored log.
        from printsrv import checkpoints

        kept = checkpoints.set_aside(settings, f"before-restore-{now:%Y%m%dT%H%M%SZ}")
        if kept is not None:
            audit.record(session, OpsTag.CHECKPOINTS_SET_ASIDE, actor=by, subject=kept.name,
                         details={"file": str(kept)})
    for hold in holds:
        hold.acknowledged_by, hold.acknowledged_at = by, now
        audit.record(
            session,
            OpsTag.HOLD_ACKNOWLEDGE,
            actor=by,
            subject=str(hold.id),
            details={"reason": hold.reason[:200]},
        )
    return len(holds)
