"""Tables of the blank and ribbon ledger, on the shared :class:`printsrv.models.Base`.

The :class:`BlankMovement` journal is the book of record: every state change of every blank is
one row, and the monthly report and ``ledger check`` are computed from it. :class:`Blank` holds
each serial's current state, which ``ledger check`` proves equal to the journal's replay.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from printsrv.models import Base, Office, _enum, utcnow
from printsrv.products import DEFAULT_STOCK_TYPE

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT journal key.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class StationState(enum.StrEnum):
    """What a station is doing, as its daemon last wrote it (the one state of a station)."""

    OFFLINE = "offline"  # registered, its daemon has never run
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"  # with ``pause_reason``
    STOPPED = "stopped"  # its daemon stopped (end of shift, or killed and not yet restarted)


class BlankState(enum.StrEnum):
    """Where a blank is. Transfers change the office, not the state."""

    IN_STOCK = "in_stock"  # in the office's store room
    IN_HOPPER = "in_hopper"  # loaded into a station's input hopper
    RESERVED = "reserved"  # a card is being made on it (intent recorded before device action)
    ISSUED = "issued"  # a good card was made on it
    SPOILED = "spoiled"  # damaged/invalid, corner cut, awaiting destruction (or written off)
    DESTROYED = "destroyed"  # destroyed under a destruction record
    #: handed over to a kecamatan node's office (BAST), not yet acknowledged by the node: the
    #: same in the server's ledger and the node's until the node accepts the handover
    IN_TRANSIT = "in_transit"


#: States that count as stock on hand ("closing") of the blank's office (a blank in transit
#: to a node counts at the node's office: the transfer moved it there, the node's acceptance
#: only puts it in the store room).
ON_HAND = frozenset({BlankState.IN_STOCK, BlankState.IN_HOPPER, BlankState.RESERVED,
                     BlankState.IN_TRANSIT})


class SpoilCause(enum.StrEnum):
    FACTORY_DEFECT = "factory_defect"
    PRINT_DEFECT = "print_defect"  # peel, rub-off
    RIBBON_FAULT = "ribbon_fault"  # ribbon or retransfer film
    CHIP_FAILURE = "chip_failure"
    DATA_ERROR = "data_error"
    JAM_MISFEED = "jam_misfeed"
    QC_REJECT = "qc_reject"
    TEST_PRINT = "test_print"
    HANDLING_DAMAGE = "handling_damage"
    UNKNOWN_CRASH = "unknown_crash"  # outcome lost in a crash, resolved conservatively
    PRINTER_GONE = "printer_gone"
    MISSING = "missing"  # not found at a stock count; written off by an approved adjustment


class MovementKind(enum.StrEnum):
    RECEIVE = "receive"
    TRANSFER = "transfer"
    LOAD = "load"
    UNLOAD = "unload"
    RESERVE = "reserve"
    RELEASE = "release"
    ISSUE = "issue"
    SPOIL = "spoil"
    DESTROY = "destroy"
    ADJUST = "adjust"
    ACCEPT = "accept"  # a node accepted blanks in transit to it: into its store room


class ConsumableKind(enum.StrEnum):
    RIBBON = "ribbon"
    FILM = "film"


class ConsumableState(enum.StrEnum):
    IN_STOCK = "in_stock"
    LOADED = "loaded"
    FINISHED = "finished"
    IN_TRANSIT = "in_transit"  # handed to a kecamatan node (BAST), not yet accepted there


class AdjustmentKind(enum.StrEnum):
    WRITE_OFF = "write_off"  # blanks not found at a count: on hand → spoiled (cause missing)
    CORRECT_STATE = "correct_state"  # between on-hand states (in_stock / in_hopper / reserved)


class AdjustmentStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class HandoverKind(enum.StrEnum):
    RECEIPT = "receipt"  # a carton received from outside (central, province)
    TRANSFER = "transfer"  # between two offices of this server


class Station(Base):
    """A print station: a CUPS queue paired with a PC/SC reader, at one office; one row holds
    both its ledger identity and what its daemon is doing (migration 0029 merged the former
    ``station_runtime`` table into it).

    The station daemon writes ``state``, ``pause_reason``, ``pid``, ``heartbeat_at``,
    ``current_job_id``, the card counters and ``printer_status``; operators' requests (a batch,
    resume, who operates it) go into ``details`` (:mod:`printsrv.station.requests`); the web
    app only reads the rest.
    """

    __tablename__ = "station"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), index=True)
    office: Mapped[Office] = relationship()
    cups_queue: Mapped[str] = mapped_column(String(128), default="")
    reader: Mapped[str] = mapped_column(String(200), default="")
    profile: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[StationState] = mapped_column(
        _enum(StationState, "station_state"), default=StationState.OFFLINE
    )
    pause_reason: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]
    current_job_id: Mapped[int | None]
    cards_issued: Mapped[int] = mapped_column(default=0)
    cards_spoiled: Mapped[int] = mapped_column(default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    printer_status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def has_run(self) -> bool:
        """Whether its daemon has ever started."""
        return self.pid is not None


class HandoverRecord(Base):
    """A *Berita Acara Serah Terima*: a carton received, or blanks handed to another office."""

    __tablename__ = "handover_record"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[HandoverKind] = mapped_column(_enum(HandoverKind, "handover_kind"))
    from_office_id: Mapped[int | None] = mapped_column(ForeignKey("office.id"))
    from_party: Mapped[str] = mapped_column(String(200), default="")  # when not an office here
    to_office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    carton: Mapped[str | None] = mapped_column(String(64))
    first_serial: Mapped[str] = mapped_column(String(32))
    last_serial: Mapped[str] = mapped_column(String(32))
    count: Mapped[int]
    document_date: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    #: The person who hands the blanks over and the one who receives them, as the ledger
    #: stores a signatory (``NAME / NIP 1234``); empty when not given.
    giver: Mapped[str] = mapped_column(String(120), default="", server_default="")
    receiver: Mapped[str] = mapped_column(String(120), default="", server_default="")
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DestructionRecord(Base):
    """A *Berita Acara Pemusnahan*: two officers and a witness (Inspektorat or Satpol PP)."""

    __tablename__ = "destruction_record"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(80), unique=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    officer_1: Mapped[str] = mapped_column(String(120))
    officer_2: Mapped[str] = mapped_column(String(120))
    witness: Mapped[str] = mapped_column(String(120))
    witness_role: Mapped[str] = mapped_column(String(120), default="")
    place: Mapped[str] = mapped_column(String(200), default="")
    method: Mapped[str] = mapped_column(String(64), default="burned")
    count: Mapped[int]
    document_date: Mapped[date | None] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Adjustment(Base):
    """A stock correction; it changes nothing until a different person approves it."""

    __tablename__ = "ledger_adjustment"
    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), index=True)
    kind: Mapped[AdjustmentKind] = mapped_column(_enum(AdjustmentKind, "adjustment_kind"))
    serials: Mapped[list[str]] = mapped_column(JSON)
    target_state: Mapped[BlankState | None] = mapped_column(_enum(BlankState, "blank_state"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[AdjustmentStatus] = mapped_column(
        _enum(AdjustmentStatus, "adjustment_status"), default=AdjustmentStatus.PENDING
    )
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)


class Blank(Base):
    """One card blank, by serial number; ``state`` is always the journal's last ``to_state``."""

    __tablename__ = "blank"
    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    prefix: Mapped[str] = mapped_column(String(24))
    number: Mapped[int] = mapped_column(BigInteger)
    chip_uid: Mapped[str | None] = mapped_column(String(32))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    office: Mapped[Office] = relationship()
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"))
    station: Mapped[Station | None] = relationship()
    state: Mapped[BlankState] = mapped_column(_enum(BlankState, "blank_state"))
    handover_id: Mapped[int] = mapped_column(ForeignKey("handover_record.id"))
    carton: Mapped[str | None] = mapped_column(String(64))
    #: The blank's stock type (:data:`printsrv.products.STOCK_TYPES`): each counted apart.
    stock_type: Mapped[str] = mapped_column(
        String(16), default=DEFAULT_STOCK_TYPE, server_default=DEFAULT_STOCK_TYPE
    )
    record_id: Mapped[int | None] = mapped_column(ForeignKey("record.id"))
    spoil_cause: Mapped[SpoilCause | None] = mapped_column(_enum(SpoilCause, "spoil_cause"))
    destruction_id: Mapped[int | None] = mapped_column(ForeignKey("destruction_record.id"))
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Optimistic locking: two writers moving the same blank cannot both succeed.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        Index("ix_blank_office_state", "office_id", "state"),
        Index(
            "ix_blank_station_stock_order",
            "station_id", "state", "stock_type", "prefix", "number",
        ),
    )


