"""The built-in PDF writer checked with real tools: qpdf, pdffonts, pdfinfo, pdftotext, pdftoppm.

``golden/pdf-<name>.png`` are ``pdftoppm -r 300`` renderings of the shipped samples, first made
from the reportlab backend (the writer this one replaced); regenerate them with
``KTP_UPDATE_GOLDEN=1`` after an intended change, like the Pillow goldens.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageFilter, ImageStat

from printsrv.cardinput import CardInput
from printsrv.layout import RenderError, load_template, load_template_file, render_card, sample_card
from printsrv.layout.pdfwriter import font_objects
from printsrv.layout.template import Box
from tests.layout.conftest import ISSUE

GOLDEN = Path(__file__).parent / "golden"
PIXEL_TOLERANCE = 40
MAX_DIFFERING = 0.0005
TEMPLATES = ["kia", "ktp-el", "ktp-el-wna"]


def tool(*args: str, pdf: bytes) -> bytes:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} not installed")
    return subprocess.run([*args], input=pdf, capture_output=True, check=True).stdout


def run_on_file(tmp_path: Path, pdf: bytes, *args: str) -> str:
    """Run ``args`` on the PDF written to a file; ``pdftotext`` writes to stdout."""
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} not installed")
    path = tmp_path / "card.pdf"
    path.write_bytes(pdf)
    out = ["-"] if args[0] == "pdftotext" else []
    done = subprocess.run([*args, str(path), *out], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def pdftoppm(pdf: bytes) -> Image.Image:
    png = tool("pdftoppm", "-r", "300", "-png", "-singlefile", "-", pdf=pdf)
    return Image.open(io.BytesIO(png)).convert("RGB")


def same_drawing(a: Image.Image, b: Image.Image, photo: Box) -> bool:
    """``a`` and ``b`` draw the same card: the same pixels outside the photo (at most
    :data:`MAX_DIFFERING` of them differ), and inside it the same picture up to the scaler's
    rounding (one renderer scales the JPEG itself, the other gets it resampled)."""
    px = 300 / 25.4
    area = (round(photo.x * px), round(photo.y * px), round((photo.x + photo.w) * px),
            round((photo.y + photo.h) * px))  # fmt: skip
    blur = ImageFilter.GaussianBlur(3)  # what scalers differ in; a shift of 2 px is ~12
    inside = ImageStat.Stat(ImageChops.difference(a.crop(area).filter(blur),
                                                  b.crop(area).filter(blur))).mean
    a, b = a.copy(), b.copy()
    edge = (area[0] - 1, area[1] - 1, area[2] + 1, area[3] + 1)  # the clip's rounding
    for image in (a, b):
        image.paste((255, 255, 255), edge)
    return differing(a, b) <= MAX_DIFFERING and max(inside) < 6.0


def differing(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    diff = ImageChops.difference(a, b).convert("L")
    count = sum(diff.point(lambda v: 255 if v > PIXEL_TOLERANCE else 0).histogram()[255:])
    return count / (a.width * a.height)


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("page", ["card", "bleed"])
def test_qpdf_check_and_fonts(name: str, page: str, tmp_path: Path) -> None:
    card = sample_card(name, ISSUE)
    pdf = render_card(card, page=page, bleed_mm=(86.02, 54.86)).pdf  # type: ignore[arg-type]
    assert "No syntax or stream encoding errors" in run_on_file(tmp_path, pdf, "qpdf", "--check")
    rows = run_on_file(tmp_path, pdf, "pdffonts").splitlines()[2:]
    assert len(rows) == 3, rows
    for row in rows:
        name_, kind, *_ = row.split()
        emb, sub, uni = row.split()[-5:-2]
        assert re.match(r"[A-Z]{6}\+", name_) and kind == "TrueType", row
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row
    info = run_on_file(tmp_path, pdf, "pdfinfo")
    size = r"242\.646 x 153\.014" if page == "card" else r"243\.8\d* x 155\.5\d*"
    assert re.search(rf"Page size:\s+{size} pts", info), info


def test_text_is_extractable(ktp: CardInput, tmp_path: Path) -> None:
    text = run_on_file(tmp_path, render_card(ktp).pdf, "pdftotext", "-layout")
    assert "SITI NURHALIZA BINTI ABDULLAH" in text and "3526014508990001" in text
    assert "Tempat/Tgl Lahir" in text


@pytest.mark.parametrize("name", TEMPLATES)
def test_pdf_golden(name: str) -> None:
    """pdftoppm's rendering of the PDF matches the golden rendering."""
    actual = pdftoppm(render_card(sample_card(name, ISSUE)).pdf)
    path = GOLDEN / f"pdf-{name}.png"
    if os.environ.get("KTP_UPDATE_GOLDEN") == "1":
        actual.save(path)
        return
    expected = Image.open(path).convert("RGB")
    assert differing(actual, expected) <= MAX_DIFFERING, f"{name}: PDF differs from {path}"


