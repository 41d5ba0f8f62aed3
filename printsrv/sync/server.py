"""The kabupaten server's side of the kecamatan sync: plain services over a session (the web
blueprint :mod:`printsrv.web.sync_api` and ``run.py nodes`` are thin over these).

* **Registry**: :func:`enrol` (pending), :func:`approve` with the node's one-time pairing code,
  :func:`revoke`; :func:`authenticate` checks each request's signature and counter.
* **Down**: :func:`pull` hands the node the queued records of its office (``owner_node`` set in
  the same transaction; the server's stations never claim them), numbered per node, with their
  encrypted media and the data key re-wrapped for the node's key; and the recalls asked of it.
* **Up**: :func:`push` applies the node's events in its sequence order, each event id once (the
  applied-id row in the same transaction as the change), and answers the highest applied.
* **Stock**: :func:`transfer_to_node` hands blanks and ribbons to a node under a BAST: in
  transit in this ledger, handed down as a ``bast`` item, in transit in the node's ledger too
  until the node accepts it; the node's blank movements (its acceptance, loads, issues,
  spoils with their causes) move this server's copy of its blanks the same way, at a mirror
  station per node station, so the kabupaten's monthly report counts the nodes' cards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, func, select, tuple_, update
from sqlalchemy.orm import Session, joinedload

from printsrv import audit, outbox
from printsrv.audit_tags import LedgerTag, SyncTag
from printsrv.errors import NotFound, StateError
from printsrv.ledger import blanks as ledger
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    Blank,
    BlankMovement,
    BlankState,
    Consumable,
    ConsumableKind,
    ConsumableState,
    HandoverRecord,
    MovementKind,
    SpoilCause,
    Station,
)
from printsrv.ledger.ribbons import (
    accept_consumable,
    finish_consumable,
    load_consumable,
    receive_consumable,
    record_ribbon_usage,
    transfer_consumable,
)
from printsrv.models import Office, Record, RecordKey, RecordMedia, RecordState, User
from printsrv.offices import ensure_office, office_code
from printsrv.products import DEFAULT_STOCK_TYPE
from printsrv.records import audit_state_change, purge_media, state_change_details
from printsrv.sync import protocol
from printsrv.sync.models import (
    AppliedEvent,
    DownItem,
    NodeAuditEvent,
    NodeAuditKey,
    NodeChainMark,
    NodeCheckpoint,
    NodeShred,
    NodeState,
    NodeStation,
    Recall,
    RecallState,
    SyncNode,
)
from printsrv.sync.protocol import AuthError, SyncError

#: Topic of a node's answer to a recall (payload: request_id, released, fate).
RECALL_ANSWER = "node.recall"
#: Records handed down in one pull at most.
PULL_LIMIT = 100


def _now() -> datetime:
    return datetime.now(UTC)


def node_actor(node_id: str) -> str:
    return f"node:{node_id}"[:64]


# ----------------------------------------------------------------------------------- registry


def enrol(session: Session, *, office: str, public_key_pem: str, pairing_hash: str,
          name: str = "", audit_key: str | None = None) -> SyncNode:
    """A node asks to join (pending until an admin confirms its pairing code). ``audit_key``:
    its audit checkpoint key (PEM), pinned when the admin approves the node."""
    protocol.load_public_key(public_key_pem)  # a P-256 key, or SyncError
    if audit_key:
        protocol.load_public_key(audit_key)
    if len(pairing_hash) != 64:
        raise SyncError("pairing hash: 64 hex digits")
    ensure_office(session, office, actor="sync")
    node = SyncNode(
        node_id=f"{office}-{uuid.uuid4().hex[:8]}", office_code=office, name=name[:120],
        public_key=public_key_pem, state=NodeState.PENDING, pairing_hash=pairing_hash,
        enrolled_at=_now(), request_counter=0, down_seq=0, down_acked=0, up_applied=0,
        audit_key=audit_key or None, audit_checkpoint_verified=0,
    )  # fmt: skip
    session.add(node)
    session.flush()
    audit.record(session, SyncTag.NODE_ENROL, actor="sync", office_code=office,
                 subject=node.node_id, details={"name": node.name})
    return node


def get_node(session: Session, node_id: str, *, lock: bool = False) -> SyncNode:
    stmt = select(SyncNode).where(SyncNode.node_id == node_id)
    if lock:
        stmt = stmt.with_for_update()
    node = session.scalar(stmt)
    if node is None:
        raise NotFound(f"no node {node_id!r}")
    return node


def approve(session: Session, node_id: str, code: str, *, actor: str) -> SyncNode:
    """Confirm a pending node with the one-time code it showed its operator."""
    node = get_node(session, node_id, lock=True)
    if node.state is not NodeState.PENDING:
        raise StateError(f"node {node_id} is {node.state}, not pending")
    if node.pairing_hash is None or protocol.pairing_hash(code) != node.pairing_hash:
        raise StateError(f"node {node_id}: the pairing code does not match")
    node.state = NodeState.ACTIVE
    node.pairing_hash = None  # one time
    node.approved_at = _now()
    node.approved_by = actor[:64]
    if node.audit_key:  # the checkpoint key it enrolled with: the only one accepted from now
        session.merge(NodeAuditKey(node_id=node_id, public_key=node.audit_key,
                                   received_at=_now(), bound="enrolment"))
    audit.record(session, SyncTag.NODE_APPROVE, actor=actor, office_code=node.office_code,
                 subject=node_id, details={"audit_key": protocol.key_fingerprint(node.audit_key)
                                           if node.audit_key else None})
    return node


def revoke(session: Session, node_id: str, *, actor: str) -> SyncNode:
    """End a node's access; its requests are refused from now on (the records it holds stay
    its own until a supervisor settles them: they may have been printed offline)."""
    node = get_node(session, node_id, lock=True)
    if node.state is not NodeState.REVOKED:
        node.state = NodeState.REVOKED
        node.revoked_at = _now()
        audit.record(session, SyncTag.NODE_REVOKE, actor=actor, office_code=node.office_code,
                     subject=node_id)
    return node


def authenticate(session: Session, *, node_id: str, counter: str, body_sha256: str,
                 signature: str, method: str, path: str, body: bytes,
                 allow_pending: bool = False, replayable: bool = False) -> SyncNode:
    """The node a signed request comes from (its row locked for the request); raises
    :class:`AuthError` (401: unknown, bad signature, replay; 403: pending or revoked) and
    :class:`SyncError` for a body that does not match its signed digest. ``replayable``: a
    read-only request whose counter is not checked nor kept (nor the row locked)."""
    stmt = select(SyncNode).where(SyncNode.node_id == node_id)
    node = session.scalar(stmt if replayable else stmt.with_for_update())
    if node is None:
        raise AuthError("unknown node", 401)
    try:
        number = int(counter)
    except ValueError:
        raise AuthError("bad request counter", 401) from None
    if protocol.body_digest(body) != body_sha256:
        # corrupted on the way (or cut): refused, but not a credential failure: sent again
        raise SyncError("body does not match its digest: refused")
    text = protocol.signing_text(method, path, body_sha256, node_id, number)
    if not protocol.verify_signature(node.public_key, signature, text):
        raise AuthError("bad signature", 401)
    if node.state is NodeState.REVOKED:
        raise AuthError("node revoked", 403)
    if node.state is NodeState.PENDING and not allow_pending:
        raise AuthError("node not yet approved", 403)
    if replayable:
        # a read of bytes the node was already handed (a bundle's range): a replay gains
        # nothing the wire did not carry, and parallel ranges arrive in any order
        return node
    if number <= node.request_counter:
        raise AuthError("request counter replayed", 401)
    node.request_counter = number
    node.last_contact_at = _now()
    return node


# ----------------------------------------------------------------------------------- down


def _assign(session: Session, node: SyncNode, limit: int) -> list[str]:
    """Give the node the oldest queued records of its office that nobody holds; numbered down
    items in the same transaction. Returns their request ids."""
    unheld = _unheld(session, node)
    if unheld is None or limit <= 0:
        return []
    pick = unheld.order_by(Record.id).limit(limit).with_for_update(skip_locked=True)
    ids = list(session.scalars(pick))
    if not ids:
        return []
    rows = session.execute(
        update(Record)
        .where(Record.id.in_(ids), Record.state == RecordState.QUEUED,
               Record.owner_node.is_(None))
        .values(owner_node=node.node_id)
        .returning(Record.id, Record.request_id)
        .execution_options(synchronize_session=False)
    ).all()
    out = []
    for _id, request_id in sorted(rows):
        node.down_seq += 1
        session.add(DownItem(node_id=node.node_id, seq=node.down_seq, kind="record",
                             request_id=request_id, created_at=_now()))
        audit.record(session, SyncTag.RECORD_ASSIGN, actor="sync",
                     office_code=node.office_code, subject=request_id,
                     details={"node": node.node_id, "seq": node.down_seq})
        out.append(request_id)
    session.flush()
    return out


class DataKeys(Protocol):
    """What a pull needs of the server's token (a :class:`printsrv.keys.KeyStore`)."""

    def unwrap_data_key(self, wrapped: bytes, record_ref: bytes) -> bytes: ...


