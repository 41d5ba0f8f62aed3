"""Signed checkpoints: the audit log anchored outside the database.

The hash chains (:mod:`printsrv.audit`) show an edit, a gap or a reordering, but someone who
can write the database can also delete a chain's tail and move its head back, delete a whole
chain with its head, or rewrite an event and recompute every hash after it. So the server
signs, with a key inside the token that never leaves it, the list of every chain's head
(chain, sequence, hash) under a global checkpoint number, and keeps each checkpoint twice:

* in the table ``audit_checkpoint`` (so that every station and the web see them), and
* appended (``O_APPEND``, ``fsync``) to ``audit/checkpoints.jsonl`` in the instance folder,
  outside the database: the copy an auditor takes away with ``audit export``.

A checkpoint is written after every card fate and at a station's stop (end of shift), after
every batch imported or refused, and by ``audit checkpoint --if-due`` (a timer) when at least
``checkpoint_events`` events or ``checkpoint_minutes`` minutes have passed since the last one.

:func:`verify` holds the log to every checkpoint it can find: a chain a checkpoint names must
still exist, reach at least that sequence, and have exactly that hash there. Events after the
newest checkpoint are covered by their hash chain only, which is why checkpoints are frequent.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printsrv import rawdb
from printsrv.config import Settings

if TYPE_CHECKING:  # loaded where used: verifying on an empty log needs neither
    from cryptography.hazmat.primitives.asymmetric import ec
    from sqlalchemy.orm import Session

    from printsrv.models import AuditCheckpoint

#: Write a checkpoint when this many events, or this many minutes, passed since the last.
DUE_EVENTS = 1000
DUE_MINUTES = 10


def anchor_file(settings: Settings) -> Path:
    """The append-only copy of the checkpoints, outside the database."""
    return settings.instance_dir / "audit" / "checkpoints.jsonl"


def public_key_file(settings: Settings) -> Path:
    return settings.keys_dir / "audit-signer.pem"


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write(session: Session, keys: Any, *, reason: str) -> AuditCheckpoint:
    """Sign every chain's head in the caller's transaction; the caller appends the returned
    checkpoint to the file after the commit (:func:`append`)."""
    from sqlalchemy import select

    from printsrv.models import AuditCheckpoint, AuditHead

    heads = {
        h.chain: {"seq": h.last_seq, "hash": h.last_hash}
        for h in session.scalars(select(AuditHead).order_by(AuditHead.chain))
    }
    now = datetime.now(UTC)
    row = AuditCheckpoint(at=now, reason=reason[:40], body="", signature="")
    session.add(row)
    session.flush()
    body = _canonical({"checkpoint": row.id, "at": now.isoformat(timespec="microseconds"),
                       "reason": row.reason, "heads": heads})
    row.body = body
    row.signature = base64.b64encode(keys.audit_signer().sign(body.encode())).decode()
    return row


def append(settings: Settings, checkpoint: AuditCheckpoint) -> None:
    """Append ``checkpoint`` to the file outside the database (one line, ``fsync``)."""
    path = anchor_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = _canonical({"body": checkpoint.body, "signature": checkpoint.signature}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_now(settings: Settings, keys: Any, *, reason: str,
                   audit_chain: str | None = None) -> AuditCheckpoint:
    """Write, commit and append one checkpoint (its own unit of work)."""
    from printsrv.db import unit_of_work

    with unit_of_work(settings, audit_chain=audit_chain) as session:
        row = write(session, keys, reason=reason)
        session.flush()
        session.expunge(row)
    append(settings, row)
    return row


def due(session: Session, *, events: int = DUE_EVENTS, minutes: int = DUE_MINUTES) -> bool:
    """Whether ``events`` events or ``minutes`` minutes passed since the last checkpoint."""
    from sqlalchemy import func, select

    from printsrv.models import AuditCheckpoint, AuditEvent

    last = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc())
                           .limit(1)).first()
    total = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    if last is None:
        return total > 0
    covered = sum(h["seq"] for h in json.loads(last.body)["heads"].values())
    at = last.at if last.at.tzinfo else last.at.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - at).total_seconds() / 60
    return total - covered >= events or (age >= minutes and total > covered)


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """One checkpoint as found (in the file or the table), its signature checked."""

    number: int
    body: dict[str, Any]
    source: str


@dataclass
class CheckpointReport:
    checkpoints: int = 0
    newest: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_public_key(settings: Settings) -> ec.EllipticCurvePublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_public_key(public_key_file(settings).read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def _check(body: str, signature: str, key: ec.EllipticCurvePublicKey | None) -> bool:
    if key is None:
        return False
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(base64.b64decode(signature), body.encode(), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _file_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                yield number, json.loads(line)
            except ValueError:
                yield number, None


Rows = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


def verify(session: Session, settings: Settings) -> CheckpointReport:
    """Hold the audit log to every checkpoint in the file and in the table."""
    pg = session.connection().dialect.name == "postgresql"
    dbapi = session.connection().connection.dbapi_connection

    def rows(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql.replace("?", "%s") if pg else sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    return verify_rows(rows, settings)


def verify_rows(rows: Rows, settings: Settings) -> CheckpointReport:
    """:func:`verify` with a plain cursor: ``rows(sql, params)`` (``?`` placeholders) gives a
    statement's rows (:class:`printsrv.rawdb.RawDb`), so ``audit verify`` needs no engine."""
    report = CheckpointReport()
    # No key yet (an instance not initialised): nothing can have been signed; any checkpoint
    # found then fails its signature check below.
    key = load_public_key(settings) if public_key_file(settings).exists() else None
    found: dict[int, Signed] = {}
    path = anchor_file(settings)
    for line_no, entry in _file_lines(path):
        if not entry or not _check(entry.get("body", ""), entry.get("signature", ""), key):
            report.problems.append(f"{path.name} line {line_no}: signature does not verify "
                                   "(the file was edited)")
            continue
        body = json.loads(entry["body"])
        found[body["checkpoint"]] = Signed(body["checkpoint"], body, "file")
    in_table: set[int] = set()
    for number, body, signature in rows(
        "SELECT id, body, signature FROM audit_checkpoint ORDER BY id", ()
    ):
        in_table.add(number)
        if not _check(body, signature, key):
            report.problems.append(f"checkpoint {number} in the database: signature does not "
                                   "verify (edited)")
            continue
        found.setdefault(number, Signed(number, json.loads(body), "table"))
    for number in sorted(n for n, s in found.items() if s.source == "file"):
        if number not in in_table:
            report.problems.append(f"checkpoint {number} is in {path.name} but was deleted "
                                   "from the database")
    report.checkpoints = len(found)
    report.newest = max(found) if found else None
    report.problems += _hold_chains_to(rows, found.values())
    return report


