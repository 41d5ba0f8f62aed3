"""One contract for every :class:`printers.api.CardPrinter` backend (directory, CUPS)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from printers.api import CardPrinter, Fault, PrinterStatus
from printers.errors import CoverOpenError, MediaJamError, PrinterError, RibbonOutError

if TYPE_CHECKING:
    from conftest import Harness  # tests/printers/conftest.py


class TestCardPrinterContract:
    def test_is_a_card_printer(self, harness: Harness) -> None:
        assert isinstance(harness.printer, CardPrinter)
        assert harness.printer.profile.id == "virtual-ipp-card"

    def test_status(self, harness: Harness) -> None:
        status = harness.printer.status()
        assert isinstance(status, PrinterStatus)
        assert status.name == harness.printer.name
        assert status.accepting_jobs

    def test_good_card(self, harness: Harness, card_pdf: Path) -> None:
        outcome = harness.printer.print_card(card_pdf, title="good card")
        assert outcome.ok
        assert outcome.fault is None
        assert outcome.card_consumed is True and outcome.card_printed is True
        assert not outcome.operator_action
        assert outcome.job_id is not None
        assert outcome.printer == harness.printer.name
        assert outcome.markers_after and outcome.markers_after[0].known

    def test_bytes_document(self, harness: Harness, card_pdf: Path) -> None:
        assert harness.printer.print_card(card_pdf.read_bytes(), title="bytes").ok

    def test_levels_fall_per_card(self, harness: Harness, card_pdf: Path) -> None:
        harness.printer.print_card(card_pdf)  # CUPS learns marker levels from a first job
        levels = [harness.printer.print_card(card_pdf).markers_after[0].level for _ in range(2)]
        assert levels[1] < levels[0] < 100
        assert harness.printer.status().markers[0].level == levels[1]

    @pytest.mark.parametrize(
        ("fault", "error", "kind", "consumed"),
        [
            ("media-jam", MediaJamError, Fault.JAM, True),
            ("ribbon-out", RibbonOutError, Fault.RIBBON_OUT, True),
            ("cover-open", CoverOpenError, Fault.COVER_OPEN, False),
        ],
    )
    def test_fault_then_recovery(
        self,
        harness: Harness,
        card_pdf: Path,
        fault: str,
        error: type[PrinterError],
        kind: Fault,
        consumed: bool,
    ) -> None:
        harness.printer.print_card(card_pdf)
        harness.inject(fault)
        with pytest.raises(error) as err:
            harness.printer.print_card(card_pdf)
        outcome = err.value.outcome
        assert outcome is not None
        assert outcome.fault is kind
        assert outcome.operator_action
        assert outcome.card_printed is not True  # None when CUPS said completed anyway
        assert err.value.card_consumed is consumed == outcome.card_consumed
        assert not outcome.ok
        # A real printer keeps failing until an operator clears it.
        with pytest.raises(error):
            harness.printer.print_card(card_pdf)
        harness.clear()
        harness.refill()
        again = harness.printer.print_card(card_pdf)
        assert again.ok
        assert kind.value not in again.printer_state_reasons

    def test_find_job(self, harness: Harness, card_pdf: Path) -> None:
        title = f"find-{uuid.uuid4().hex[:8]}"
        printed = harness.printer.print_card(card_pdf, title=title)
        found = harness.printer.find_job(title)
        assert found is not None and found.ok and found.job_id == printed.job_id
        assert harness.printer.find_job("no-such-title-" + title) is None
        jam_title = f"jam-{title}"
        harness.inject("jam")
        with pytest.raises(MediaJamError):
            harness.printer.print_card(card_pdf, title=jam_title)
        lost = harness.printer.find_job(jam_title)
        assert lost is not None and lost.fault is Fault.JAM and lost.card_consumed is True
