"""Synthetic holder data for tests, the benchmark and the demo (no real person)."""

from __future__ import annotations

import datetime as dt
import io
import random

from PIL import Image, ImageDraw

from chip.lds import HolderData


def sample_photo(width: int = 600, height: int = 800, seed: int = 1) -> bytes:
    """A portrait-sized JPEG with some texture, so re-encoding has work to do."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height), (200, 30, 30))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width * 0.25, height * 0.15, width * 0.75, height * 0.65), fill=(224, 180, 150))
    draw.rectangle((width * 0.15, height * 0.7, width * 0.85, height), fill=(30, 30, 90))
    for _ in range(400):
        x, y = rnd.randrange(width), rnd.randrange(height)
        c = tuple(rnd.randrange(256) for _ in range(3))
        draw.point((x, y), fill=c)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92)
    return out.getvalue()


def sample_signature() -> bytes:
    img = Image.new("RGBA", (600, 200), (255, 255, 255, 0))
    draw = ImageDraw.Draw(img)
    draw.line([(20, 150), (120, 40), (200, 160), (320, 50), (450, 140), (580, 60)],
              fill=(0, 0, 0, 255), width=6)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def sample_fmr(position: int, minutiae: int = 40, seed: int = 7) -> bytes:
    """An ISO/IEC 19794-2:2005 finger minutiae record with one view."""
    rnd = random.Random(seed + position)
    view = bytes((position, 0x00, 80, minutiae))
    for _ in range(minutiae):
        kind = rnd.choice((1, 2))
        x, y = rnd.randrange(400), rnd.randrange(500)
        view += (((kind << 14) | x).to_bytes(2, "big") + y.to_bytes(2, "big")
                 + bytes((rnd.randrange(256), rnd.randrange(101))))
    view += b"\x00\x00"  # no extended data
    header_len = 24
    header = (b"FMR\x00" + b" 20\x00" + (header_len + len(view)).to_bytes(4, "big")
              + b"\x00\x00" + (400).to_bytes(2, "big") + (500).to_bytes(2, "big")
              + (197).to_bytes(2, "big") + (197).to_bytes(2, "big") + b"\x01\x00")
    return header + view


def sample_holder(nik: str = "3526014508990001", lifelong: bool = True) -> HolderData:
    """A complete synthetic holder (a WNI card valid for life unless ``lifelong`` is False)."""
    return HolderData(
        document_number=nik,
        name="SITI NUR'AINI PUTRI",
        birth_date=dt.date(1999, 8, 5),
        sex="F",
        expiry=None if lifelong else dt.date(2031, 8, 5),
        place_of_birth="BANGKALAN",
        address=("JL. TRUNOJOYO NO. 12", "001/002", "KRAMAT", "BANGKALAN", "BANGKALAN",
                 "JAWA TIMUR"),
        issuing_authority="DISDUKCAPIL KABUPATEN BANGKALAN",
        issue_date=dt.date(2026, 11, 25),
        photo_jpeg=sample_photo(),
        signature_image=sample_signature(),
        finger_right_index_fmr=sample_fmr(2),
        finger_left_index_fmr=sample_fmr(7),
        occupation="PELAJAR/MAHASISWA",
        personal_summary="AGAMA=ISLAM;STATUS=BELUM KAWIN;GOLDARAH=O",
    )