def _hold_chains_to(rows: Rows, checkpoints: Any) -> list[str]:
    """Every (chain, sequence, hash) a checkpoint states must still be in the log."""
    wanted: dict[str, dict[int, tuple[str, int]]] = {}
    for cp in checkpoints:
        for chain, head in cp.body["heads"].items():
            wanted.setdefault(chain, {})[int(head["seq"])] = (head["hash"], cp.number)
    heads: dict[str, int] = dict(rows("SELECT chain, last_seq FROM audit_head", ()))
    problems: list[str] = []
    for chain in sorted(wanted):
        stated = wanted[chain]
        top = max(stated)
        if chain not in heads:
            present = rows("SELECT count(*) FROM audit_event WHERE chain = ?", (chain,))[0][0]
            problems.append(f"chain {chain}: missing (checkpoint {stated[top][1]} saw {top} "
                            f"events; {present} left, head row gone)")
            continue
        if heads[chain] < top:
            problems.append(f"chain {chain}: shorter than checkpoint {stated[top][1]} "
                            f"({heads[chain]} events, the checkpoint saw {top}): events "
                            "deleted at the end")
        hashes: dict[int, str] = {}
        seqs = sorted(stated)
        for start in range(0, len(seqs), 500):
            part = seqs[start:start + 500]
            hashes.update(rows(
                "SELECT chain_seq, hash FROM audit_event WHERE chain = ? AND chain_seq IN ("
                + rawdb.marks(len(part)) + ")", (chain, *part)))
        for seq in sorted(stated):
            digest, number = stated[seq]
            if seq not in hashes:
                if heads[chain] >= seq:
                    problems.append(f"chain {chain}: event {seq} of checkpoint {number} "
                                    "is gone")
            elif hashes[seq] != digest:
                problems.append(f"chain {chain}: event {seq} differs from checkpoint {number}"
                                " (edited, and the chain re-hashed)")
                break
    return problems


def signed_heads(path: Path, settings: Settings) -> dict[str, dict[str, Any]]:
    """The newest signed sequence of each chain over every valid checkpoint in ``path`` (a
    ``checkpoints.jsonl``): what the log must at least hold. Lines that do not verify are
    skipped (:func:`verify` reports them)."""
    key = load_public_key(settings)
    heads: dict[str, dict[str, Any]] = {}
    for _number, entry in _file_lines(path):
        if not entry or not _check(entry.get("body", ""), entry.get("signature", ""), key):
            continue
        for chain, head in json.loads(entry["body"])["heads"].items():
            if int(head["seq"]) > int(heads.get(chain, {"seq": 0})["seq"]):
                heads[chain] = head
    return heads


def set_aside(settings: Settings, suffix: str) -> Path | None:
    """Rename the checkpoints file (kept for the auditors) so that a new one starts: after a
    supervisor acknowledged that a restore took the log back before it."""
    path = anchor_file(settings)
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.{suffix}")
    path.rename(target)
    return target