class BlankMovement(Base):
    """Append-only journal: one row per state change (or office change) of one blank.

    ``office_id`` is the blank's office before the movement; a transfer also names
    ``to_office_id``. Exactly one of the reference documents applies to a movement kind.
    """

    __tablename__ = "blank_movement"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    blank_id: Mapped[int] = mapped_column(ForeignKey("blank.id"))
    serial: Mapped[str] = mapped_column(String(32))
    kind: Mapped[MovementKind] = mapped_column(_enum(MovementKind, "movement_kind"))
    from_state: Mapped[BlankState | None] = mapped_column(_enum(BlankState, "blank_state"))
    to_state: Mapped[BlankState] = mapped_column(_enum(BlankState, "blank_state"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    to_office_id: Mapped[int | None] = mapped_column(ForeignKey("office.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("record.id"))
    cause: Mapped[SpoilCause | None] = mapped_column(_enum(SpoilCause, "spoil_cause"))
    handover_id: Mapped[int | None] = mapped_column(ForeignKey("handover_record.id"))
    destruction_id: Mapped[int | None] = mapped_column(ForeignKey("destruction_record.id"))
    adjustment_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_adjustment.id"))
    reference: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_blank_movement_blank", "blank_id", "id"),
        Index("ix_blank_movement_office_at", "office_id", "at"),
        Index("ix_blank_movement_to_office_at", "to_office_id", "at"),
    )


class Consumable(Base):
    """A ribbon or retransfer-film roll; :class:`Ribbon` and :class:`Film` share this table.

    ``panels_used`` is our count (sum of :class:`RibbonUsage`); ``printer_level`` is the last
    level the printer reported (as reported: percent from CUPS ``marker-levels`` or remaining
    panels where the printer gives them), kept beside our count, never instead of it.
    """

    __tablename__ = "consumable"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ConsumableKind] = mapped_column(_enum(ConsumableKind, "consumable_kind"))
    serial: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))  # YMCKO, YMCKOK, KO, FILM…
    set_panels: Mapped[int]  # panels in one set (YMCKO = 5; film = 1)
    capacity_panels: Mapped[int]
    panels_used: Mapped[int] = mapped_column(default=0)
    printer_level: Mapped[int | None]
    printer_level_at: Mapped[datetime | None]
    state: Mapped[ConsumableState] = mapped_column(
        _enum(ConsumableState, "consumable_state"), default=ConsumableState.IN_STOCK
    )
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"))
    station: Mapped[Station | None] = relationship()
    reference: Mapped[str | None] = mapped_column(String(120))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    loaded_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(64))

    __mapper_args__ = {"polymorphic_on": "kind"}  # noqa: RUF012
    __table_args__ = (Index("uq_consumable_kind_serial", "kind", "serial", unique=True),)

    @property
    def panels_remaining(self) -> int:
        return max(self.capacity_panels - self.panels_used, 0)


class Ribbon(Consumable):
    __mapper_args__ = {"polymorphic_identity": ConsumableKind.RIBBON}  # noqa: RUF012


class Film(Consumable):
    __mapper_args__ = {"polymorphic_identity": ConsumableKind.FILM}  # noqa: RUF012


class RibbonUsage(Base):
    """Panels spent on one card, with the ribbon/film serials and the printer's level after it."""

    __tablename__ = "ribbon_usage"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("station.id"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("record.id"))
    blank_serial: Mapped[str] = mapped_column(String(32))
    ribbon_id: Mapped[int | None] = mapped_column(ForeignKey("consumable.id"))
    panels: Mapped[int]
    film_id: Mapped[int | None] = mapped_column(ForeignKey("consumable.id"))
    film_panels: Mapped[int] = mapped_column(default=0)
    printer_level: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_ribbon_usage_office_at", "office_id", "at"),
        Index("ix_ribbon_usage_ribbon", "ribbon_id"),
    )
