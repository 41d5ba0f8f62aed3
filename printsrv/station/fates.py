"""A card's fates, in one place: **issue** (a good card), **spoil** (the blank is lost, with
its cause from the one fault → cause table, :func:`printsrv.station.reasons.spoil_cause`) and
**release** (nothing happened to the blank). The daemon, crash recovery and ``run.py station
resolve`` all settle cards through these; each runs in the caller's unit of work and writes the
ledger movement, the record's transition (an outbox event), the card job's end and one audit
event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from printsrv import audit
from printsrv.audit_tags import StationTag
from printsrv.errors import InvalidValue
from printsrv.models import Record, RecordState
from printsrv.offices import office_code
from printsrv.records import after_issue, transition
from printsrv.station import stock
from printsrv.station.claim import drop_lease
from printsrv.station.journal import CardJob, CardOutcome, finish
from printsrv.station.reasons import spoil_cause

if TYPE_CHECKING:
    from printers.api import PrintOutcome
    from printsrv.station.devices import StationConfig

__all__ = ["issue_card", "release_card", "spoil_card", "spoil_cause"]


def issue_card(
    session: Any,
    config: StationConfig,
    job: CardJob,
    *,
    actor: str,
    chip_uid: str | None = None,
    outcome: PrintOutcome | None = None,
    resolved_by: str | None = None,
    reprint_window_days: int = 0,
) -> None:
    """The card is good: blank issued, record issued, biometrics shredded (or kept until the
    reprint window of ``reprint_window_days`` ends), job finished.

    A record may be issued again after an approved reprint (issued → queued): each issue is
    its own card job and blank; only a record already *in* state issued is refused here."""
    record = job.record
    if record.state is RecordState.ISSUED:
        raise InvalidValue(f"record {record.request_id} is already issued")
    stock.issue(session, config, job.blank_serial or "", record, chip_uid=chip_uid, actor=actor)
    transition(session, record, RecordState.ISSUED, actor=actor, reason=f"card job {job.id}")
    drop_lease(record)
    purge_due = after_issue(session, record, actor=actor, window_days=reprint_window_days)
    if outcome is not None:
        stock.ribbon_used(session, config, outcome, record_id=record.id,
                          blank_serial=job.blank_serial or "", actor=actor)
    if chip_uid:
        job.chip_uid = chip_uid
    _note_print_job(job, outcome)
    finish(session, job, CardOutcome.ISSUED, resolved_by=resolved_by)
    _audit_card(
        session, StationTag.ISSUE, job, actor=actor, resolved_by=resolved_by,
        chip_uid=job.chip_uid, print_job=job.print_job_id,
        printer=outcome.printer if outcome is not None else None,
        media_purge_due=purge_due.isoformat() if purge_due is not None else None,
    )  # fmt: skip


def _note_print_job(job: CardJob, outcome: PrintOutcome | None) -> None:
    """The print job that fed the card, noted with the fate (one commit and one UPDATE fewer
    per card than noting it on its own)."""
    if outcome is not None and outcome.job_id is not None:
        job.print_job_id = outcome.job_id


def _requeue(session: Any, record: Record, *, actor: str, max_failures: int, why: str) -> None:
    record.failure_count = (record.failure_count or 0) + 1
    drop_lease(record)
    if record.failure_count >= max_failures:
        transition(session, record, RecordState.HELD, actor=actor,
                   reason=f"{record.failure_count} failed cards; last: {why}"[:500])
    else:
        transition(session, record, RecordState.QUEUED, actor=actor, reason=why[:500])


def spoil_card(
    session: Any,
    config: StationConfig,
    job: CardJob,
    cause: str,
    message: str,
    *,
    actor: str,
    outcome: PrintOutcome | None = None,
    resolved_by: str | None = None,
) -> None:
    """The blank is spoiled with ``cause``; the record goes back to the queue (held after
    ``max_failures``); the job finishes."""
    record = job.record
    phase = job.phase  # where the card was lost, for the audit event (finish() moves it on)
    stock.spoil(session, config, job.blank_serial or "", record, cause, note=message, actor=actor)
    if record.state is RecordState.PRINTING:
        _requeue(session, record, actor=actor, max_failures=config.max_failures,
                 why=f"{cause}: {message}")
    if outcome is not None and outcome.card_consumed and outcome.ribbon_spent is not False:
        stock.ribbon_used(session, config, outcome, record_id=record.id,
                          blank_serial=job.blank_serial or "", actor=actor)
    _note_print_job(job, outcome)
    finish(session, job, CardOutcome.SPOILED, cause=cause, message=message,
           resolved_by=resolved_by)
    _audit_card(
        session, StationTag.SPOIL, job, actor=actor, resolved_by=resolved_by,
        chip_uid=job.chip_uid, cause=cause, message=message[:500],
        phase=phase.value if phase else None,
    )  # fmt: skip


def release_card(
    session: Any,
    config: StationConfig,
    job: CardJob,
    *,
    actor: str,
    hold: str | None = None,
    reason: str | None = None,
    resolved_by: str | None = None,
) -> None:
    """Nothing physical happened to the blank: back to the hopper; the record back to the
    queue (or held with ``hold``) without counting a failure."""
    record = job.record
    if job.blank_serial:
        stock.release(session, config, job.blank_serial, actor=actor)
    if record.state is RecordState.PRINTING:
        drop_lease(record)
        if hold:
            transition(session, record, RecordState.HELD, actor=actor, reason=hold[:500])
        else:
            transition(session, record, RecordState.QUEUED, actor=actor,
                       reason=(reason or "blank released")[:500])
    finish(session, job, CardOutcome.RELEASED, message=hold or reason, resolved_by=resolved_by)
    _audit_card(
        session, StationTag.RELEASE, job, actor=actor, resolved_by=resolved_by,
        reason=(hold or reason or "")[:500],
    )  # fmt: skip


def _audit_card(
    session: Any, tag: str, job: CardJob, *, actor: str, resolved_by: str | None, **extra: Any
) -> None:
    """The audit event of a card's fate: the job, station and blank, plus the fate's details."""
    record = job.record
    audit.record(
        session,
        tag,
        actor=actor,
        office_code=office_code(session, record.office_id),
        subject=record.request_id,
        details={
            "card_job": job.id,
            "station": job.station,
            "blank_serial": job.blank_serial,
            **extra,
            "resolved_by": resolved_by,
        },
    )