def _unheld(session: Session, node: SyncNode) -> Select[Any] | None:
    """The queued records of the node's office that nobody holds (nor this node released
    after a recall): what a pull may hand it. None: the office is unknown here."""
    office = session.scalar(select(Office.id).where(Office.code == node.office_code))
    if office is None:
        return None
    released = select(Recall.request_id).where(
        Recall.node_id == node.node_id, Recall.state == RecallState.RELEASED
    )
    return select(Record.id).where(
        Record.office_id == office, Record.state == RecordState.QUEUED,
        Record.owner_node.is_(None), Record.request_id.not_in(released))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def record_payload(session: Session, keys: DataKeys, node: SyncNode, record: Record,
                   blobs: list[str] | None = None,
                   wrapping: protocol.Wrapping | None = None,
                   media: Sequence[RecordMedia] | None = None) -> dict[str, Any]:
    """A record as a node receives it: its data, its media as stored (ciphertext) and its data
    key wrapped for the node's key (never the clear key, never clear media). With ``blobs``,
    each medium's ciphertext (base64) is appended there and the medium names its index
    (``"blob"``) instead of carrying it: an answer puts its blobs after every record's text, so
    deflate sees the records' text together and the incompressible ciphertext apart.
    ``wrapping``: the ephemeral key the answer's data keys are wrapped with (one ECDH at each
    end for the answer); ``media``: the record's, when the caller read them already."""
    batch = record.batch
    out: dict[str, Any] = {
        "request_id": record.request_id,
        "office": office_code(session, record.office_id),
        "card_type": record.card_type,
        "line_no": record.line_no,
        "nik": record.nik,
        "nama": record.nama,
        "data": record.data,
        "batch": {
            "batch_id": batch.batch_id, "issuer": batch.issuer,
            "created_at": batch.created_at.isoformat(), "record_count": batch.record_count,
            "manifest_sha256": batch.manifest_sha256, "signer": batch.signer,
        },
        "media": [],
        "key": None,
    }
    key_row = session.get(RecordKey, record.id)
    if key_row is not None:
        data_key = keys.unwrap_data_key(key_row.wrapped_key, record.request_id.encode())
        wrapping = wrapping or protocol.Wrapping(protocol.load_public_key(node.public_key))
        wrapped = wrapping.wrap(data_key, record.request_id)
        del data_key
        out["key"] = wrapped.to_json()
        if media is None:
            media = session.scalars(select(RecordMedia).where(
                RecordMedia.record_id == record.id).order_by(RecordMedia.id)).all()
        for m in media:
            entry: dict[str, Any] = {"kind": m.kind.value, "nonce": _b64(m.nonce)}
            if blobs is None:
                entry["ciphertext"] = _b64(m.ciphertext)
            else:
                entry["blob"] = len(blobs)
                blobs.append(_b64(m.ciphertext))
            out["media"].append(entry)
    return out


def note_down_applied(node: SyncNode, after: int) -> None:
    """The node says it has applied every down item up to ``after``."""
    if after > node.down_seq:
        raise SyncError(f"node {node.node_id} claims down item {after}; newest is "
                        f"{node.down_seq}")
    node.down_acked = max(node.down_acked, after)


