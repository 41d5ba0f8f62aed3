"""From job state and printer state reasons to a card's fate: one table, one function.

"completed" only means the data reached the printer: a job whose printer vanished mid-job also
ends completed, with ``cups-ipp-missing-job-history`` as the only hint, and a job the printer
aborted can end completed while the printer reports the fault (see ``docs/printers.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from printers.api import Fault, JobState, Marker, PrinterStatus, PrintOutcome
from printers.errors import (
    CoverOpenError,
    JobFailedError,
    JobRejectedError,
    MediaEmptyError,
    MediaJamError,
    PrinterError,
    PrinterGoneError,
    QueueRejectingError,
    RibbonOutError,
)

#: Normalised printer-state-reasons that mean a fault, in priority order (first match wins).
REASON_FAULTS: Final[tuple[tuple[str, Fault], ...]] = (
    ("media-jam", Fault.JAM),
    ("cover-open", Fault.COVER_OPEN),
    ("door-open", Fault.COVER_OPEN),
    ("interlock-open", Fault.COVER_OPEN),
    ("marker-supply-empty", Fault.RIBBON_OUT),
    ("marker-supply-missing", Fault.RIBBON_OUT),
    ("toner-empty", Fault.RIBBON_OUT),
    ("media-empty", Fault.MEDIA_EMPTY),
    ("media-needed", Fault.MEDIA_EMPTY),
    ("input-tray-missing", Fault.MEDIA_EMPTY),
    ("cups-ipp-missing-job-history", Fault.PRINTER_GONE),
    ("offline", Fault.PRINTER_GONE),
    ("shutdown", Fault.PRINTER_GONE),
    ("paused", Fault.REJECTED),
)

#: Whether a card left the hopper, per fault (``None``: unknown).
FAULT_CONSUMES: Final[dict[Fault, bool | None]] = {
    Fault.JAM: True,
    Fault.RIBBON_OUT: False,
    Fault.COVER_OPEN: False,
    Fault.MEDIA_EMPTY: False,
    Fault.PRINTER_GONE: None,
    Fault.REJECTED: False,
    Fault.UNKNOWN: None,
}

_ERRORS: Final[dict[Fault, type[PrinterError]]] = {
    Fault.JAM: MediaJamError,
    Fault.RIBBON_OUT: RibbonOutError,
    Fault.COVER_OPEN: CoverOpenError,
    Fault.MEDIA_EMPTY: MediaEmptyError,
    Fault.PRINTER_GONE: PrinterGoneError,
    Fault.REJECTED: QueueRejectingError,
    Fault.UNKNOWN: JobFailedError,
}

_MISSING_HISTORY: Final = "missing-job-history"
#: Reasons about the queue or the link, not about the card of a completed job.
_NOT_CARD_FAULTS: Final = frozenset({"paused", "offline", "shutdown"})


def fault_from_reasons(reasons: Iterable[str]) -> Fault | None:
    """The highest-priority fault named by normalised reasons, or ``None``."""
    present = set(reasons)
    for reason, fault in REASON_FAULTS:
        if reason in present:
            return fault
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A card's fate as decided by :func:`classify`."""

    fault: Fault | None
    card_consumed: bool | None
    card_printed: bool | None
    operator_action: bool
    message: str


def classify(
    job_state: JobState,
    job_reasons: Sequence[str],
    reasons_before: Sequence[str],
    reasons_after: Sequence[str],
    *,
    markers_before: Sequence[Marker] = (),
    markers_after: Sequence[Marker] = (),
) -> Verdict:
    """Decide a finished job's card: printed, spoiled, not fed or unknown.

    All reasons must be normalised (:func:`printers.api.normalise_reasons`). A fault reason that
    appeared during the job wins over one that was already present.
    """
    everything = (*job_reasons, *reasons_after)
    if job_state == JobState.COMPLETED:
        if any(r.endswith(_MISSING_HISTORY) for r in everything):
            return Verdict(
                Fault.PRINTER_GONE,
                None,
                None,
                True,
                "job completed but the printer lost its history: it went away mid-job",
            )
        fault = fault_from_reasons(r for r in reasons_after if r not in _NOT_CARD_FAULTS)
        if fault is not None:
            return _completed_with_fault(fault, markers_before, markers_after)
        return Verdict(None, True, True, False, "card printed")
    if not job_state.is_final:
        return Verdict(Fault.UNKNOWN, None, None, True, f"job still {job_state.name.lower()}")
    new = [r for r in reasons_after if r not in reasons_before]
    fault = fault_from_reasons(new) or fault_from_reasons(everything)
    if fault is None:
        return Verdict(
            Fault.UNKNOWN,
            None,
            None,
            True,
            f"job {job_state.name.lower()} without a known printer reason",
        )
    consumed = FAULT_CONSUMES[fault]
    if consumed is False and _levels_fell(markers_before, markers_after):
        consumed = True  # ribbon was spent: a card was fed and partly printed
    return Verdict(
        fault,
        consumed,
        False if consumed is not None else None,
        True,
        f"job {job_state.name.lower()}: {fault.value}",
    )


