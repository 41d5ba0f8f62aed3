"""Tables of the kecamatan sync: on the server the node registry, what was handed down to each
node and which node events were applied; on a node its own identity and cursors."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.models import Base, _enum, utcnow


class NodeState(enum.StrEnum):
    """A node's standing at the server."""

    PENDING = "pending"  # enrolled, waiting for an admin to confirm the pairing code
    ACTIVE = "active"
    REVOKED = "revoked"


class SyncNode(Base):
    """A kecamatan node known to this (kabupaten) server."""

    __tablename__ = "sync_node"
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    office_code: Mapped[str] = mapped_column(String(8), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    public_key: Mapped[str] = mapped_column(Text)  # PEM SubjectPublicKeyInfo, P-256
    state: Mapped[NodeState] = mapped_column(_enum(NodeState, "node_state"))
    pairing_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the one-time code
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    last_contact_at: Mapped[datetime | None]
    #: the highest request counter seen (a request must carry a higher one: no replay)
    request_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    #: server → node: the last sequence number handed down, and the last the node confirmed
    down_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    down_acked: Mapped[int] = mapped_column(BigInteger, default=0)
    #: node → server: the highest node sequence number applied
    up_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the audit checkpoint key (PEM) the node sent with its enrolment; pinned at approval
    audit_key: Mapped[str | None] = mapped_column(Text)
    #: the highest of its checkpoints verified here, and the first problem any check found in
    #: its audit chains (kept until a full check passes: ``run.py nodes verify``)
    audit_checkpoint_verified: Mapped[int] = mapped_column(BigInteger, default=0,
                                                           server_default="0")
    audit_problem: Mapped[str | None] = mapped_column(Text)


class DownItem(Base):
    """One message for a node, numbered per node (a record handed down, a recall)."""

    __tablename__ = "sync_down_item"
    __table_args__ = (UniqueConstraint("node_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # "record" | "recall"
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppliedEvent(Base):
    """A node event applied at the server: its stable id, once."""

    __tablename__ = "sync_applied_event"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]]
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_sync_applied_event_node_seq", AppliedEvent.node_id, AppliedEvent.seq)


class RecallState(enum.StrEnum):
    ASKED = "asked"
    RELEASED = "released"
    REFUSED = "refused"  # the node had already printed it (or spoiled it for good)


class Recall(Base):
    """The server asked a node to give back a record it owns."""

    __tablename__ = "sync_recall"
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[RecallState] = mapped_column(_enum(RecallState, "recall_state"))
    fate: Mapped[str | None] = mapped_column(String(16))  # the node's state when it refused
    asked_by: Mapped[str] = mapped_column(String(64))
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]


class NodeIdentity(Base):
    """On a node: who it is at its server, and its cursors (one row)."""

    __tablename__ = "sync_identity"
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    server_url: Mapped[str] = mapped_column(String(400))
    office_code: Mapped[str] = mapped_column(String(8))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    request_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the highest down sequence number applied here
    down_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    last_contact_at: Mapped[datetime | None]
    #: when the link was first found down since the last good contact (None: online)
    offline_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class FateDecision(enum.StrEnum):
    """A supervisor's decision on an unknown fate (a node whose disk died)."""

    RECOVERED = "recovered"  # found: the card issued at the office / the blank unused
    SPOILED = "spoiled"  # found damaged
    LOST = "lost"  # not found


class UnknownFate(Base):
    """A record or blank a lost node held whose fate never reached the server, until a
    supervisor settles it (who, when, why)."""

    __tablename__ = "sync_unknown_fate"
    __table_args__ = (UniqueConstraint("node_id", "kind", "subject"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "record" | "blank"
    subject: Mapped[str] = mapped_column(String(64))  # request id or blank serial
    office_code: Mapped[str] = mapped_column(String(8))
    #: the last state the server knew (record state; blank state as the node last reported)
    last_known: Mapped[str] = mapped_column(String(20))
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)
    reported_by: Mapped[str] = mapped_column(String(64))
    decision: Mapped[FateDecision | None] = mapped_column(_enum(FateDecision, "fate_decision"))
    settled_at: Mapped[datetime | None]
    settled_by: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
class NodeAuditEvent(Base):
    """A copy of one event of a node's audit log, as the node sent it (verified by
    :func:`printsrv.sync.server.verify_node_chains`: hash links and the node's checkpoints)."""

    __tablename__ = "sync_node_audit_event"
    __table_args__ = (UniqueConstraint("node_id", "chain", "chain_seq"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(64))
    node_seq: Mapped[int] = mapped_column(BigInteger)  # its number in the node's log
    chain: Mapped[str] = mapped_column(String(64))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    tag: Mapped[str] = mapped_column(String(80))
    actor: Mapped[str] = mapped_column(String(64))
    office_code: Mapped[str | None] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(String(120))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


Index("ix_sync_node_audit_event_node_seq", NodeAuditEvent.node_id, NodeAuditEvent.node_seq)


class NodeCheckpoint(Base):
    """A copy of one of a node's signed audit checkpoints, with the key it was signed by."""

    __tablename__ = "sync_node_checkpoint"
    __table_args__ = (UniqueConstraint("node_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeAuditKey(Base):
    """A node's audit checkpoint key (PEM): bound at enrolment (sent with the pairing, pinned
    when the admin approved), or, for a node enrolled before that, taken on first sight over
    its signed channel. Uploads carrying or signed by another key are refused."""

    __tablename__ = "sync_node_audit_key"
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: "enrolment" or "first-sight"
    bound: Mapped[str] = mapped_column(String(16), default="first-sight",
                                       server_default="first-sight")


class NodeChainMark(Base):
    """How far one of a node's audit chains is verified at the server: the sequence number and
    hash of the last event verified (the listing checks only the events after it)."""

    __tablename__ = "sync_node_chain_mark"
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeShred(Base):
    """A node's confirmation that it crypto-shredded a record's biometrics (its wrapped data
    key and encrypted media deleted): what was destroyed, never the data. Kept once per node
    event id, for an auditor at the server."""

    __tablename__ = "sync_node_shred"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    #: when the node shredded it, by the node's clock (it may be off: ordering never uses it)
    shredded_at: Mapped[datetime | None]
    #: what was destroyed: {"data_key": bool, "media": [kinds]}
    destroyed: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeStation(Base):
    """The last status a node reported of one of its print stations (sent with each sync).
    ``heartbeat_at`` is on this server's clock: the node sends the heartbeat's age."""

    __tablename__ = "sync_node_station"
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    pause_reason: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]
    printer_state: Mapped[str] = mapped_column(String(32), default="")
    reader: Mapped[str] = mapped_column(String(200), default="")
    ribbon: Mapped[str] = mapped_column(String(64), default="")
    ribbon_remaining: Mapped[int | None]
    cards_issued: Mapped[int] = mapped_column(default=0)
    cards_spoiled: Mapped[int] = mapped_column(default=0)
    #: the rest as the node sent it (printer reasons and levels, hopper, current job)
    details: Mapped[dict[str, Any]]
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)