def pull(session: Session, keys: DataKeys, node: SyncNode, *, after: int,
         limit: int = PULL_LIMIT) -> dict[str, Any]:
    """The node has applied every down item up to ``after``; hand it new records of its office
    and answer the items after ``after`` (at most ``limit``), oldest first."""
    note_down_applied(node, after)
    waiting = node.down_seq - after
    if waiting < limit:
        _assign(session, node, limit - waiting)
    items = session.scalars(
        select(DownItem).where(DownItem.node_id == node.node_id, DownItem.seq > after)
        .order_by(DownItem.seq).limit(limit)
    ).all()
    out: list[dict[str, Any]] = []
    blobs: list[str] = []
    wrapping = protocol.Wrapping(protocol.load_public_key(node.public_key))
    # the answer's records, their keys and media in three queries (not three per record)
    records = {r.request_id: r for r in session.scalars(
        select(Record).options(joinedload(Record.batch))
        .where(Record.request_id.in_([i.request_id for i in items if i.kind == "record"])))}
    ids = [r.id for r in records.values()]
    session.scalars(select(RecordKey).where(RecordKey.record_id.in_(ids))).all()  # cached
    media: dict[int, list[RecordMedia]] = {i: [] for i in ids}
    for m in session.scalars(select(RecordMedia).where(RecordMedia.record_id.in_(ids))
                             .order_by(RecordMedia.id)):
        media[m.record_id].append(m)
    for item in items:
        entry: dict[str, Any] = {"seq": item.seq, "kind": item.kind,
                                 "request_id": item.request_id}
        if item.kind == "record":
            record = records.get(item.request_id)
            if record is None:
                raise SyncError(f"down item {item.seq}: record {item.request_id} is gone")
            entry["record"] = record_payload(session, keys, node, record, blobs, wrapping,
                                             media[record.id])
        elif item.kind == "bast":
            entry["bast"] = bast_payload(session, node, item.request_id)
        out.append(entry)
    # ``more``: there is more to hand down (the node asks again): items after this answer's
    # last, or (a full answer) queued records of the office nobody holds yet
    last = items[-1].seq if items else after
    more = node.down_seq > last or (len(out) >= limit and _assignable(session, node))
    return {"items": out, "newest": node.down_seq, "up_applied": node.up_applied,
            "more": more, "blobs": blobs}


def _assignable(session: Session, node: SyncNode) -> bool:
    """Whether a pull would hand the node another record."""
    unheld = _unheld(session, node)
    return unheld is not None and session.scalar(unheld.limit(1)) is not None


def recall(session: Session, request_id: str, *, actor: str) -> Recall:
    """Ask the node that holds ``request_id`` to give it back (it answers on its next sync:
    released, or refused with the card's fate when it was already printed)."""
    record = session.scalar(
        select(Record).where(Record.request_id == request_id).with_for_update()
    )
    if record is None:
        raise NotFound(f"no record with request_id {request_id!r}")
    if record.owner_node is None:
        raise StateError(f"record {request_id} is held by no node")
    pending = session.scalar(select(Recall).where(
        Recall.request_id == request_id, Recall.node_id == record.owner_node,
        Recall.state == RecallState.ASKED))
    if pending is not None:
        return pending
    node = get_node(session, record.owner_node, lock=True)
    node.down_seq += 1
    session.add(DownItem(node_id=node.node_id, seq=node.down_seq, kind="recall",
                         request_id=request_id, created_at=_now()))
    asked = Recall(node_id=node.node_id, request_id=request_id, state=RecallState.ASKED,
                   asked_by=actor[:64], asked_at=_now())
    session.add(asked)
    audit.record(session, SyncTag.RECORD_RECALL, actor=actor, office_code=node.office_code,
                 subject=request_id, details={"node": node.node_id})
    session.flush()
    return asked


# ----------------------------------------------------------------------------------- users


def users_payload(session: Session, node: SyncNode) -> list[dict[str, Any]]:
    """The users of a node's office as the node keeps them: name, role, password hash and
    whether they may sign in (a revoked user is sent inactive, never left out). The TOTP
    secret is sealed under this server's token and stays here."""
    office = session.scalar(select(Office.id).where(Office.code == node.office_code))
    return [
        {"username": u.username, "full_name": u.full_name, "role": u.role.value,
         "password_hash": u.password_hash, "active": bool(u.active)}
        for u in session.scalars(select(User).where(User.office_id == office)
                                 .order_by(User.username))
    ]


