"""The data model (SQLAlchemy 2, typed). Later modules add tables to the same ``Base``."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}  # noqa: RUF012


class OfficeKind(enum.StrEnum):
    REGENCY = "regency"
    KECAMATAN = "kecamatan"


class Role(enum.StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    AUDITOR = "auditor"


class RecordState(enum.StrEnum):
    """Life of an approved record; see :data:`printsrv.records.TRANSITIONS`."""

    QUEUED = "queued"
    HELD = "held"
    PRINTING = "printing"
    ISSUED = "issued"
    AT_DESK = "at_desk"  # the printed card is at the office's pickup desk
    COLLECTED = "collected"  # handed over to its owner or their representative
    FAILED = "failed"
    CANCELLED = "cancelled"


class MediaKind(enum.StrEnum):
    PHOTO = "photo"
    SIGNATURE = "signature"
    FINGER_RIGHT_INDEX = "finger_right_index"
    FINGER_LEFT_INDEX = "finger_left_index"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls, name=name, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
    )


class Office(Base):
    """A Dukcapil regency/city office (``PP.KK``) or a kecamatan office (``PP.KK.CC``)."""

    __tablename__ = "office"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[OfficeKind] = mapped_column(_enum(OfficeKind, "office_kind"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("office.id"))
    parent: Mapped[Office | None] = relationship(remote_side=[id])


class User(Base):
    """A person with a role, scoped to an office (a regency user sees its kecamatan offices)."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    office: Mapped[Office] = relationship()
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    #: Sealed under the token's storage key (``enc1:…``, :mod:`printsrv.web.auth_service`).
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The TOTP time step of the last accepted code: a code is good once.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("uq_app_user_username_lower", func.lower(username), unique=True),)


class Batch(Base):
    """One imported signed batch (``ktp-approved-batch/1``)."""

    __tablename__ = "batch"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), unique=True)
    issuer: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    record_count: Mapped[int]
    imported_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str] = mapped_column(String(400))
    imported_by: Mapped[str] = mapped_column(String(64), default="")


class Record(Base):
    """An approved record to print. ``data`` holds the non-biometric fields as imported."""

    __tablename__ = "record"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"))
    batch: Mapped[Batch] = relationship()
    line_no: Mapped[int]
    nik: Mapped[str] = mapped_column(String(16), index=True)
    nama: Mapped[str] = mapped_column(String(60), index=True)
    card_type: Mapped[str] = mapped_column(String(8))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    office: Mapped[Office] = relationship()
    state: Mapped[RecordState] = mapped_column(_enum(RecordState, "record_state"))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    failure_count: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    issued_at: Mapped[datetime | None]
    media_purged_at: Mapped[datetime | None]
    #: When the kept biometrics of an issued record must be shredded (``reprint_window_days``
    #: after the issue); NULL when nothing is waiting (shredded, or the window is 0).
    media_purge_due: Mapped[datetime | None] = mapped_column(index=True)
    #: The card access number (6 digits) for PACE: made when the record first goes to a card,
    #: printed on the card face and written to the chip.
    card_access_number: Mapped[str | None] = mapped_column(String(6))
    #: the kecamatan node that holds this record (kabupaten server): its stations never claim
    #: it and nothing here changes its state until the node reports its fate or releases it
    owner_node: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (Index("ix_record_office_state", "office_id", "state", "id"),)


class RecordKey(Base):
    """The record's data key, wrapped by the token's storage key. Deleting it crypto-shreds
    every :class:`RecordMedia` of the record."""

    __tablename__ = "record_key"
    record_id: Mapped[int] = mapped_column(
        ForeignKey("record.id", ondelete="CASCADE"), primary_key=True
    )
    key_label: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)


class RecordMedia(Base):
    """One encrypted medium (photo, signature, fingerprint minutiae) of a record (AES-256-GCM)."""

    __tablename__ = "record_media"
    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id", ondelete="CASCADE"))
    kind: Mapped[MediaKind] = mapped_column(_enum(MediaKind, "media_kind"))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (UniqueConstraint("record_id", "kind"),)


class AuditHead(Base):
    """One row per audit chain with its last position and hash. Locking a chain's row
    serialises that chain's writers only: each station writes its own chain, so stations never
    wait for one another's audit events."""

    __tablename__ = "audit_head"
    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """An append-only, hash-chained audit event; written only by :func:`printsrv.audit.record`.

    ``seq`` numbers every event (database order); ``chain_seq`` is the position in its chain.
    """

    __tablename__ = "audit_event"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    chain: Mapped[str] = mapped_column(String(64))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    tag: Mapped[str] = mapped_column(String(80), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    office_code: Mapped[str | None] = mapped_column(String(8), index=True)
    subject: Mapped[str | None] = mapped_column(String(120), index=True)
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("chain", "chain_seq"),)


class AuditCheckpoint(Base):
    """A signed statement of every audit chain's head (chain → sequence, hash) at one moment,
    numbered globally. Kept here and appended to a file outside the database
    (:mod:`printsrv.checkpoints`); the signature is made in the token."""

    __tablename__ = "audit_checkpoint"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the canonical JSON that was signed
    signature: Mapped[str] = mapped_column(Text)  # base64 DER ECDSA


class OutboxEvent(Base):
    """One state change that others must learn of (:mod:`printsrv.outbox`), written in the same
    transaction as the change. ``event_id`` is stable: a consumer applies each id once.

    Delivery order is ``(tx, id)``: on PostgreSQL ``tx`` is the writing transaction's id (the
    database fills it in), so an event is delivered only once every older transaction has ended
    and no event can appear behind a consumer's cursor; on SQLite, where writers take turns,
    it is 0 and ``id`` alone is commit order."""

    __tablename__ = "outbox_event"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tx: Mapped[int] = mapped_column(BigInteger, server_default="0")
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    at: Mapped[datetime]
    topic: Mapped[str] = mapped_column(String(40))
    office_code: Mapped[str | None] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]]
    __table_args__ = (Index("ix_outbox_event_tx_id", "tx", "id"),)


class OutboxConsumer(Base):
    """A consumer of the outbox and its cursor: the last ``(tx, id)`` it acknowledged."""

    __tablename__ = "outbox_consumer"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor_tx: Mapped[int] = mapped_column(BigInteger, default=0)
    cursor_id: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    error_at: Mapped[datetime | None]


class PrintHold(Base):
    """A reason no station may print until a supervisor acknowledges it (e.g. a restore whose
    ledger may be older than what was printed before the backup). Rows are never deleted."""

    __tablename__ = "print_hold"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None]


# Tables of the later modules register on the same metadata (Alembic, test clean-up).
from printsrv.desk import models as _desk_tables  # noqa: E402,F401
from printsrv.ledger import models as _ledger_tables  # noqa: E402,F401
from printsrv.notify import models as _notify_tables  # noqa: E402,F401
from printsrv.station import journal as _station_tables  # noqa: E402,F401
from printsrv.sync import models as _sync_tables  # noqa: E402,F401
from printsrv.web import models as _web_tables  # noqa: E402,F401
