"""What the chip carries, checked by parsers we did not write: the TD1 MRZ of DG1 (PyPI
``mrz``), the JPEG/PNG markers of photos and signatures, the ATR's compact-TLV historical bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import struct
import subprocess
from pathlib import Path

import pytest
from mrz.checker.td1 import TD1CodeChecker

from chip.cardops import (
    atr_command_chaining,
    atr_extended_length,
    compact_tlv,
    historical_bytes,
)
from chip.face import compact_signature, face_image, fit_face
from chip.lds import HolderData, biometric_instances, dg1, dg2, parse_dg1, td1_mrz
from chip.samples import sample_photo, sample_signature
from chip.simulator.card import make_atr


def _lines(mrz: str) -> str:
    return "\n".join((mrz[:30], mrz[30:60], mrz[60:]))


def _errors(mrz: str) -> list[str]:
    checker = TD1CodeChecker(_lines(mrz))
    return list(checker.report.errors)


def test_lifetime_dg1_accepted_by_independent_mrz_parser(holder: HolderData) -> None:
    assert holder.expiry is None  # SEUMUR HIDUP
    mrz = parse_dg1(dg1(holder))
    # `mrz` does not know ICAO's long-document-number rule (check digit '<', overflow in the
    # optional data), so it flags the number's check digit, and nothing else.
    assert _errors(mrz) == ["false document number hash"]
    fields = TD1CodeChecker(_lines(mrz)).fields()
    assert fields.expiry_date == "991231" and fields.birth_date == "990805"
    # With a short document number (no long-number rule), the parser accepts all of it.
    short = dataclasses.replace(holder, document_number="A1234567")
    checker = TD1CodeChecker(_lines(td1_mrz(short)))
    assert bool(checker), checker.report.errors


def test_dated_dg1_accepted_too(holder: HolderData) -> None:
    wna = dataclasses.replace(holder, document_number="A1234567", expiry=dt.date(2031, 8, 5),
                              nationality="MYS")
    checker = TD1CodeChecker(_lines(td1_mrz(wna)))
    assert bool(checker), checker.report.errors


@pytest.mark.parametrize("broken", ["expiry", "composite"])
def test_independent_parser_catches_a_broken_mrz(holder: HolderData, broken: str) -> None:
    """The parser is not a rubber stamp: a wrong check digit is reported."""
    mrz = td1_mrz(dataclasses.replace(holder, document_number="A1234567"))
    pos = 44 if broken == "expiry" else 59
    wrong = mrz[:pos] + str((int(mrz[pos]) + 1) % 10) + mrz[pos + 1:]
    assert not TD1CodeChecker(_lines(wrong))


# -- no metadata in photos and signatures -----------------------------------------------------
SECRET = b"REQ-0000-SECRET-REQUEST-ID"


def dirty_jpeg(width: int = 600, height: int = 800) -> bytes:
    """A photo carrying every kind of metadata: COM, EXIF (APP1), XMP (APP1), ICC (APP2)."""
    from PIL import Image, ImageCms

    img = Image.open(io.BytesIO(sample_photo(width, height)))
    img.load()
    exif = Image.Exif()
    exif[0x010E] = SECRET.decode()  # ImageDescription
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, comment=SECRET, exif=exif.tobytes(), icc_profile=icc)
    raw = out.getvalue()
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>" + SECRET + b"</x:xmpmeta>"
    return raw[:2] + b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp + raw[2:]


def dirty_png() -> bytes:
    from PIL import Image, PngImagePlugin

    img = Image.open(io.BytesIO(sample_signature()))
    img.load()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET.decode())
    out = io.BytesIO()
    img.save(out, "PNG", pnginfo=info, icc_profile=b"\x00" * 0)
    return out.getvalue()


def jpeg_markers(jpeg: bytes) -> list[int]:
    """The markers before the image data (this test's own parser, not the code under test)."""
    assert jpeg[:2] == b"\xff\xd8"
    pos, out = 2, []
    while True:
        assert jpeg[pos] == 0xFF
        out.append(jpeg[pos + 1])
        if jpeg[pos + 1] == 0xDA:
            return out
        pos += 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")


def metadata_markers(jpeg: bytes) -> list[str]:
    """COM and every APPn but APP0 (JFIF) and APP14 (Adobe)."""
    return [f"{m:02X}" for m in jpeg_markers(jpeg)
            if m == 0xFE or (0xE1 <= m <= 0xEF and m != 0xEE)]


def png_chunks(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        out.append(png[pos + 4:pos + 8])
        pos += 12 + length
    return out


def test_dirty_source_really_is_dirty() -> None:
    photo = dirty_jpeg()
    assert {"FE", "E1", "E2"} <= set(metadata_markers(photo)) and SECRET in photo
    assert b"tEXt" in png_chunks(dirty_png())


def test_chip_photo_and_signature_carry_no_metadata(holder: HolderData) -> None:
    face = face_image(biometric_instances(dg2(fit_face(dirty_jpeg(), 20_000)), 0x75)[0][1][0x5F2E])
    assert metadata_markers(face) == [] and SECRET not in face
    assert jpeg_markers(face)[0] == 0xE0  # JFIF stays
    sig = compact_signature(dirty_png())
    assert set(png_chunks(sig)) <= {b"IHDR", b"IDAT", b"IEND", b"pHYs"} and SECRET not in sig


def test_strip_jpeg_metadata_is_lossless() -> None:
    from printsrv.layout.images import strip_jpeg_metadata

    photo = dirty_jpeg()
    clean = strip_jpeg_metadata(photo)
    assert metadata_markers(clean) == [] and SECRET not in clean
    from PIL import Image

    assert Image.open(io.BytesIO(clean)).tobytes() == Image.open(io.BytesIO(photo)).tobytes()
    assert strip_jpeg_metadata(clean) == clean
    with pytest.raises(ValueError):
        strip_jpeg_metadata(b"\xff\xd8\xff\xe1\xff\xff")


@pytest.mark.parametrize(("scale", "passthrough"), [
    (1.0, True),  # the box's size: embedded as it is
    (1.5, True),  # larger, other proportions: embedded as it is, the page scales and clips it
    (4.0, False),  # far larger: resampled to the box
    (0.5, False),  # smaller: resampled
])
def test_card_face_photo_carries_no_metadata(scale: float, passthrough: bool) -> None:
    from printsrv.layout.images import box_px, prepare_photo
    from printsrv.layout.template import Box

    box = Box(0, 0, 25.4, 33.8666)
    w, h = box_px(box)
    prepared = prepare_photo(dirty_jpeg(round(w * scale), round(h * scale * 1.1)), box)
    assert prepared.passthrough is passthrough
    assert metadata_markers(prepared.jpeg) == [] and SECRET not in prepared.jpeg


# -- ATR historical bytes ---------------------------------------------------------------------
@pytest.mark.parametrize("extended", [True, False])
def test_atr_historical_bytes_are_compact_tlv(extended: bool) -> None:
    atr = make_atr(extended)
    objects = compact_tlv(historical_bytes(atr))
    assert objects == [(5, b"KTP"), (7, bytes((0x94, 0x01, 0xC0 if extended else 0x80)))]
    assert atr_extended_length(atr) is extended
    assert atr_command_chaining(atr)  # b8 of the third byte: command chaining
    assert not atr_command_chaining(make_atr(extended, command_chaining=False))


def test_compact_tlv_rejects_the_old_broken_atr() -> None:
    old = bytes.fromhex("3B88800180730000404B5450F5")  # "KTP" read as tag 4, length 11
    with pytest.raises(ValueError, match="tag 4 claims 11"):
        compact_tlv(historical_bytes(old))


@pytest.mark.parametrize("scale", [1.0, 5.0], ids=["embedded-as-is", "resampled"])
def test_card_face_pdf_carries_no_metadata(tmp_path: Path, scale: float) -> None:
    """The rendered card face, taken apart by poppler's ``pdfimages``: the photo is a JPEG
    without COM/EXIF/XMP/ICC, and nothing of the sources' metadata is anywhere in the PDF."""
    from printsrv.layout import load_template, render_card, sample_card
    from printsrv.layout.images import box_px, prepare_photo

    box = next(e.box for e in load_template("ktp-el").elements if e.kind == "photo")
    w, h = box_px(box)
    photo = dirty_jpeg(round(w * scale), round(h * scale))
    assert prepare_photo(photo, box).passthrough is (scale == 1.0)
    card = dataclasses.replace(sample_card("ktp-el"), photo_jpeg=photo,
                               signature_png=dirty_png())
    pdf = render_card(card).pdf
    assert SECRET not in pdf
    (tmp_path / "card.pdf").write_bytes(pdf)
    done = subprocess.run(["pdfimages", "-all", str(tmp_path / "card.pdf"),
                           str(tmp_path / "img")], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    jpegs = sorted(tmp_path.glob("img-*.jpg"))
    assert jpegs, sorted(p.name for p in tmp_path.iterdir())
    for jpeg in jpegs:
        raw = jpeg.read_bytes()
        assert metadata_markers(raw) == [] and SECRET not in raw, jpeg.name