def users_digest(users: Sequence[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(list(users), sort_keys=True,
                                     separators=(",", ":")).encode()).hexdigest()


def users_for_node(session: Session, node: SyncNode, *, known: str) -> dict[str, Any]:
    """The node's users and their digest; ``users`` is None when the node's copy (``known``,
    its digest) is current."""
    users = users_payload(session, node)
    digest = users_digest(users)
    return {"digest": digest, "users": None if digest == known else users}


# ----------------------------------------------------------------------------------- audit


def audit_cursor(session: Session, node_id: str) -> dict[str, int]:
    """How far this server holds a node's audit log: its highest event and checkpoint."""
    return {
        "through": int(session.scalar(select(func.max(NodeAuditEvent.node_seq)).where(
            NodeAuditEvent.node_id == node_id)) or 0),
        "checkpoint": int(session.scalar(select(func.max(NodeCheckpoint.number)).where(
            NodeCheckpoint.node_id == node_id)) or 0),
    }


def receive_audit(session: Session, node: SyncNode, *, events: Sequence[dict[str, Any]],
                  checkpoints: Sequence[dict[str, Any]], audit_key: str | None) -> dict[str, int]:
    """Keep a copy of the node's audit events and signed checkpoints (each once; verified by
    :func:`verify_new_events` and :func:`check_node_chains`, never refused for a bad link: a
    tampered chain is kept as it came and reported). The node's checkpoint key is the one it
    enrolled with (pinned at approval); a node enrolled before keys were bound pins the first
    one it sends. An upload carrying another key, or a checkpoint that key did not sign, is
    refused whole (:class:`protocol.AuditKeyRefused`, audited ``sync:audit:reject``)."""
    known = session.get(NodeAuditKey, node.node_id)
    if audit_key:
        offered = protocol.key_fingerprint(audit_key)
        if known is None:
            known = NodeAuditKey(node_id=node.node_id, public_key=audit_key,
                                 received_at=_now(), bound="first-sight")
            session.add(known)
            audit.record(session, SyncTag.AUDIT_KEY_PIN, actor=node_actor(node.node_id),
                         office_code=node.office_code, subject=node.node_id,
                         details={"audit_key": offered, "bound": "first-sight"})
        elif protocol.key_fingerprint(known.public_key) != offered:
            _refuse_audit(session, node, known, f"the upload carries audit key {offered[:16]}, "
                          "not the node's", offered=offered)
    if known is not None:
        for c in checkpoints:
            if not protocol.verify_signature(known.public_key, str(c.get("signature", "")),
                                             str(c.get("body", "")).encode()):
                _refuse_audit(session, node, known, f"checkpoint {c.get('number')} is not "
                              "signed by the node's audit key")
    try:
        # the events of the request held already, in one query (not one per event)
        wanted = [(str(e["chain"]), int(e["chain_seq"])) for e in events]
        held: set[tuple[str, int]] = {
            (chain, seq) for chain, seq in session.execute(
                select(NodeAuditEvent.chain, NodeAuditEvent.chain_seq).where(
                    NodeAuditEvent.node_id == node.node_id,
                    tuple_(NodeAuditEvent.chain, NodeAuditEvent.chain_seq).in_(wanted)))
        } if events else set()
        for e in events:
            if (str(e["chain"]), int(e["chain_seq"])) not in held:
                held.add((str(e["chain"]), int(e["chain_seq"])))
                session.add(NodeAuditEvent(
                    node_id=node.node_id, node_seq=int(e["seq"]), chain=str(e["chain"]),
                    chain_seq=int(e["chain_seq"]), at=datetime.fromisoformat(e["at"]),
                    tag=str(e["tag"]), actor=str(e["actor"]), office_code=e.get("office_code"),
                    subject=e.get("subject"), details=dict(e["details"]),
                    prev_hash=str(e["prev_hash"]), hash=str(e["hash"])))
        for c in checkpoints:
            number = int(c["number"])
            if session.scalar(select(NodeCheckpoint.id).where(
                    NodeCheckpoint.node_id == node.node_id,
                    NodeCheckpoint.number == number)) is None:
                session.add(NodeCheckpoint(node_id=node.node_id, number=number,
                                           body=str(c["body"]), signature=str(c["signature"]),
                                           received_at=_now()))
                session.flush()
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncError(f"malformed audit event: {exc}") from exc
    return audit_cursor(session, node.node_id)


def _refuse_audit(session: Session, node: SyncNode, known: NodeAuditKey, why: str, *,
                  offered: str | None = None) -> None:
    """Audit the refusal (the API commits it although the answer is an error) and raise."""
    audit.record(session, SyncTag.AUDIT_REJECT, actor=node_actor(node.node_id),
                 office_code=node.office_code, subject=node.node_id,
                 details={"why": why, "bound": known.bound, "offered": offered,
                          "audit_key": protocol.key_fingerprint(known.public_key)})
    raise protocol.AuditKeyRefused(
        f"node {node.node_id}: audit upload refused: {why} (its key was bound at "
        f"{known.bound}; a node with a new checkpoint key enrols afresh)")


@dataclass(frozen=True)
class ChainReport:
    """Whether a node's audit chains, as this server holds them, verify."""

    node_id: str
    events: int  # events read by this check
    checkpoints: int  # checkpoints read by this check
    problems: list[str]
    #: chain → the sequence number it is verified through (after this check)
    through: dict[str, int] = field(default_factory=dict)
    checkpoint_through: int = 0  # the highest checkpoint verified

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def verified_events(self) -> int:
        """How many events are verified (chains are numbered from 1 without a gap)."""
        return sum(self.through.values())


def verify_node_chains(session: Session, node_id: str) -> ChainReport:
    """Hold the node's copy to its hash links (each event's hash recomputed, each chain
    numbered from 1 without a gap, linked to the one before) and to every checkpoint of the
    node (signature by the node's audit key; each head it names present with that hash)."""
    problems: list[str] = []
    heads: dict[str, dict[int, str]] = {}
    previous: dict[str, tuple[int, str]] = {}
    count = 0
    for e in session.scalars(select(NodeAuditEvent).where(NodeAuditEvent.node_id == node_id)
                             .order_by(NodeAuditEvent.chain, NodeAuditEvent.chain_seq)):
        count += 1
        problems.extend(_event_problems(e, *previous.get(e.chain, (0, audit.GENESIS_HASH))))
        previous[e.chain] = (e.chain_seq, e.hash)
        heads.setdefault(e.chain, {})[e.chain_seq] = e.hash
    key = session.get(NodeAuditKey, node_id)
    marks = session.scalars(select(NodeCheckpoint).where(NodeCheckpoint.node_id == node_id)
                            .order_by(NodeCheckpoint.number)).all()
    for mark in marks:
        problems += _checkpoint_problems(
            mark, key, lambda chain, seq: heads.get(chain, {}).get(seq))
    return ChainReport(node_id, count, len(marks), problems,
                       {chain: seq for chain, (seq, _) in previous.items()},
                       marks[-1].number if marks else 0)


def _event_problems(e: NodeAuditEvent, seq: int, prev: str) -> list[str]:
    """What is wrong with event ``e`` of a chain verified through ``seq`` (hash ``prev``)."""
    problems = []
    if e.chain_seq != seq + 1:
        problems.append(f"chain {e.chain}: event {e.chain_seq} follows {seq}")
    if e.prev_hash != prev:
        problems.append(f"chain {e.chain}: event {e.chain_seq} does not link to the one before")
    at = e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)
    if audit.event_hash(e.chain, e.chain_seq, at, e.tag, e.actor, e.office_code, e.subject,
                        e.details, e.prev_hash) != e.hash:
        problems.append(f"chain {e.chain}: event {e.chain_seq} does not match its hash")
    return problems


def verify_new_events(session: Session, node_id: str) -> ChainReport:
    """Verify only what arrived since the last check: each chain's events after its mark
    (:class:`NodeChainMark`: the seq and hash of the last event verified, which the first new
    one must link to) and the checkpoints after the last verified (each head it names looked up
    by its key). Marks move over what verifies; a problem is kept on the node
    (``audit_problem``) until a full check (:func:`check_node_chains`) passes. An event already
    verified is not read again: rewriting one is caught by the full check, not here."""
    node = get_node(session, node_id, lock=True)
    marks = {m.chain: m for m in session.scalars(
        select(NodeChainMark).where(NodeChainMark.node_id == node_id))}
    problems: list[str] = []
    broken: set[str] = set()
    count = 0
    rows = session.scalars(
        select(NodeAuditEvent)
        .outerjoin(NodeChainMark, (NodeChainMark.node_id == NodeAuditEvent.node_id)
                   & (NodeChainMark.chain == NodeAuditEvent.chain))
        .where(NodeAuditEvent.node_id == node_id,
               NodeChainMark.seq.is_(None) | (NodeAuditEvent.chain_seq > NodeChainMark.seq))
        .order_by(NodeAuditEvent.chain, NodeAuditEvent.chain_seq)
        .execution_options(yield_per=2000))
    now = _now()
    for e in rows:
        count += 1
        if e.chain in broken:
            continue
        mark = marks.get(e.chain)
        found = _event_problems(e, mark.seq if mark else 0,
                                mark.hash if mark else audit.GENESIS_HASH)
        if found:
            problems.extend(found)
            broken.add(e.chain)
            continue
        if mark is None:
            mark = marks[e.chain] = NodeChainMark(node_id=node_id, chain=e.chain, seq=0, hash="")
            session.add(mark)
        mark.seq, mark.hash, mark.verified_at = e.chain_seq, e.hash, now
    key = session.get(NodeAuditKey, node_id)
    checked = 0
    for cp in session.scalars(select(NodeCheckpoint).where(
            NodeCheckpoint.node_id == node_id,
            NodeCheckpoint.number > node.audit_checkpoint_verified)
            .order_by(NodeCheckpoint.number)):
        checked += 1
        found = _checkpoint_problems(cp, key, lambda chain, seq: session.scalar(
            select(NodeAuditEvent.hash).where(
                NodeAuditEvent.node_id == node_id, NodeAuditEvent.chain == chain,
                NodeAuditEvent.chain_seq == seq)))
        if found:
            problems.extend(found)
            break
        node.audit_checkpoint_verified = cp.number
    if problems and node.audit_problem is None:
        node.audit_problem = problems[0][:500]
    if node.audit_problem is not None and not problems:
        problems = [f"earlier: {node.audit_problem}"]
    session.flush()
    return ChainReport(node_id, count, checked, problems,
                       {chain: m.seq for chain, m in marks.items()},
                       node.audit_checkpoint_verified)