def test_pdf_golden_detects_a_change(ktp: CardInput) -> None:
    other = replace(ktp, fields={**ktp.fields, "kel_desa": "BURNEH"})
    actual = pdftoppm(render_card(other).pdf)
    assert differing(actual, Image.open(GOLDEN / "pdf-ktp-el.png").convert("RGB")) > MAX_DIFFERING


@pytest.mark.parametrize("name", TEMPLATES)
def test_same_rendering_as_reportlab(name: str) -> None:
    """The reportlab backend (kept for comparison) and the built-in writer draw the same card."""
    card = sample_card(name, ISSUE)
    native = render_card(card)
    reference = pdftoppm(render_card(card, backend="reportlab").pdf)
    assert same_drawing(pdftoppm(native.pdf), reference, native.boxes["photo"][0])


def test_signature_is_transparent_in_the_pdf(ktp: CardInput, white_signature: bytes) -> None:
    for card in (ktp, replace(ktp, signature_png=white_signature)):
        result = render_card(card)
        image = pdftoppm(result.pdf)
        (box,) = result.boxes["signature"]
        px = 300 / 25.4
        left, top = round(box.x * px) + 2, round(box.y * px) + 2
        crop = image.crop((left, top, round((box.x + box.w) * px) - 2,
                           round((box.y + box.h) * px) - 2))  # fmt: skip
        colours = {c for _, c in crop.getcolors(1 << 20) or []}
        assert (255, 255, 255) in colours and min(sum(c) for c in colours) < 120


def test_output_is_deterministic(ktp: CardInput) -> None:
    assert render_card(ktp).pdf == render_card(ktp).pdf


def test_other_characters_extend_the_subset(
    make_card: Callable[..., CardInput], tmp_path: Path
) -> None:
    """A character outside printable ASCII gets a subset built for it, not a missing glyph."""
    result = render_card(make_card(nama="José Ñúñez"))
    assert "JOSÉ ÑÚÑEZ" in run_on_file(tmp_path, result.pdf, "pdftotext")
    assert "No syntax or stream encoding errors" in run_on_file(
        tmp_path, result.pdf, "qpdf", "--check"
    )
    base, extended = (re.findall(rb"/BaseFont /([A-Z]{6})\+LiberationSans/", pdf)
                      for pdf in (render_card(make_card()).pdf, result.pdf))  # fmt: skip
    assert base != extended  # another subset (another tag) for the extended set


def test_character_without_glyph_names_the_field(make_card: Callable[..., CardInput]) -> None:
    with pytest.raises(RenderError) as info:
        render_card(make_card(nama="SITI 李"))
    assert info.value.field == "nama"
    assert "李" in str(info.value)
    with pytest.raises(RenderError) as info:
        render_card(make_card(nik="35260145089900０1"))  # a full-width digit: OCR-B lacks it
    assert info.value.field == "nik"


def test_fonts_are_built_once(ktp: CardInput) -> None:
    render_card(ktp)
    before = font_objects.cache_info()
    render_card(replace(ktp, fields={**ktp.fields, "nama": "BUDI SANTOSO"}))
    after = font_objects.cache_info()
    assert after.misses == before.misses and after.hits > before.hits


def test_unknown_backend_is_refused(ktp: CardInput) -> None:
    with pytest.raises(RenderError) as info:
        render_card(ktp, backend="fpdf")  # type: ignore[arg-type]
    assert info.value.field == "backend"