def _completed_with_fault(
    fault: Fault, markers_before: Sequence[Marker], markers_after: Sequence[Marker]
) -> Verdict:
    """A job CUPS calls completed while the printer still reports a card fault.

    The ipp backend sometimes exits 0 for a job the printer aborted (observed with
    ippeveprinter: remote job ``aborted-by-system``, CUPS job completed), and a good job clears
    the printer's fault reasons, so a fault reason after "completed" means no good card.
    An empty hopper or ribbon may also follow the last good card: then the card is unknown.
    """
    fell = _levels_fell(markers_before, markers_after)
    consumed: bool | None
    if fault is Fault.JAM:
        consumed, printed = True, False
    elif fell:
        consumed, printed = True, None
    elif fault is Fault.COVER_OPEN:
        consumed, printed = False, False
    else:
        consumed, printed = None, None
    return Verdict(
        fault,
        consumed,
        printed,
        True,
        f"job reported completed but the printer reports {fault.value}",
    )


def rejected(message: str) -> Verdict:
    """The verdict for a job the print system refused before any card was fed."""
    return Verdict(Fault.REJECTED, False, False, True, message)


def _levels_fell(before: Sequence[Marker], after: Sequence[Marker]) -> bool:
    old = {m.name: m.level for m in before if m.known}
    return any(m.known and m.name in old and m.level < old[m.name] for m in after)


def error_for(outcome: PrintOutcome, cls: type[PrinterError] | None = None) -> PrinterError | None:
    """The error matching a finished card's outcome (``None`` for a good card).

    ``cls`` overrides the class chosen from the fault (a backend that knows better, e.g. a
    queue that refused the job outright).
    """
    if outcome.ok:
        return None
    fault = outcome.fault or Fault.UNKNOWN
    if cls is None:
        cls = _ERRORS[fault]
        if fault is Fault.REJECTED and "paused" not in outcome.printer_state_reasons:
            cls = JobRejectedError
    text = f"{outcome.printer}: {outcome.message or fault.value}"
    if outcome.job_id is not None:
        text += f" (job {outcome.job_id})"
    return cls(text, card_consumed=outcome.card_consumed, outcome=outcome)


def outcome_of(
    printer: str,
    job_id: int | None,
    job_state: JobState | None,
    before: PrinterStatus | None,
    after: PrinterStatus,
    verdict: Verdict,
    *,
    job_reasons: tuple[str, ...] = (),
    document: Path | None = None,
) -> PrintOutcome:
    """A card's :class:`PrintOutcome` from its verdict and the printer status around the job
    (``before`` is ``None`` when unknown: a job found again after a restart)."""
    return PrintOutcome(
        printer=printer,
        job_id=job_id,
        job_state=job_state,
        card_consumed=verdict.card_consumed,
        card_printed=verdict.card_printed,
        fault=verdict.fault,
        operator_action=verdict.operator_action,
        printer_state_reasons=after.reasons,
        job_state_reasons=job_reasons,
        markers_before=before.markers if before is not None else (),
        markers_after=after.markers,
        message=verdict.message,
        document=document,
    )


def finish_card(
    printer: str,
    job_id: int | None,
    job_state: JobState | None,
    before: PrinterStatus,
    after: PrinterStatus,
    verdict: Verdict,
    *,
    job_reasons: tuple[str, ...] = (),
    document: Path | None = None,
    error: type[PrinterError] | None = None,
) -> PrintOutcome:
    """:func:`outcome_of`, raising the matching :class:`PrinterError` unless the card is good
    (every backend's end of a card)."""
    outcome = outcome_of(
        printer,
        job_id,
        job_state,
        before,
        after,
        verdict,
        job_reasons=job_reasons,
        document=document,
    )
    exc = error_for(outcome, error)
    if exc is not None:
        raise exc
    return outcome
