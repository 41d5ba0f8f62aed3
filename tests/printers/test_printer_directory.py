"""The directory printer and the card simulator behind both virtual printers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printers.api import Fault
from printers.directory import DirectoryPrinter
from printers.documents import check_card_document, count_pages
from printers.errors import (
    JobRejectedError,
    MediaEmptyError,
    MediaJamError,
    QueueRejectingError,
    RibbonOutError,
)
from printers.profiles import get_profile
from printers.virtual.simulator import CardSimulator

REPO = Path(__file__).resolve().parents[2]


def make_printer(path: Path, **kw: int) -> DirectoryPrinter:
    return DirectoryPrinter(path, get_profile("virtual-ipp-card"), name="Dir", **kw)


def test_writes_each_card(tmp_path: Path, card_pdf: Path) -> None:
    printer = make_printer(tmp_path)
    first = printer.print_card(card_pdf, title="NIK 3171/ok")
    second = printer.print_card(card_pdf.read_bytes())
    assert first.document == tmp_path / "000001-NIK_3171_ok.pdf"
    assert first.document.read_bytes() == card_pdf.read_bytes()
    assert second.job_id == 2 and second.document is not None and second.document.exists()


def test_ribbon_runs_out_before_feeding(tmp_path: Path, card_pdf: Path) -> None:
    printer = make_printer(tmp_path, ribbon_cards=2)
    levels = [printer.print_card(card_pdf).markers_after[0].level for _ in range(2)]
    assert levels == [50, 0]
    with pytest.raises(RibbonOutError) as err:
        printer.print_card(card_pdf)
    assert err.value.card_consumed is False
    assert err.value.outcome is not None and err.value.outcome.fault is Fault.RIBBON_OUT


def test_simplex_card(tmp_path: Path, simplex_pdf: Path, card_pdf: Path) -> None:
    printer = make_printer(tmp_path, ribbon_cards=1)
    assert printer.print_card(simplex_pdf, duplex=False).ok  # YMCKOK: one set per card
    with pytest.raises(JobRejectedError, match="2 pages"):
        printer.print_card(card_pdf, duplex=False)  # would print two cards


def test_page_count(card_pdf: Path, simplex_pdf: Path) -> None:
    assert count_pages(card_pdf.read_bytes()) == 2
    assert count_pages(simplex_pdf.read_bytes()) == 1
    assert count_pages(b"GIF89a") is None
    check_card_document(card_pdf.read_bytes(), duplex=True, printer="P")
    with pytest.raises(JobRejectedError) as err:
        check_card_document(b"not pdf", duplex=True, printer="P")
    assert err.value.card_consumed is False and not err.value.retryable


def test_hopper_empty(tmp_path: Path, card_pdf: Path) -> None:
    printer = make_printer(tmp_path, cards=1)
    assert printer.print_card(card_pdf).ok
    with pytest.raises(MediaEmptyError) as err:
        printer.print_card(card_pdf)
    assert err.value.card_consumed is False
    printer.simulator.refill(ribbon=False, cards=5)
    assert printer.print_card(card_pdf).ok


def test_fault_mid_batch_and_state_survives_reopen(tmp_path: Path, card_pdf: Path) -> None:
    printer = make_printer(tmp_path)
    printer.inject_fault("jam", after_cards=1)
    assert printer.print_card(card_pdf).ok
    again = make_printer(tmp_path)  # another process would see the same state
    with pytest.raises(MediaJamError):
        again.print_card(card_pdf)
    assert again.simulator.state()["cards_spoiled"] == 1
    again.clear_faults()
    assert printer.print_card(card_pdf).ok


def test_not_a_pdf_and_paused(tmp_path: Path) -> None:
    printer = make_printer(tmp_path)
    with pytest.raises(JobRejectedError):
        printer.print_card(b"hello")
    printer.enabled = False
    with pytest.raises(QueueRejectingError) as err:
        printer.print_card(b"%PDF-1.4\n")
    assert err.value.card_consumed is False


def test_unknown_fault_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        make_printer(tmp_path).inject_fault("fire")


def _cardsim(state: Path, doc: Path, sides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IPP_SIDES": sides, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "printers.virtual.cardsim", "--state", str(state), str(doc)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_cardsim_command_protocol(tmp_path: Path, card_pdf: Path) -> None:
    sim = CardSimulator(tmp_path)
    sim.initialise(ribbon_panels=12, panels_simplex=6, panels_duplex=6, cards=10)
    good = _cardsim(tmp_path, card_pdf, "two-sided-long-edge")
    assert good.returncode == 0
    assert "ATTR: marker-levels=50" in good.stderr
    assert "ATTR: marker-names='Ribbon YMCKOK'" in good.stderr
    sim.inject_fault("cover-open")
    bad = _cardsim(tmp_path, card_pdf, "one-sided")
    assert bad.returncode == 1
    assert "STATE: +cover-open" in bad.stderr.splitlines()
    record = json.loads((tmp_path / "jobs" / "2.json").read_text())
    assert record["reason"] == "cover-open" and record["env"]["IPP_SIDES"] == "one-sided"
    sim.clear_faults()
    assert _cardsim(tmp_path, card_pdf, "one-sided").returncode == 0
    empty = _cardsim(tmp_path, card_pdf, "one-sided")
    assert empty.returncode == 1 and "STATE: +marker-supply-empty" in empty.stderr


@given(
    st.lists(
        st.one_of(st.booleans(), st.sampled_from(["jam", "ribbon-out", "cover-open", "clear"])),
        max_size=25,
    )
)
@settings(max_examples=40, deadline=None)
def test_simulator_accounting(steps: list[bool | str]) -> None:
    """Every card is printed, spoiled or still in the hopper; the ribbon never grows."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sim = CardSimulator(tmp)
        sim.initialise(ribbon_panels=60, panels_simplex=6, panels_duplex=6, cards=12)
        level = sim.level()
        for step in steps:
            if step == "clear":
                sim.clear_faults()
                continue
            if isinstance(step, str):
                sim.inject_fault(step)
                continue
            result = sim.run_card(duplex=step)
            assert result.level_after <= result.level_before == level
            assert result.ok == (result.reason is None)
            if result.ok:
                assert result.card_consumed
            level = result.level_after
        state = sim.state()
        assert state["cards_printed"] + state["cards_spoiled"] + state["cards_in_hopper"] == 12
        assert state["jobs"] == len(sim.jobs())