def _checkpoint_problems(mark: NodeCheckpoint, key: NodeAuditKey | None,
                         hash_of: Callable[[str, int], str | None]) -> list[str]:
    """What is wrong with one node checkpoint: its signature by the node's key, and each
    chain head it names against the held event's hash (``hash_of(chain, seq)``)."""
    if key is None or not protocol.verify_signature(key.public_key, mark.signature,
                                                    mark.body.encode()):
        return [f"checkpoint {mark.number}: signature does not verify"]
    problems = []
    for chain, head in json.loads(mark.body).get("heads", {}).items():
        if int(head["seq"]) == 0:
            continue
        got = hash_of(chain, int(head["seq"]))
        if got is None:
            problems.append(f"checkpoint {mark.number}: chain {chain} has no event "
                            f"{head['seq']}")
        elif got != head["hash"]:
            problems.append(f"checkpoint {mark.number}: chain {chain} event {head['seq']} "
                            "is not the one signed")
    return problems


def check_node_chains(session: Session, node_id: str) -> ChainReport:
    """The full check (``run.py nodes verify``): every event and checkpoint of the node read
    again (:func:`verify_node_chains`). Its verdict is kept: a problem shows in the listing
    from now on; when it passes, the marks move to every chain's head and the problem kept
    from an earlier check is cleared."""
    node = get_node(session, node_id, lock=True)
    report = verify_node_chains(session, node_id)
    if report.problems:
        node.audit_problem = report.problems[0][:500]
        return report
    node.audit_problem = None
    node.audit_checkpoint_verified = report.checkpoint_through
    heads = dict(session.execute(
        select(NodeAuditEvent.chain, func.max(NodeAuditEvent.chain_seq))
        .where(NodeAuditEvent.node_id == node_id).group_by(NodeAuditEvent.chain)).all())
    now = _now()
    for chain, seq in heads.items():
        last = session.scalar(select(NodeAuditEvent.hash).where(
            NodeAuditEvent.node_id == node_id, NodeAuditEvent.chain == chain,
            NodeAuditEvent.chain_seq == seq))
        session.merge(NodeChainMark(node_id=node_id, chain=chain, seq=int(seq),
                                    hash=str(last), verified_at=now))
    session.flush()
    return report


# ----------------------------------------------------------------------------------- stock


def transfer_to_node(session: Session, node_id: str, *, from_office: str, handover_number: str,
                     actor: str, serials: Sequence[str] = (),
                     ribbons: Sequence[tuple[ConsumableKind, str]] = (), giver: str = "",
                     receiver: str = "", note: str | None = None) -> DownItem:
    """Hand the in-stock blanks ``serials`` and rolls ``ribbons`` of ``from_office`` to the
    node's office under the BAST ``handover_number``: in transit here until the node accepts
    them, and a ``bast`` down item for the node."""
    node = get_node(session, node_id, lock=True)
    if node.state is not NodeState.ACTIVE:
        raise StateError(f"node {node_id} is {node.state}, not active")
    if not serials and not ribbons:
        raise StateError("a handover needs blanks or ribbons")
    if len(handover_number) > 64:
        raise StateError("a handover number to a node has at most 64 characters")
    if session.scalar(select(DownItem.id).where(DownItem.kind == "bast",
                                                DownItem.request_id == handover_number)):
        raise StateError(f"handover {handover_number} was already sent to a node")
    if serials:
        ledger.transfer_blanks(session, from_office_code=from_office,
                               to_office_code=node.office_code, serials=serials,
                               handover_number=handover_number, actor=actor, note=note,
                               giver=giver, receiver=receiver, in_transit=True)
    for kind, serial in ribbons:
        transfer_consumable(session, kind=kind, serial=serial, to_office_code=node.office_code,
                            reference=handover_number, actor=actor, in_transit=True)
    node.down_seq += 1
    item = DownItem(node_id=node.node_id, seq=node.down_seq, kind="bast",
                    request_id=handover_number, created_at=_now())
    session.add(item)
    audit.record(session, SyncTag.STOCK_TRANSFER, actor=actor, office_code=node.office_code,
                 subject=handover_number,
                 details={"node": node.node_id, "blanks": len(serials), "ribbons": len(ribbons)})
    session.flush()
    return item


