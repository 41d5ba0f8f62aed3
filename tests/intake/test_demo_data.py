"""The demo batch is one an office would recognise: children without titles, WNA portraits on
orange, and a few records held for review so that the review workflow can be tried."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from printsrv.config import Settings
from printsrv.media import expected_background_colour, photo_background_colour
from printsrv.synthetic import KIA, WNA, synthetic_residents

TODAY = date(2026, 12, 5)
TITLES = re.compile(r"\b(H|HJ|DRS|IR|DR|PROF)\.|, [A-Z]\.|, S\.|, M\.|, A\.MD\.")


def test_children_carry_no_titles_and_wna_photos_are_orange() -> None:
    residents = list(synthetic_residents(3000, seed=7, today=TODAY))
    kia = [r for r in residents if r.record["card_type"] == KIA]
    wna = [r for r in residents if r.record["kewarganegaraan"] == WNA]
    adults = [r for r in residents if r.record["card_type"] != KIA]
    assert kia and wna
    assert any(TITLES.search(r.record["nama"]) for r in adults)  # the pattern does find titles
    assert not [r.record["nama"] for r in kia if TITLES.search(r.record["nama"])]
    for r in wna[:10]:
        assert photo_background_colour(r.photo_jpeg or b"") == "orange"
        born = date.fromisoformat(r.record["tanggal_lahir"])
        assert expected_background_colour(born.year, wna=True) == "orange"


def test_held_records_are_held_at_intake(settings: Settings, tmp_path: Path) -> None:
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch

    batch = write_demo_batch(settings, 12, tmp_path / "b", seed=3, batch_id="HELD-1",
                             office_codes=["35.26.01"], held=2)
    result = import_batch(settings, batch)
    assert result.accepted and result.imported == 12 and result.held == 2
    assert all("tanggal" in h["reason"].lower() or "lahir" in h["reason"].lower()
               for h in result.holds), result.holds
