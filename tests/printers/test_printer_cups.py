"""CupsPrinter through the real parts: private cupsd + ippeveprinter + cardsim, via pycups."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from printers.api import Fault, JobState
from printers.cups import CupsPrinter
from printers.errors import (
    PrinterError,
    PrinterGoneError,
    PrintServerUnavailableError,
    QueueRejectingError,
)
from printers.profiles import get_profile
from printsrv.devstack.cups import CupsStack, pid_alive

pytestmark = pytest.mark.realstack
QUEUE = "Card1"


@pytest.fixture
def stack(cups_stack: CupsStack) -> Iterator[CupsStack]:
    """The session stack with Card1 healthy before and after each test."""
    yield cups_stack
    (cups_stack.printer(QUEUE).state_dir / "delay").unlink(missing_ok=True)
    cups_stack.restart_printer(QUEUE)
    cups_stack.lp("cupsenable", QUEUE)
    cups_stack.lp("cupsaccept", QUEUE)
    cups_stack.clear_faults(QUEUE)
    cups_stack.refill(QUEUE)


def pdf_page_size(path: Path) -> tuple[float, float]:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    match = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", out.stdout)
    assert match, out.stdout
    return float(match[1]), float(match[2])


def test_card_arrives_unscaled_on_card_media(stack: CupsStack, card_pdf: Path) -> None:
    printer = stack.open_printer(QUEUE)
    outcome = printer.print_card(card_pdf, title="unscaled", duplex=True)
    assert outcome.ok and outcome.job_state is JobState.COMPLETED
    received = stack.received_documents(QUEUE)[-1]
    assert received.name.startswith(f"{stack.printer(QUEUE).simulator.state()['jobs']}-")
    width, height = sorted(pdf_page_size(received))
    assert width == pytest.approx(153.01, abs=0.5)  # 53.98 mm
    assert height == pytest.approx(242.65, abs=0.5)  # 85.60 mm
    pages = subprocess.run(["pdfinfo", str(received)], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+2\b", pages)
    sent = printer.job_attributes(outcome.job_id or 0)
    assert sent["print-scaling"] == "none"
    assert sent["media"] == "53.98x85.6mm.Borderless"
    assert sent["sides"] == "two-sided-long-edge"
    env = stack.printer(QUEUE).simulator.jobs()[-1]["env"]
    assert "x-dimension=5398 y-dimension=8560" in env["IPP_MEDIA_COL"]
    assert env["IPP_SIDES"] == "two-sided-long-edge"


def test_markers_appear_after_first_job_and_fall_per_card(card_pdf: Path) -> None:
    with CupsStack(printers=["Fresh"], ribbon_cards=10) as own:
        printer = own.open_printer("Fresh")
        assert printer.status().markers == ()  # CUPS learns supplies from a first job
        levels = []
        for _ in range(3):
            outcome = printer.print_card(card_pdf)
            levels.append(outcome.markers_after[0].level)
        assert levels == [90, 80, 70]
        marker = printer.status().markers[0]
        assert (marker.name, marker.type, marker.low_level) == ("Ribbon YMCKOK", "ribbon-wax", 10)
        assert outcome.ribbon_spent is True
        pids = [own.cupsd_pid, own.printer("Fresh").pid]
    assert not any(pid_alive(p) for p in pids if p)


def test_printer_killed_mid_job_is_not_a_good_card(stack: CupsStack, card_pdf: Path) -> None:
    printer = stack.open_printer(QUEUE, timeout=20)
    printer.print_card(card_pdf)
    state_dir = stack.printer(QUEUE).state_dir
    (state_dir / "busy").unlink(missing_ok=True)
    stack.set_card_delay(QUEUE, 5)
    result: dict[str, Any] = {}

    def submit() -> None:
        try:
            result["outcome"] = printer.print_card(card_pdf, title="gone")
        except PrinterError as exc:
            result["error"] = exc

    worker = threading.Thread(target=submit)
    worker.start()
    deadline = time.monotonic() + 10
    while not (state_dir / "busy").exists():
        assert time.monotonic() < deadline, "card never reached the printer"
        time.sleep(0.05)
    stack.kill_printer(QUEUE)
    worker.join(30)
    assert "outcome" not in result, f"reported as a good card: {result.get('outcome')}"
    error = result["error"]
    assert isinstance(error, PrinterGoneError)
    assert error.outcome is not None and error.outcome.fault is Fault.PRINTER_GONE
    assert error.card_consumed is None and error.outcome.card_printed is None
    assert error.outcome.operator_action


def test_printer_down_before_the_job(stack: CupsStack, card_pdf: Path) -> None:
    stack.kill_printer(QUEUE)
    printer = stack.open_printer(QUEUE)
    with pytest.raises(PrinterGoneError) as err:
        printer.print_card(card_pdf, timeout=4)
    assert err.value.card_consumed is False
    outcome = err.value.outcome
    assert outcome is not None and outcome.fault is Fault.PRINTER_GONE
    # The job was cancelled: it must not print when the printer comes back.
    assert printer.job_attributes(outcome.job_id or 0)["job-state"] == JobState.CANCELED


def test_rejecting_queue(stack: CupsStack, card_pdf: Path) -> None:
    stack.lp("cupsreject", QUEUE)
    printer = stack.open_printer(QUEUE)
    assert not printer.status().accepting_jobs
    with pytest.raises(QueueRejectingError) as err:
        printer.print_card(card_pdf)
    assert err.value.card_consumed is False and err.value.retryable
    assert err.value.outcome is not None and err.value.outcome.job_id is None
    assert err.value.outcome.fault is Fault.REJECTED


def test_disabled_queue(stack: CupsStack, card_pdf: Path) -> None:
    stack.lp("cupsdisable", QUEUE)
    printer = stack.open_printer(QUEUE)
    status = printer.status()
    assert "paused" in status.reasons and not status.ready
    with pytest.raises(QueueRejectingError) as err:
        printer.print_card(card_pdf)
    assert err.value.card_consumed is False
    stack.lp("cupsenable", QUEUE)
    assert printer.print_card(card_pdf).ok


def test_no_cupsd_and_no_queue(stack: CupsStack, tmp_path: Path, card_pdf: Path) -> None:
    gone = CupsPrinter(QUEUE, get_profile("virtual-ipp-card"), server=str(tmp_path / "no.sock"))
    with pytest.raises(PrintServerUnavailableError) as err:
        gone.print_card(card_pdf)
    assert err.value.card_consumed is False
    missing = CupsPrinter("NoSuchQueue", get_profile("virtual-ipp-card"), server=stack.server)
    with pytest.raises(PrintServerUnavailableError, match="NoSuchQueue"):
        missing.status()


def test_fault_after_some_cards(stack: CupsStack, card_pdf: Path) -> None:
    printer = stack.open_printer(QUEUE)
    stack.inject_fault(QUEUE, "jam", after_cards=2)
    assert printer.print_card(card_pdf).ok
    assert printer.print_card(card_pdf).ok
    with pytest.raises(PrinterError) as err:
        printer.print_card(card_pdf)
    assert err.value.outcome is not None and err.value.outcome.fault is Fault.JAM
    assert stack.printer(QUEUE).simulator.state()["cards_spoiled"] >= 1


def test_queue_disabled_while_the_job_waits(
    stack: CupsStack, card_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printer = stack.open_printer(QUEUE, timeout=30)
    healthy = printer.status()
    stack.lp("cupsdisable", QUEUE)
    real = printer._status_from
    calls = iter([healthy])
    # The queue was stopped between our check and the submission: the job waits, pending.
    monkeypatch.setattr(printer, "_status_from", lambda attrs: next(calls, None) or real(attrs))
    with pytest.raises(QueueRejectingError) as err:
        printer.print_card(card_pdf)
    outcome = err.value.outcome
    assert outcome is not None and outcome.job_id is not None
    assert err.value.card_consumed is False and outcome.fault is Fault.REJECTED
    # Cancelled, so it cannot print when the queue is enabled again.
    assert printer.job_attributes(outcome.job_id)["job-state"] == JobState.CANCELED


def test_queue_refuses_at_submission(
    stack: CupsStack, card_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printer = stack.open_printer(QUEUE)
    healthy = printer.status()
    stack.lp("cupsreject", QUEUE)
    # The queue started rejecting between our check and the submission.
    monkeypatch.setattr(printer, "_status_from", lambda attrs: healthy)
    with pytest.raises(QueueRejectingError, match="not accepting") as err:
        printer.print_card(card_pdf)
    assert err.value.card_consumed is False and err.value.outcome is not None
    assert err.value.outcome.job_id is None


def test_simplex_card_through_cups(stack: CupsStack, simplex_pdf: Path) -> None:
    printer = stack.open_printer(QUEUE)
    outcome = printer.print_card(simplex_pdf, duplex=False)
    assert outcome.ok
    assert printer.job_attributes(outcome.job_id or 0)["sides"] == "one-sided"
