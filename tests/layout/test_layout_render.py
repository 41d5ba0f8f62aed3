"""Rendering: exact page boxes, embedded subset fonts, JPEG pass-through, errors name fields."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace

import pytest
from PIL import Image

from printsrv.cardinput import CardInput
from printsrv.errors import PrintSrvError
from printsrv.layout import RenderError, load_template, render_card, sample_card, template_for
from printsrv.layout.sample import synthetic_photo

PT = 72 / 25.4


def media_box(pdf: bytes) -> tuple[float, ...]:
    boxes = re.findall(rb"/MediaBox \[\s*([\d. ]+)\]", pdf)
    assert len(boxes) == 1
    return tuple(float(v) for v in boxes[0].split())


def test_pdf_page_is_exactly_id1(ktp: CardInput) -> None:
    result = render_card(ktp)
    assert result.pdf.startswith(b"%PDF-")
    x0, y0, x1, y1 = media_box(result.pdf)
    assert (x0, y0) == (0, 0)
    assert x1 == pytest.approx(85.60 * PT, abs=1e-3)  # 242.646 pt
    assert y1 == pytest.approx(53.98 * PT, abs=1e-3)  # 153.014 pt
    assert result.page_mm == (85.60, 53.98)


def test_pdf_page_box_with_pdfinfo(ktp: CardInput, tmp_path) -> None:
    path = tmp_path / "card.pdf"
    path.write_bytes(render_card(ktp, page="bleed", bleed_mm=(86.02, 54.86)).pdf)
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Page size:\s+243\.8\d* x 155\.5\d* pts", out), out


def test_bleed_needs_a_big_enough_area(ktp: CardInput) -> None:
    with pytest.raises(RenderError) as info:
        render_card(ktp, page="bleed", bleed_mm=(80.0, 50.0))
    assert info.value.field == "page"


def test_fonts_are_embedded_subsets(ktp: CardInput) -> None:
    pdf = render_card(ktp).pdf
    names = re.findall(rb"/BaseFont /([A-Za-z0-9+-]+)", pdf)
    assert names and all(re.match(rb"[A-Z]{6}\+", n) for n in names), names
    assert pdf.count(b"/FontFile2") == len(names) == 3
    assert b"Helvetica" not in pdf


def test_png_preview_is_300_dpi(ktp: CardInput) -> None:
    image = Image.open(io.BytesIO(render_card(ktp, png=True).png or b""))
    assert image.size == (1011, 638)
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_fitting_jpeg_is_embedded_as_is(
    make_card: Callable[..., CardInput], box_photo: bytes
) -> None:
    result = render_card(make_card(photo=box_photo))
    assert result.photo_passthrough
    assert box_photo in result.pdf
    assert b"/DCTDecode" in result.pdf


def test_other_photos_are_cropped_to_the_box(make_card: Callable[..., CardInput]) -> None:
    wide = synthetic_photo(3, "RED", (800, 500))  # landscape: cropped, not squeezed
    result = render_card(make_card(photo=wide), png=True)
    assert not result.photo_passthrough
    (box,) = result.boxes["photo"]
    assert (box.w, box.h) == (20.0, 26.67)
    assert b"/Width 236" in result.pdf and b"/Height 315" in result.pdf


def test_signature_keeps_transparency(ktp: CardInput, white_signature: bytes) -> None:
    for card in (ktp, replace(ktp, signature_png=white_signature)):
        result = render_card(card, png=True)
        assert b"/SMask" in result.pdf
        image = Image.open(io.BytesIO(result.png or b"")).convert("RGB")
        (box,) = result.boxes["signature"]
        px = 300 / 25.4
        crop = image.crop((round(box.x * px), round(box.y * px), round((box.x + box.w) * px),
                           round((box.y + box.h) * px)))  # fmt: skip
        colours = {c for _, c in crop.getcolors(1 << 20) or []}
        assert (255, 255, 255) in colours  # no white patch hides the blank...
        assert min(sum(c) for c in colours) < 120  # ...and the ink is dark


def test_background_rule_warns(make_card: Callable[..., CardInput]) -> None:
    ok = render_card(make_card(tanggal_lahir="1999-08-05"))
    assert ok.warnings == ()
    wrong = render_card(make_card(tanggal_lahir="2000-08-05", nik="3526014508000001"))
    assert wrong.warnings == (
        "photo background looks RED, expected BLUE (birth year 2000 is even)",
    )


def test_missing_field_is_named(make_card: Callable[..., CardInput]) -> None:
    with pytest.raises(RenderError) as info:
        render_card(make_card(kecamatan=None))
    assert info.value.field == "kecamatan"
    assert isinstance(info.value, PrintSrvError)
    assert "kecamatan" in str(info.value)


def test_unusable_images_are_named(make_card: Callable[..., CardInput]) -> None:
    with pytest.raises(RenderError) as info:
        render_card(make_card(photo=b"not a jpeg"))
    assert info.value.field == "photo"
    with pytest.raises(RenderError) as info:
        render_card(make_card(signature=b""))
    assert info.value.field == "signature"


def test_values_are_upper_case(make_card: Callable[..., CardInput]) -> None:
    from printsrv.layout.compose import compose

    layout = compose(load_template("ktp-el"), make_card(nama="Siti  aminah"))
    assert "SITI AMINAH" in [t.text for t in layout.texts]


def test_template_selection(ktp: CardInput) -> None:
    assert template_for(ktp) == "ktp-el"
    assert template_for(sample_card("ktp-el-wna")) == "ktp-el-wna"
    assert template_for(sample_card("kia")) == "kia"


def test_wna_prints_nationality_and_dates() -> None:
    from printsrv.layout.compose import compose

    texts = [t.text for t in compose(load_template("ktp-el-wna"), sample_card("ktp-el-wna")).texts]
    assert {"JPN", "14-03-2031", "MARRIED", "LECTURER"} <= set(texts)


def test_kia_photo_only_from_age_five() -> None:
    card = sample_card("kia")
    assert "photo" in render_card(card).boxes
    young = replace(card, fields={**card.fields, "tanggal_lahir": "2023-01-10"})
    result = render_card(young)
    assert "photo" not in result.boxes
    assert any("under 5" in w for w in result.warnings)


def test_labels_preprinted_prints_values_only(ktp: CardInput) -> None:
    from printsrv.layout.compose import compose

    tpl = load_template("ktp-el")
    plain = [t.text for t in compose(replace(tpl, labels_preprinted=True), ktp).texts]
    assert "Nama" not in plain and ":" not in plain and "SITI NURHALIZA BINTI ABDULLAH" in plain
    assert "Nama" in [t.text for t in compose(tpl, ktp).texts]


def test_ink_coverage_is_a_fraction(ktp: CardInput) -> None:
    coverage = render_card(ktp).ink_coverage
    assert set(coverage) == {"C", "M", "Y", "K"}
    assert all(0 < v < 0.5 for v in coverage.values())
    # Red photo background: magenta and yellow outweigh cyan.
    assert coverage["M"] > coverage["C"] and coverage["Y"] > coverage["C"]


def test_render_command_sample(tmp_path) -> None:
    from printsrv.cli import main

    out = tmp_path / "card.pdf"
    with pytest.raises(SystemExit) as info:
        main(["render", "--sample", "--out", str(out)])
    assert info.value.code == 0
    assert media_box(out.read_bytes())[2] == pytest.approx(242.646, abs=1e-3)
