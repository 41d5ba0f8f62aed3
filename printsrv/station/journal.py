"""The per-card journal: one :class:`CardJob` row per attempt, committed *before* each device
action, so that a station killed at any instant leaves a row saying how far it got.

Phases, in order::

    intent          record claimed, blank reserved; nothing physical has happened yet
    chip_started    the blank is (being) moved to the encoder and written
    chip_done       chip personalized, locked and verified (``chip_uid`` known)
    print_submitted the card was handed to the printer (``print_title`` identifies the job)
    finished        ``outcome`` is set: issued, spoiled (with ``cause``) or released

A job is *unfinished* while ``outcome`` is NULL; :mod:`printsrv.station.recovery` resolves
those at start-up.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from printsrv.errors import InvalidValue
from printsrv.models import Base, Record, utcnow


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls, name=name, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
    )


class CardPhase(enum.StrEnum):
    INTENT = "intent"
    CHIP_STARTED = "chip_started"
    CHIP_DONE = "chip_done"
    PRINT_SUBMITTED = "print_submitted"
    FINISHED = "finished"


class CardOutcome(enum.StrEnum):
    ISSUED = "issued"
    SPOILED = "spoiled"
    RELEASED = "released"  # the blank went back to the hopper untouched


class CardJob(Base):
    """One attempt to make one card: which station, which record, which blank, how far."""

    __tablename__ = "card_job"
    id: Mapped[int] = mapped_column(primary_key=True)
    station: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id"))
    record: Mapped[Record] = relationship()
    blank_serial: Mapped[str | None] = mapped_column(String(64), index=True)
    phase: Mapped[CardPhase] = mapped_column(_enum(CardPhase, "card_phase"))
    outcome: Mapped[CardOutcome | None] = mapped_column(_enum(CardOutcome, "card_outcome"))
    cause: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text)
    chip_uid: Mapped[str | None] = mapped_column(String(32))
    chip_attempts: Mapped[int] = mapped_column(default=0)
    print_title: Mapped[str | None] = mapped_column(String(120))
    print_job_id: Mapped[int | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    #: Who operated the station for this card (the batch's requester or the station's
    #: starter); ``None`` when nobody was named.
    operator: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_card_job_station_outcome", "station", "outcome"),)

    @property
    def unfinished(self) -> bool:
        return self.outcome is None


#: The claim query's index: only queued records, in id order (migration 0006). Without it the
#: planner walks the primary key past every record already printed (see ``bench/station``).
Index(
    "ix_record_queued",
    Record.id,
    postgresql_where=text("state = 'queued'"),
    sqlite_where=text("state = 'queued'"),
)

#: The claim's pick: each office's queued records in id order (migration 0009), so that the
#: next record of an office is found without walking other offices' queued records.
Index(
    "ix_record_queued_office",
    Record.office_id,
    Record.id,
    postgresql_where=text("state = 'queued'"),
    sqlite_where=text("state = 'queued'"),
)


def title_for(job: CardJob, request_id: str) -> str:
    """The print job title: names the card job (and its record's request id) so recovery can
    find it in the print system."""
    return f"cardjob-{job.id}-{request_id}"[:120]


def advance(
    session: Session, job: CardJob, phase: CardPhase, **values: Any
) -> None:
    """Move ``job`` forward to ``phase`` (never backwards) and set ``values``."""
    order = list(CardPhase)
    if order.index(phase) < order.index(job.phase):
        raise InvalidValue(f"card job {job.id}: cannot go back from {job.phase} to {phase}")
    job.phase = phase
    for key, value in values.items():
        setattr(job, key, value)
    job.updated_at = utcnow()


def finish(
    session: Session,
    job: CardJob,
    outcome: CardOutcome,
    *,
    cause: str | None = None,
    message: str | None = None,
    resolved_by: str | None = None,
) -> None:
    """Record the card's fate; the caller commits it with the ledger and record changes."""
    if job.outcome is not None:
        raise InvalidValue(f"card job {job.id} already finished ({job.outcome})")
    job.outcome = outcome
    job.cause = cause
    job.message = (message or "")[:2000] or None
    job.resolved_by = resolved_by
    job.phase = CardPhase.FINISHED
    job.finished_at = job.updated_at = utcnow()


def unfinished_jobs(session: Session, station: str) -> list[CardJob]:
    """The station's card jobs without an outcome, oldest first."""
    return list(
        session.scalars(
            select(CardJob)
            .where(CardJob.station == station, CardJob.outcome.is_(None))
            .order_by(CardJob.id)
        )
    )
