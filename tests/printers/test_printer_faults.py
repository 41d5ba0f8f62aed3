"""State-reason normalisation, fault classification and error mapping (no daemons)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printers.api import Fault, JobState, Marker, PrintOutcome, normalise_reasons
from printers.errors import (
    CoverOpenError,
    JobFailedError,
    JobRejectedError,
    MediaEmptyError,
    MediaError,
    MediaJamError,
    PrinterError,
    PrinterGoneError,
    PrinterUnavailableError,
    QueueRejectingError,
    RibbonOutError,
)
from printers.faults import FAULT_CONSUMES, REASON_FAULTS, classify, error_for, fault_from_reasons

REASON = st.sampled_from(
    ["media-jam", "cover-open", "marker-supply-empty", "marker-supply-low", "media-empty",
     "paused", "other", "offline", "cups-ipp-missing-job-history", "connecting-to-device"]
)  # fmt: skip
SUFFIX = st.sampled_from(["", "-report", "-warning", "-error"])
RAW = st.tuples(REASON, SUFFIX).map("".join)


def test_normalise_string_and_list() -> None:
    assert normalise_reasons("none") == ()
    assert normalise_reasons(None) == ()
    assert normalise_reasons("media-jam-error") == ("media-jam",)
    assert normalise_reasons(["media-jam-report", "none", "marker-supply-low-warning"]) == (
        "media-jam",
        "marker-supply-low",
    )
    assert normalise_reasons("cover-open-report,media-jam") == ("cover-open", "media-jam")
    assert normalise_reasons(["-report"]) == ("-report",)


@given(st.lists(RAW, max_size=6))
def test_normalise_is_idempotent_and_suffix_free(raw: list[str]) -> None:
    once = normalise_reasons(raw)
    assert normalise_reasons(list(once)) == once
    assert len(set(once)) == len(once)
    assert not any(r.endswith(("-report", "-warning", "-error")) for r in once)
    assert "none" not in once
    if len(raw) == 1:
        assert normalise_reasons(raw[0]) == once  # pycups' single-string form


@given(st.lists(REASON, max_size=5), st.lists(REASON, max_size=5))
def test_completed_is_good_unless_history_missing(before: list[str], after: list[str]) -> None:
    verdict = classify(JobState.COMPLETED, ("processing-to-stop-point",), before, after)
    card_fault = fault_from_reasons(r for r in after if r not in {"paused", "offline"})
    if "cups-ipp-missing-job-history" in after:
        assert verdict.fault is Fault.PRINTER_GONE
        assert verdict.card_consumed is None and verdict.card_printed is None
        assert verdict.operator_action
    elif card_fault is not None:
        assert verdict.fault is card_fault
        assert verdict.card_printed is not True
        assert verdict.operator_action
    else:
        assert verdict.fault is None and verdict.card_printed is True
        assert not verdict.operator_action


@pytest.mark.parametrize(
    ("reason", "fell", "fault", "consumed", "printed"),
    [
        ("media-jam", False, Fault.JAM, True, False),
        ("cover-open", False, Fault.COVER_OPEN, False, False),
        ("cover-open", True, Fault.COVER_OPEN, True, None),
        ("marker-supply-empty", True, Fault.RIBBON_OUT, True, None),
        ("marker-supply-empty", False, Fault.RIBBON_OUT, None, None),
        ("media-empty", False, Fault.MEDIA_EMPTY, None, None),
    ],
)
def test_completed_while_printer_reports_a_fault(
    reason: str, fell: bool, fault: Fault, consumed: bool | None, printed: bool | None
) -> None:
    before = [Marker("Ribbon", 50)]
    after = [Marker("Ribbon", 45 if fell else 50)]
    verdict = classify(JobState.COMPLETED, ("processing-to-stop-point",), (), [reason],
                       markers_before=before, markers_after=after)  # fmt: skip
    assert (verdict.fault, verdict.card_consumed, verdict.card_printed) == (
        fault, consumed, printed
    )
    assert verdict.operator_action and "completed" in verdict.message


def test_missing_history_in_job_reasons_is_printer_gone() -> None:
    verdict = classify(JobState.COMPLETED, ("cups-ipp-missing-job-history",), (), ())
    assert verdict.fault is Fault.PRINTER_GONE


@pytest.mark.parametrize(
    ("reasons", "fault", "consumed"),
    [
        (["media-jam"], Fault.JAM, True),
        (["cover-open"], Fault.COVER_OPEN, False),
        (["marker-supply-empty"], Fault.RIBBON_OUT, False),
        (["media-empty"], Fault.MEDIA_EMPTY, False),
        (["offline"], Fault.PRINTER_GONE, None),
        (["marker-supply-low"], Fault.UNKNOWN, None),
        ([], Fault.UNKNOWN, None),
    ],
)
@pytest.mark.parametrize("state", [JobState.CANCELED, JobState.ABORTED])
def test_failed_job_classification(
    state: JobState, reasons: list[str], fault: Fault, consumed: bool | None
) -> None:
    verdict = classify(state, (), (), reasons)
    assert verdict.fault is fault
    assert verdict.card_consumed is consumed
    assert verdict.card_printed is (None if consumed is None else False)
    assert verdict.operator_action


def test_new_reason_wins_over_stale_one() -> None:
    verdict = classify(JobState.CANCELED, (), ["media-jam"], ["media-jam", "cover-open"])
    assert verdict.fault is Fault.COVER_OPEN


def test_ribbon_out_with_falling_level_consumed_the_card() -> None:
    before = [Marker("Ribbon", 40)]
    after = [Marker("Ribbon", 0)]
    verdict = classify(
        JobState.CANCELED, (), (), ["marker-supply-empty"], markers_before=before,
        markers_after=after,
    )  # fmt: skip
    assert verdict.fault is Fault.RIBBON_OUT and verdict.card_consumed is True
    still = classify(JobState.CANCELED, (), (), ["marker-supply-empty"],
                     markers_before=after, markers_after=after)  # fmt: skip
    assert still.card_consumed is False


@given(st.lists(REASON, min_size=1, max_size=6))
def test_fault_priority_is_the_table_order(reasons: list[str]) -> None:
    fault = fault_from_reasons(reasons)
    order = [r for r, _ in REASON_FAULTS]
    present = [r for r in order if r in reasons]
    expected = dict(REASON_FAULTS)[present[0]] if present else None
    assert fault is expected


def _outcome(fault: Fault | None, consumed: bool | None, job_id: int | None = 7,
             reasons: tuple[str, ...] = ()) -> PrintOutcome:  # fmt: skip
    return PrintOutcome(
        printer="Q", job_id=job_id, job_state=JobState.CANCELED, card_consumed=consumed,
        card_printed=fault is None, fault=fault, operator_action=fault is not None,
        printer_state_reasons=reasons,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "cls", "family"),
    [
        (Fault.JAM, MediaJamError, MediaError),
        (Fault.RIBBON_OUT, RibbonOutError, MediaError),
        (Fault.COVER_OPEN, CoverOpenError, MediaError),
        (Fault.MEDIA_EMPTY, MediaEmptyError, MediaError),
        (Fault.PRINTER_GONE, PrinterGoneError, PrinterUnavailableError),
        (Fault.UNKNOWN, JobFailedError, JobFailedError),
    ],
)
def test_error_for_each_fault(
    fault: Fault, cls: type[PrinterError], family: type[PrinterError]
) -> None:
    outcome = _outcome(fault, FAULT_CONSUMES[fault])
    err = error_for(outcome)
    assert type(err) is cls and isinstance(err, family) and isinstance(err, PrinterError)
    assert err.card_consumed is FAULT_CONSUMES[fault]
    assert err.outcome is outcome
    assert "job 7" in str(err)
    with pytest.raises(cls):
        outcome.raise_for_fault()


def test_rejected_errors() -> None:
    queue = error_for(_outcome(Fault.REJECTED, False, job_id=None), QueueRejectingError)
    assert isinstance(queue, QueueRejectingError) and queue.card_consumed is False
    assert queue.retryable
    paused = error_for(_outcome(Fault.REJECTED, False, reasons=("paused",)))
    assert isinstance(paused, QueueRejectingError)
    refused = error_for(_outcome(Fault.REJECTED, False))
    assert isinstance(refused, JobRejectedError) and not refused.retryable


def test_good_outcome_has_no_error() -> None:
    good = _outcome(None, True)
    assert good.ok and good.error() is None and good.raise_for_fault() is good


def test_error_defaults_and_overrides() -> None:
    assert MediaJamError("x").card_consumed is True
    assert PrinterGoneError("x").card_consumed is None
    assert RibbonOutError("x", card_consumed=True).card_consumed is True
    assert PrinterGoneError("x", card_consumed=False, retryable=False).retryable is False


def test_marker_levels() -> None:
    assert Marker("R", 5, low_level=10).low
    assert not Marker("R", -2, low_level=10).known
    outcome = PrintOutcome("Q", 1, JobState.COMPLETED, True, True, None, False,
                           markers_before=(Marker("R", 50),), markers_after=(Marker("R", 45),))
    assert outcome.ribbon_spent is True
    assert _outcome(None, True).ribbon_spent is None
