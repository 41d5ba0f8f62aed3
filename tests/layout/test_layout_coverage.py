"""Ink coverage: the per-element estimate against a 300 dpi raster of the whole card."""

from __future__ import annotations

from dataclasses import replace

import pytest

from printsrv.cardinput import CardInput
from printsrv.layout import load_template, render_card, sample_card, template_for
from printsrv.layout.compose import compose
from printsrv.layout.coverage import estimate_coverage
from printsrv.layout.raster import ink_coverage, rasterize
from printsrv.layout.sample import synthetic_photo, synthetic_signature
from tests.layout.conftest import ISSUE

#: Documented bound (docs/templates.md); the samples come out near 0.001.
MAX_ERROR = 0.01


def cards() -> list[CardInput]:
    out = [sample_card(name, ISSUE) for name in ("ktp-el", "ktp-el-wna", "kia")]
    base = out[0]
    for i, (background, size) in enumerate(
        [("BLUE", (236, 315)), ("RED", (300, 400)), ("BLUE", (800, 500)), ("RED", (120, 160))]
    ):
        out.append(replace(
            base,
            fields={**base.fields, "nama": "AHMAD " * i + "EKO", "alamat": "JL. " * i + "Y"},
            photo_jpeg=synthetic_photo(i, background, size),
            signature_png=synthetic_signature(i, transparent=bool(i % 2)),
        ))  # fmt: skip
    return out


@pytest.mark.parametrize("card", cards(), ids=lambda c: f"{c.card_type}-{c.fields['nama'][:12]}")
def test_estimate_matches_the_300_dpi_raster(card: CardInput) -> None:
    layout = compose(load_template(template_for(card)), card)
    reference = ink_coverage(rasterize(layout, 300))
    estimate = estimate_coverage(layout)
    assert set(estimate) == {"C", "M", "Y", "K"}
    for channel, value in reference.items():
        assert estimate[channel] == pytest.approx(value, abs=MAX_ERROR), channel


def test_render_card_reports_the_estimate(ktp: CardInput) -> None:
    result = render_card(ktp)
    assert result.ink_coverage == estimate_coverage(compose(load_template("ktp-el"), ktp))
    assert render_card(ktp, coverage=False).ink_coverage == {}


def test_more_text_more_black(ktp: CardInput) -> None:
    short = render_card(replace(ktp, fields={**ktp.fields, "alamat": "JL. A"}))
    long = render_card(replace(ktp, fields={**ktp.fields, "alamat": "JL. RAYA " * 8 + "SOCAH"}))
    assert long.ink_coverage["K"] > short.ink_coverage["K"]
