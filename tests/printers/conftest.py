"""Fixtures for the printers tests: a card PDF, the real CUPS stack, backend harnesses."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from printers.api import CardPrinter
from printers.directory import DirectoryPrinter
from printers.profiles import get_profile

CARD_W = 85.6 * mm
CARD_H = 53.98 * mm


def make_card_pdf(path: Path, sides: int = 2) -> Path:
    """A landscape ID-1 card PDF, one page per side."""
    pdf = canvas.Canvas(str(path), pagesize=(CARD_W, CARD_H))
    for side in range(sides):
        pdf.setFillColorRGB(0.2, 0.4, 0.8)
        pdf.rect(0, 0, CARD_W, CARD_H, fill=1, stroke=0)
        pdf.setFillColorRGB(0, 0, 0)
        pdf.drawString(4 * mm, 4 * mm, f"PROVINSI TEST side {side + 1}")
        pdf.showPage()
    pdf.save()
    return path


@pytest.fixture(scope="session")
def card_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-sided card PDF shared by the session."""
    return make_card_pdf(tmp_path_factory.mktemp("card") / "card.pdf")


@pytest.fixture(scope="session")
def simplex_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-sided card PDF."""
    return make_card_pdf(tmp_path_factory.mktemp("card") / "simplex.pdf", sides=1)


@pytest.fixture(scope="session")
def cups_stack() -> Iterator[object]:
    """One private cupsd with two virtual card printers for the whole session."""
    from printsrv.devstack.cups import CupsStack, missing_tools

    missing = missing_tools()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CUPS stack required in CI but not installed: {missing}")
        pytest.skip(f"CUPS stack not installed: {missing}")
    with CupsStack(printers=["Card1", "Card2"], ribbon_cards=20) as stack:
        yield stack


@dataclass
class Harness:
    """A backend under contract test plus its simulation controls."""

    printer: CardPrinter
    inject: Callable[[str], object]
    clear: Callable[[], None]
    refill: Callable[[], None]


@pytest.fixture(params=["directory", pytest.param("cups", marks=pytest.mark.realstack)])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Each backend of the :class:`printers.api.CardPrinter` port, faults cleared."""
    if request.param == "directory":
        printer = DirectoryPrinter(
            tmp_path / "out", get_profile("virtual-ipp-card"), name="Dir1", ribbon_cards=20
        )
        yield Harness(printer, printer.inject_fault, printer.clear_faults,
                      lambda: printer.simulator.refill())  # fmt: skip
        return
    stack = request.getfixturevalue("cups_stack")
    queue = "Card2"
    stack.clear_faults(queue)
    stack.refill(queue)
    yield Harness(
        stack.open_printer(queue, timeout=30),
        lambda reason: stack.inject_fault(queue, reason),
        lambda: stack.clear_faults(queue),
        lambda: stack.refill(queue),
    )
    stack.clear_faults(queue)
    stack.refill(queue)