def bast_payload(session: Session, node: SyncNode, number: str) -> dict[str, Any]:
    """A handover to a node as the node receives it: the blanks with their stock types and
    cartons, the rolls with their types and capacities."""
    handover = session.scalar(select(HandoverRecord).where(HandoverRecord.number == number))
    rows = [] if handover is None else session.execute(
        select(Blank.serial, Blank.stock_type, Blank.carton)
        .join(BlankMovement, BlankMovement.blank_id == Blank.id)
        .where(BlankMovement.handover_id == handover.id,
               BlankMovement.kind == MovementKind.TRANSFER)
        .order_by(Blank.prefix, Blank.number)).all()
    office = session.scalar(select(Office.id).where(Office.code == node.office_code))
    rolls = session.scalars(select(Consumable).where(
        Consumable.reference == number, Consumable.office_id == office)
        .order_by(Consumable.kind, Consumable.serial)).all()
    return {
        "number": number,
        "from": office_code(session, handover.from_office_id)
        if handover is not None and handover.from_office_id else "",
        "giver": handover.giver if handover is not None else "",
        "receiver": handover.receiver if handover is not None else "",
        "note": handover.note if handover is not None else None,
        "blanks": [{"serial": serial, "stock_type": stock, "carton": carton}
                   for serial, stock, carton in rows],
        "ribbons": [{"kind": r.kind.value, "serial": r.serial, "type": r.type,
                     "set_panels": r.set_panels,
                     "capacity": r.capacity_panels // max(r.set_panels, 1)} for r in rolls],
    }


def _mirror_station(session: Session, node: SyncNode, name: str) -> int:
    """This server's stand-in for a node station (its blanks' place in the server's copy)."""
    return _mirror_station_row(session, node, name).id


def _mirror_station_row(session: Session, node: SyncNode, name: str) -> Station:
    return ledger.get_or_create_station(
        session, f"{node.node_id}/{name}"[:64], office_code=node.office_code, cups_queue="",
        reader="", profile="node", actor=node_actor(node.node_id))


def _apply_blank_movement(session: Session, node: SyncNode, payload: dict[str, Any]) -> None:
    """Move the server's copy of a node blank as the node moved it (its acceptance of a BAST,
    a receipt of its own, loads, issues, spoils with their causes...)."""
    serial, kind = str(payload.get("serial")), MovementKind(str(payload.get("kind")))
    to_state = BlankState(str(payload.get("to")))
    actor = node_actor(node.node_id)
    blank = session.scalar(select(Blank).where(Blank.serial == serial).with_for_update())
    if kind is MovementKind.RECEIVE:
        if blank is None:
            _mirror_receipt(session, node, payload)
        return  # else: the blanks of a BAST this server sent
    if blank is None:
        raise LedgerError(f"node {node.node_id} moved blank {serial} this server never had",
                          serial=serial)
    if kind is MovementKind.ACCEPT:
        ledger.accept_blanks(session, [serial], actor=actor, reference=payload.get("reference"))
        return
    station = payload.get("station")
    station_id = _mirror_station(session, node, str(station)) if station else None
    record_id = None
    if payload.get("request_id"):
        record_id = session.scalar(select(Record.id).where(
            Record.request_id == str(payload["request_id"])))
    cause = SpoilCause(str(payload["cause"])) if payload.get("cause") else None
    if to_state not in ledger.AT_STATION and kind not in (
            MovementKind.ISSUE, MovementKind.SPOIL, MovementKind.UNLOAD):
        station_id = None
    ledger.move(session, blank, kind, to_state, actor=actor, station_id=station_id,
                record_id=record_id, cause=cause, reference=payload.get("reference"),
                note=payload.get("note"))


def _mirror_receipt(session: Session, node: SyncNode, payload: dict[str, Any]) -> None:
    """A blank the node received from elsewhere (not from this server): received here too, at
    the node's office, under the node's handover number marked with the node."""
    ledger.receive_listed(
        session, office_code=node.office_code,
        handover_number=f"{payload.get('reference') or 'receipt'} @{node.node_id}"[:80],
        blanks=[(str(payload["serial"]), str(payload.get("stock_type") or DEFAULT_STOCK_TYPE),
                 None)],
        actor=node_actor(node.node_id), from_party=f"node {node.node_id}")


def _apply_ribbon_movement(session: Session, node: SyncNode, payload: dict[str, Any]) -> None:
    """Move the server's copy of a node's rolls as the node moved them: its acceptance of a
    roll handed to it, a roll it received from elsewhere, loads and finishes at the mirror
    station of each node station, transfers, and the panels each card spent (a usage row at
    the mirror station, with the server's record of the same request id), so the kabupaten's
    ribbon reconciliation includes the node's consumption."""
    action, actor = str(payload.get("action")), node_actor(node.node_id)
    if action == str(LedgerTag.RIBBON_USAGE):
        station = _mirror_station_row(session, node, str(payload.get("station")))
        record_id = None
        if payload.get("request_id"):
            record_id = session.scalar(select(Record.id).where(
                Record.request_id == str(payload["request_id"])))
        level = payload.get("printer_level")
        record_ribbon_usage(session, station, record_id=record_id,
                            blank_serial=str(payload.get("item"))[:32],
                            panels=int(payload.get("panels") or 0),
                            film_panels=int(payload.get("film_panels") or 0),
                            printer_level=int(level) if level is not None else None, actor=actor)
        return
    text, _, serial = str(payload.get("item")).partition(":")
    kind = ConsumableKind(text)
    roll = session.scalar(select(Consumable).where(Consumable.kind == kind,
                                                   Consumable.serial == serial))
    if action == str(LedgerTag.RIBBON_RECEIVE):
        if roll is None:  # else: a roll of a BAST this server sent (in transit here)
            per_set = max(int(payload.get("set_panels") or 1), 1)
            receive_consumable(
                session, kind=kind, office_code=node.office_code, serial=serial,
                type_=str(payload.get("type") or "YMCKO"),
                capacity=max(int(payload.get("capacity_panels") or per_set) // per_set, 1),
                set_panels=per_set, actor=actor,
                reference=f"{payload.get('reference') or 'receipt'} @{node.node_id}"[:120])
        return
    if roll is None:
        raise LedgerError(f"node {node.node_id} moved {kind.value} {serial} this server never "
                          "had", serial=serial)
    if action == str(LedgerTag.RIBBON_ACCEPT):
        if roll.state is ConsumableState.IN_TRANSIT:
            accept_consumable(session, kind=kind, serial=serial, actor=actor)
    elif action == str(LedgerTag.RIBBON_LOAD):
        station = _mirror_station_row(session, node, str(payload.get("station")))
        if roll.state is ConsumableState.IN_TRANSIT:  # loaded there before its acceptance
            accept_consumable(session, kind=kind, serial=serial, actor=actor)
        load_consumable(session, station, kind=kind, serial=serial, actor=actor)
    elif action == str(LedgerTag.RIBBON_FINISH):
        level = payload.get("printer_level")
        finish_consumable(session, roll, actor=actor,
                          printer_level=int(level) if level is not None else None)
    elif action == str(LedgerTag.RIBBON_TRANSFER):
        transfer_consumable(session, kind=kind, serial=serial,
                            to_office_code=str(payload.get("to")),
                            reference=str(payload.get("reference") or f"@{node.node_id}"),
                            actor=actor)


def node_stock(session: Session, node_id: str) -> dict[str, int]:
    """The blanks at a node's office by state, in this server's copy."""
    node = get_node(session, node_id)
    office = session.scalar(select(Office.id).where(Office.code == node.office_code))
    return {state.value: n for state, n in session.execute(
        select(Blank.state, func.count()).where(Blank.office_id == office)
        .group_by(Blank.state))}


# ----------------------------------------------------------------------------------- up


@dataclass(frozen=True)
class NodeEvent:
    """One event a node ships: its outbox event and its node sequence number."""

    seq: int
    event_id: str
    topic: str
    subject: str | None
    payload: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeEvent:
        try:
            return cls(int(data["seq"]), str(data["event_id"]), str(data["topic"]),
                       data.get("subject"), dict(data["payload"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SyncError(f"malformed event: {exc}") from exc


def push(session: Session, node: SyncNode, events: Sequence[NodeEvent]) -> int:
    """Apply ``events`` (ascending node sequence numbers) once each; returns the sequence
    number of the last event of the chunk, which is now applied (the node moves its cursor up
    to it). Whether an event was applied before is decided by its id alone (a node whose
    numbering restarted loses nothing); ``up_applied`` keeps the highest number seen."""
    last = 0
    # the ids applied before, in one query for the chunk (not one per event)
    seen = set(session.scalars(select(AppliedEvent.event_id).where(
        AppliedEvent.event_id.in_([e.event_id for e in events])))) if events else set()
    for event in events:
        if event.seq <= last:
            raise SyncError(f"events out of order at {event.seq}")
        last = event.seq
        if event.event_id not in seen:
            seen.add(event.event_id)  # the chunk may repeat an id
            _apply(session, node, event)
            session.add(AppliedEvent(event_id=event.event_id, node_id=node.node_id,
                                     seq=event.seq, topic=event.topic, subject=event.subject,
                                     payload=event.payload, applied_at=_now()))
        node.up_applied = max(node.up_applied, event.seq)
    session.flush()
    return last


def _apply(session: Session, node: SyncNode, event: NodeEvent) -> None:
    if event.topic == str(outbox.Topic.RECORD_STATE):
        _apply_record_state(session, node, event.payload)
    elif event.topic == RECALL_ANSWER:
        _apply_recall_answer(session, node, event.payload)
    elif event.topic in (str(outbox.Topic.BLANK_MOVEMENT), str(outbox.Topic.RIBBON_MOVEMENT)):
        blank = event.topic == str(outbox.Topic.BLANK_MOVEMENT)
        try:
            with session.begin_nested():
                if blank:
                    _apply_blank_movement(session, node, event.payload)
                else:
                    _apply_ribbon_movement(session, node, event.payload)
        except (LedgerError, ValueError, TypeError) as exc:
            # the server's copy disagrees with the node's ledger: said, never a stuck sync
            subject = event.payload.get("serial") if blank else event.payload.get("item")
            audit.record(session, SyncTag.LEDGER_MISMATCH if blank else SyncTag.RIBBON_MISMATCH,
                         actor=node_actor(node.node_id), office_code=node.office_code,
                         subject=str(subject)[:120],
                         details={"node": node.node_id, "event": event.event_id,
                                  "error": str(exc)[:300]})
    elif event.topic == str(outbox.Topic.MEDIA_SHRED):
        _apply_shred(session, node, event)
    # every event is also kept as an applied event (the node's ledger as the node wrote it,
    # :func:`node_ledger`); reprint.decision only so.


def _apply_shred(session: Session, node: SyncNode, event: NodeEvent) -> None:
    """Keep a node's confirmation that it crypto-shredded a record's biometrics (what was
    destroyed and when by its clock; never the data)."""
    p = event.payload
    try:
        at = datetime.fromisoformat(str(p["at"])) if p.get("at") else None
    except ValueError:
        at = None
    shred = NodeShred(
        event_id=event.event_id, node_id=node.node_id,
        request_id=str(p.get("request_id") or event.subject)[:64],
        reason=str(p["reason"])[:200] if p.get("reason") else None, shredded_at=at,
        destroyed={"data_key": bool(p.get("data_key")),
                   "media": [str(m) for m in p.get("media") or []]},
        received_at=_now())
    session.add(shred)
    # in the server's audit log too, where its auditor reads (one event per confirmation)
    audit.record(session, SyncTag.MEDIA_SHRED, actor=node_actor(node.node_id),
                 office_code=node.office_code, subject=shred.request_id,
                 details={"node": node.node_id, "reason": shred.reason,
                          "at": at.isoformat() if at else None, **shred.destroyed})


def shred_confirmations(session: Session, *, node_id: str | None = None,
                        request_id: str | None = None) -> list[NodeShred]:
    """The crypto-shred confirmations nodes sent, in the order they arrived."""
    stmt = select(NodeShred).order_by(NodeShred.id)
    if node_id:
        stmt = stmt.where(NodeShred.node_id == node_id)
    if request_id:
        stmt = stmt.where(NodeShred.request_id == request_id)
    return list(session.scalars(stmt))


def _apply_record_state(session: Session, node: SyncNode, payload: dict[str, Any]) -> None:
    request_id = str(payload.get("request_id"))
    old, new = payload.get("from"), payload.get("to")
    if old is None or payload.get("reason") == "recalled" or new == "printing":
        return  # its arrival at the node, its release after a recall, a claim
    record = session.scalar(
        select(Record).where(Record.request_id == request_id).with_for_update()
    )
    if record is None or record.owner_node != node.node_id:
        return  # not this node's (a record it created itself is not synced up yet)
    try:
        state = RecordState(str(new))
    except ValueError as exc:
        raise SyncError(f"record {request_id}: unknown state {new!r}") from exc
    if state is record.state:
        return
    previous = record.state
    record.state = state
    record.updated_at = _now()
    if state is RecordState.ISSUED and record.issued_at is None:
        record.issued_at = _now()
    if state is RecordState.HELD:
        record.hold_reason = payload.get("reason")
    reason = f"node {node.node_id}: {payload.get('reason') or ''}".strip()
    audit_state_change(session, record.office_id, request_id,
                       state_change_details(previous, state, reason),
                       actor=node_actor(node.node_id))
    code = office_code(session, record.office_id)
    outbox.publish(session, outbox.Topic.RECORD_STATE, office_code=code, subject=request_id,
                   payload=outbox.record_state_payload(request_id, code, previous, state, reason))
    if state in (RecordState.ISSUED, RecordState.CANCELLED) and record.media_purged_at is None:
        # the server's own copy of the biometrics: never printed here (a reprint is the
        # node's decision, from the node's copy), so shredded now
        purge_media(session, record, actor=node_actor(node.node_id),
                    reason=f"{state.value} at node {node.node_id}")
    if state is RecordState.CANCELLED:
        record.owner_node = None


def _apply_recall_answer(session: Session, node: SyncNode, payload: dict[str, Any]) -> None:
    request_id = str(payload.get("request_id"))
    asked = session.scalar(select(Recall).where(
        Recall.request_id == request_id, Recall.node_id == node.node_id,
        Recall.state == RecallState.ASKED).with_for_update())
    if asked is None:
        return
    asked.answered_at = _now()
    if payload.get("released"):
        asked.state = RecallState.RELEASED
        session.execute(update(Record).where(
            Record.request_id == request_id, Record.owner_node == node.node_id
        ).values(owner_node=None, state=RecordState.QUEUED, updated_at=_now())
         .execution_options(synchronize_session=False))
        audit.record(session, SyncTag.RECORD_RELEASE, actor=node_actor(node.node_id),
                     office_code=node.office_code, subject=request_id,
                     details={"node": node.node_id})
    else:
        asked.state = RecallState.REFUSED
        asked.fate = str(payload.get("fate") or "")[:16]


# ----------------------------------------------------------------------------------- stations


def receive_stations(session: Session, node: SyncNode,
                     stations: Sequence[dict[str, Any]]) -> int:
    """Keep the status a node reports of its stations (sent with each sync: the latest wins,
    the node's exchanges take turns). The last heartbeat is put on this server's clock from
    the age the node measured on its own, so a node clock hours off does not move it."""
    now = _now()
    kept = 0
    try:
        for data in stations:
            name = str(data["name"])[:64]
            age = data.get("heartbeat_age_s")
            row = session.get(NodeStation, (node.node_id, name))
            if row is None:
                row = NodeStation(node_id=node.node_id, name=name)
                session.add(row)
            row.state = str(data.get("state") or "")[:16]
            row.pause_reason = data.get("pause_reason")
            row.heartbeat_at = (now - timedelta(seconds=max(float(age), 0.0))
                                if age is not None else None)
            row.printer_state = str(data.get("printer_state") or "")[:32]
            row.reader = str(data.get("reader") or "")[:200]
            row.ribbon = str(data.get("ribbon") or "")[:64]
            remaining = data.get("ribbon_remaining")
            row.ribbon_remaining = int(remaining) if remaining is not None else None
            row.cards_issued = int(data.get("cards_issued") or 0)
            row.cards_spoiled = int(data.get("cards_spoiled") or 0)
            row.details = {k: data[k] for k in ("printer_reasons", "accepting", "markers",
                                                 "blanks_in_hopper", "current_job", "profile")
                           if k in data}
            row.reported_at = now
            kept += 1
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncError(f"malformed station status: {exc}") from exc
    session.flush()
    return kept


@dataclass(frozen=True)
class StationReport:
    """A node station as its node last reported it."""

    name: str
    state: str
    pause_reason: str | None
    heartbeat_at: datetime | None  # this server's clock
    printer_state: str
    ribbon: str
    ribbon_remaining: int | None
    cards_issued: int
    cards_spoiled: int
    reported_at: datetime
    details: dict[str, Any]


def node_stations(session: Session) -> dict[str, list[StationReport]]:
    """Each node's stations as last reported, by node id."""
    out: dict[str, list[StationReport]] = {}
    for r in session.scalars(select(NodeStation).order_by(NodeStation.node_id,
                                                          NodeStation.name)):
        out.setdefault(r.node_id, []).append(StationReport(
            r.name, r.state, r.pause_reason, _aware(r.heartbeat_at), r.printer_state,
            r.ribbon, r.ribbon_remaining, r.cards_issued, r.cards_spoiled,
            _aware(r.reported_at) or _now(), dict(r.details or {})))
    return out


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


# ----------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class NodeStatus:
    node_id: str
    office_code: str
    state: str
    last_contact_at: datetime | None
    down_pending: int  # items handed down the node has not confirmed
    up_applied: int
    records_held: int
    blanks_held: int = 0  # blanks of the node's office in stock, hopper or reserved
    blanks_in_transit: int = 0  # handed to it, not yet accepted
    chain_ok: bool | None = None  # its audit chains verify here (None: none received yet)
    chain_verified: int = 0  # events verified, in all its chains
    chain_checked: int = 0  # of which read by this listing (the new ones)
    checkpoint_verified: int = 0  # its highest checkpoint verified
    shreds_confirmed: int = 0  # crypto-shred confirmations received from it
    stations: tuple[StationReport, ...] = ()  # as it last reported them


def status(session: Session) -> list[NodeStatus]:
    """Every node with its last contact, what waits for it, and how many records it holds;
    its audit chains verified as far as they reached (only the events new since the last
    listing are read: :func:`verify_new_events`). Writes the verification marks."""
    held = dict(session.execute(
        select(Record.owner_node, func.count()).where(
            Record.owner_node.is_not(None),
            Record.state.in_([RecordState.QUEUED, RecordState.PRINTING, RecordState.HELD,
                              RecordState.FAILED]))
        .group_by(Record.owner_node)).all())
    stock: dict[tuple[str, BlankState], int] = {
        (code, state): n for code, state, n in session.execute(
            select(Office.code, Blank.state, func.count())
            .join(Blank, Blank.office_id == Office.id)
            .where(Office.code.in_(select(SyncNode.office_code)))
            .group_by(Office.code, Blank.state))}
    shreds = dict(session.execute(select(NodeShred.node_id, func.count())
                                  .group_by(NodeShred.node_id)).all())
    stations = node_stations(session)
    listing = []
    for node_id in session.scalars(select(SyncNode.node_id).order_by(SyncNode.node_id)).all():
        report = verify_new_events(session, node_id)
        n = get_node(session, node_id)
        listing.append(NodeStatus(
            n.node_id, n.office_code, n.state.value, n.last_contact_at,
            n.down_seq - n.down_acked, n.up_applied, int(held.get(n.node_id, 0)),
            sum(stock.get((n.office_code, s), 0) for s in ledger.HELD),
            stock.get((n.office_code, BlankState.IN_TRANSIT), 0),
            None if not report.through and not report.problems
            and report.checkpoint_through == 0 else report.ok,
            report.verified_events, report.events, report.checkpoint_through,
            int(shreds.get(n.node_id, 0)), tuple(stations.get(n.node_id, ()))))
    return listing


def node_ledger(session: Session, node_id: str) -> list[dict[str, Any]]:
    """The blank movements a node reported, in its order (what its ledger says)."""
    return [e.payload for e in session.scalars(
        select(AppliedEvent).where(AppliedEvent.node_id == node_id,
                                   AppliedEvent.topic == str(outbox.Topic.BLANK_MOVEMENT))
        .order_by(AppliedEvent.seq))]
