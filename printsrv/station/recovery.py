"""Start-up reconciliation: every card job without an outcome gets exactly one, logged.

The automatic rule, by the last phase committed before the crash:

===================  ==========================================================================
intent               nothing physical happened: blank back to the hopper, record re-queued
chip_started         probe the card in the encoder: still blank → released as above; written,
                     locked, unreadable or no encoder → spoiled ``chip_failure``, re-queued
chip_done            chip personalized but never printed → spoiled ``unknown_crash``, re-queued
print_submitted      ask the printer for the job titled ``cardjob-<id>-…``: printed → issued;
                     ended without a card → spoiled with the fault's cause; not found,
                     unfinished (cancelled) or unknown → spoiled ``unknown_crash``, re-queued
===================  ==========================================================================

An operator can instead state what physically happened: ``python run.py station resolve NAME
--job ID --outcome issued|spoiled|released [--cause C]``. Either way the blank ends in exactly
one ledger state, the record is never issued twice, and the choice is an audit event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chip.errors import CardState
from printsrv import audit
from printsrv.audit import station_chain
from printsrv.db import unit_of_work
from printsrv.errors import StateError
from printsrv.eventlog import card_fields
from printsrv.station import reasons
from printsrv.station.devices import StationConfig, find_print_job
from printsrv.station.journal import CardJob, CardOutcome, CardPhase, unfinished_jobs

log = logging.getLogger("printsrv.station")

@dataclass(frozen=True)
class Resolution:
    job_id: int
    phase: str
    outcome: CardOutcome
    cause: str | None
    rule: str


def decide(station: Any, job: CardJob) -> tuple[CardOutcome, str | None, str]:
    """The automatic rule for ``job`` (see the module docstring): outcome, cause, why."""
    if job.phase is CardPhase.INTENT:
        return CardOutcome.RELEASED, None, "intent only: nothing happened to the blank"
    if job.phase is CardPhase.CHIP_STARTED:
        try:
            state = station.encoder.probe() if station is not None else CardState.UNKNOWN
        except Exception as exc:
            return CardOutcome.SPOILED, "chip_failure", f"chip state unknown ({exc})"
        if state is CardState.BLANK:
            return CardOutcome.RELEASED, None, "chip probed blank after the crash"
        return CardOutcome.SPOILED, "chip_failure", f"chip interrupted, probed {state.value}"
    if job.phase is CardPhase.CHIP_DONE:
        return CardOutcome.SPOILED, "unknown_crash", "chip written, crashed before printing"
    if job.phase is CardPhase.PRINT_SUBMITTED:
        if station is None:
            return CardOutcome.SPOILED, "unknown_crash", "print outcome unknown (no printer)"
        found = find_print_job(station.printer, job.print_title or "")
        if found.found and found.printed:
            return CardOutcome.ISSUED, None, f"printer job {found.job_id} printed the card"
        if found.found and found.printed is False and found.fault:
            cause = reasons.spoil_cause(found.fault)
            return CardOutcome.SPOILED, cause, f"printer job {found.job_id}: {found.fault}"
        return CardOutcome.SPOILED, "unknown_crash", f"print outcome unknown: {found.message}"
    raise StateError(f"card job {job.id} is {job.phase}")


def apply(
    settings: Any,
    config: StationConfig,
    job_id: int,
    outcome: CardOutcome,
    cause: str | None,
    *,
    actor: str,
    rule: str,
    chip_uid: str | None = None,
) -> Resolution:
    """Give unfinished card job ``job_id`` its outcome in one transaction, audited."""
    from printsrv.audit_tags import StationTag
    from printsrv.station.fates import issue_card, release_card, spoil_card

    with unit_of_work(settings, audit_chain=station_chain(config.name)) as session:
        job = session.get(CardJob, job_id, with_for_update=True)
        if job is None or job.station != config.name:
            raise StateError(f"no card job {job_id} at station {config.name}")
        if job.outcome is not None:
            raise StateError(f"card job {job_id} already ended: {job.outcome.value}")
        phase = job.phase.value
        fields = card_fields(config.name, request_id=job.record.request_id,
                             blank_serial=job.blank_serial, card_job=job_id)
        audit.record(
            session,
            StationTag.RECOVER,
            actor=actor,
            office_code=job.record.office.code,
            subject=job.record.request_id,
            details={"card_job": job.id, "phase": phase, "outcome": outcome.value,
                     "cause": cause, "rule": rule, "blank_serial": job.blank_serial},
        )
        if outcome is CardOutcome.ISSUED:
            issue_card(session, config, job, actor=actor, chip_uid=chip_uid or job.chip_uid,
                       resolved_by=actor,
                       reprint_window_days=settings.reprint_window_days)
        elif outcome is CardOutcome.SPOILED:
            spoil_card(session, config, job, cause or "unknown_crash", f"recovery: {rule}",
                       actor=actor, resolved_by=actor)
        else:
            release_card(session, config, job, actor=actor, reason=f"recovery: {rule}",
                         resolved_by=actor)
    log.warning("station %s: card job %s (%s) resolved %s %s: %s", config.name, job_id, phase,
                outcome.value, cause or "", rule,
                extra=fields)
    return Resolution(job_id, phase, outcome, cause, rule)


def pending(settings: Any, config: StationConfig) -> list[CardJob]:
    with unit_of_work(settings) as session:
        jobs = unfinished_jobs(session, config.name)
        for job in jobs:
            _ = job.record.request_id  # load before the session closes
        return jobs


def recover(station: Any, *, automatic: bool = True) -> list[Resolution]:
    """Resolve every unfinished card job of ``station`` by the automatic rule.

    With ``automatic=False`` (setting ``recovery = "operator"``), unfinished jobs stop the
    start-up instead: an operator must run ``station resolve``.
    """
    config: StationConfig = station.config
    jobs = pending(station.settings, config)
    if not jobs:
        return []
    if not automatic or config.recovery == "operator":
        listing = ", ".join(f"{j.id} ({j.phase.value}, blank {j.blank_serial})" for j in jobs)
        raise StateError(
            f"station {config.name} has unfinished card jobs: {listing}; confirm what happened "
            f"with 'python run.py station resolve {config.name} --job ID --outcome ...'"
        )
    out = []
    for job in jobs:
        outcome, cause, rule = decide(station, job)
        out.append(apply(station.settings, config, job.id, outcome, cause,
                         actor=f"{config.actor}:recovery"[:64], rule=f"automatic: {rule}"))
    return out
