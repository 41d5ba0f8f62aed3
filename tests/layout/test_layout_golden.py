"""Golden PNGs of the shipped templates' samples, compared with a pixel tolerance.

Regenerate after an intended change with ``KTP_UPDATE_GOLDEN=1 pytest tests/layout`` and look at
the images before committing them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from printsrv.layout import render_card, sample_card, template_names
from tests.layout.conftest import ISSUE

GOLDEN = Path(__file__).parent / "golden"
#: A pixel "differs" when a channel moves by more than this many levels...
PIXEL_TOLERANCE = 40
#: ...and the card matches when at most this fraction of pixels differ.
MAX_DIFFERING = 0.0005


@pytest.mark.parametrize("name", ["kia", "ktp-el", "ktp-el-wna"])
def test_golden_png(name: str) -> None:
    assert name in template_names()
    png = render_card(sample_card(name, ISSUE), png=True).png
    assert png is not None
    path = GOLDEN / f"{name}.png"
    if os.environ.get("KTP_UPDATE_GOLDEN") == "1":
        path.write_bytes(png)
        return
    expected = Image.open(path).convert("RGB")
    actual = Image.open(io.BytesIO(png)).convert("RGB")
    assert actual.size == expected.size == (1011, 638)
    diff = ImageChops.difference(actual, expected).convert("L")
    differing = sum(diff.point(lambda v: 255 if v > PIXEL_TOLERANCE else 0).histogram()[255:])
    fraction = differing / (actual.width * actual.height)
    assert fraction <= MAX_DIFFERING, f"{name}: {fraction:.4%} of pixels differ from {path}"


def test_golden_detects_a_change() -> None:
    """The tolerance is not so loose that a moved line of text passes."""
    from dataclasses import replace

    card = sample_card("ktp-el", ISSUE)
    other = replace(card, fields={**card.fields, "kel_desa": "BURNEH"})
    png = render_card(other, png=True).png or b""
    expected = Image.open(GOLDEN / "ktp-el.png").convert("RGB")
    diff = ImageChops.difference(Image.open(io.BytesIO(png)).convert("RGB"), expected)
    differing = sum(diff.convert("L").point(lambda v: 255 if v > PIXEL_TOLERANCE else 0)
                    .histogram()[255:])  # fmt: skip
    assert differing / (expected.width * expected.height) > MAX_DIFFERING