def test_qr_code_matches_reportlab(ktp: CardInput, tmp_path: Path) -> None:
    """No shipped template has a QR code: one is added to a copy of ktp-el."""
    source = Path(load_template("ktp-el").folder) / "layout.toml"
    layout = tmp_path / "layout.toml"
    layout.write_text(
        source.read_text(encoding="utf-8").replace('"../fonts/', f'"{source.parent.parent}/fonts/')
        + '\n[[element]]\nkind = "qr"\nid = "qr"\nvalue = "{nik}"\nbox = [62.5, 0.5, 9.0, 9.0]\n'
        'ink = "#203040"\n',
        encoding="utf-8",
    )
    template = load_template_file(layout)
    native = render_card(ktp, template=template)
    assert "qr" in native.boxes
    assert "No syntax or stream encoding errors" in run_on_file(
        tmp_path, native.pdf, "qpdf", "--check"
    )
    reference = render_card(ktp, template=template, backend="reportlab")
    assert same_drawing(pdftoppm(native.pdf), pdftoppm(reference.pdf), native.boxes["photo"][0])
    without = render_card(ktp)
    assert native.ink_coverage["C"] > without.ink_coverage["C"]  # the QR ink is bluish


def test_many_cards_in_one_document_share_each_font_subset(
    make_card: Callable[..., CardInput], tmp_path: Path
) -> None:
    """PdfDocument: a page per card; each (font, extra characters) subset is written once and
    every page naming it points at the same objects; the pages read back in order."""
    import io

    from printsrv.layout import PdfDocument, render_page

    names = ["SITI AMINAH", "JOSÉ ÑÚÑEZ", "BUDI SANTOSO", "JOSÉ ÑÚÑEZ", "RENÉ"]
    out = io.BytesIO()
    document = PdfDocument(out, b"test")
    for name in names:
        document.add_page(render_page(make_card(nama=name)).page)
    document.close()
    pdf = out.getvalue()
    assert "No syntax or stream encoding errors" in run_on_file(tmp_path, pdf, "qpdf", "--check")
    text = run_on_file(tmp_path, pdf, "pdftotext")
    positions = [text.index(n) for n in names[:3]]
    assert positions == sorted(positions)
    assert "RENÉ" in text
    one = render_card(make_card()).pdf
    # ASCII subsets once, plus one extended subset per distinct set of extras (ÉÑÚ, É) of the
    # fonts those names use: far fewer than a set per page.
    assert pdf.count(b"/FontFile2") == one.count(b"/FontFile2") + 2
    assert re.search(rb"/Count 5>>", pdf)


def test_a_title_with_pdf_delimiters_stays_one_string() -> None:
    import io

    from printsrv.layout import PdfDocument

    out = io.BytesIO()
    document = PdfDocument(out, b"cards (a) \\ b")
    document.close()
    assert b"/Title(cards a  b)" in out.getvalue()


@pytest.mark.parametrize("size", [(300, 520), (520, 400)])  # taller / wider than the box
def test_a_larger_photo_is_scaled_and_clipped_by_the_page_as_a_resample_would_crop_it(
    make_card: Any, size: tuple[int, int]
) -> None:
    """A photo of other proportions is embedded as it is; the page shows the same part of it
    (centred as ``ImageOps.fit`` crops) as the resampled photo would."""
    from PIL import ImageDraw, ImageOps

    from printsrv.layout.images import box_px

    source = Image.new("RGB", size, (200, 30, 30))
    draw = ImageDraw.Draw(source)
    for i in range(0, max(size), 40):  # a grid: any shift of the crop shows
        draw.line([(i, 0), (i, size[1])], fill=(20, 20, 220), width=6)
        draw.line([(0, i), (size[0], i)], fill=(20, 200, 20), width=6)
    raw = io.BytesIO()
    source.save(raw, "JPEG", quality=95)
    card = make_card(photo=raw.getvalue())
    native = render_card(card)
    assert native.photo_passthrough
    (box,) = native.boxes["photo"]
    fitted = ImageOps.fit(source, box_px(box), Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=95)
    reference = render_card(make_card(photo=out.getvalue()))
    assert same_drawing(pdftoppm(native.pdf), pdftoppm(reference.pdf), box)
