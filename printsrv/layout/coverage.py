"""Ink coverage of a composed card estimated without drawing the card (~0.3 ms instead of ~4).

The face is the sum of its elements, which do not overlap on the shipped templates:

- text: each glyph's ink at 300 dpi, measured once per (font, pixel size, character, colour)
  from Pillow's anti-aliased glyph mask (the same rasterizer as the preview) and cached;
- photo: the C, M, Y, K means of a small (1/4 scale, DCT-downscaled) decode of the JPEG, times
  the photo's area;
- signature: from the histogram of its alpha mask and the ink colour, scaled to the
  box's area at 300 dpi;
- QR code: dark modules times the cell area, in the QR ink.

Overlapping elements would be counted twice (each channel is clamped to 1). The error against
``ink_coverage(rasterize(layout, 300))`` is checked in ``tests/layout/test_layout_coverage.py``
(< 0.01 absolute per channel; about 0.001 on the samples).
"""

from __future__ import annotations

import operator
from collections import Counter
from functools import lru_cache

from PIL import Image, ImageDraw

from printsrv.layout.compose import CardLayout
from printsrv.layout.fonts import FontFace
from printsrv.layout.images import PRINT_DPI
from printsrv.layout.raster import ink_coverage

CMYK = tuple[float, float, float, float]


@lru_cache(maxsize=64)
def _levels(color: tuple[int, int, int]) -> tuple[CMYK, ...]:
    """C, M, Y, K of ``color`` laid over white at each opacity 0..255 (as the raster blends)."""
    table = []
    for a in range(256):
        rgb = [(c * a + 255 * (255 - a) + 127) // 255 for c in color]
        peak = max(rgb)
        cmy = [round((peak - v) * 255 / (peak + 0.001) + 0.5) / 255 for v in rgb]
        table.append((cmy[0], cmy[1], cmy[2], 1 - peak / 255))
    return tuple(table)


@lru_cache(maxsize=64)
def _channels(color: tuple[int, int, int]) -> tuple[tuple[float, ...], ...]:
    """:func:`_levels` as four columns (C, M, Y, K by opacity), opacity 0 counting nothing."""
    return tuple((0.0, *column[1:]) for column in zip(*_levels(color), strict=True))


def _weigh(histogram: list[int], color: tuple[int, int, int]) -> CMYK:
    """Summed C, M, Y, K (in pixels) of an alpha histogram inked in ``color``."""
    c, m, y, k = (sum(map(operator.mul, histogram, column)) for column in _channels(color))
    return c, m, y, k


@lru_cache(maxsize=16384)
def _glyph(font: FontFace, size_pt: float, char: str, color: tuple[int, int, int]) -> CMYK:
    """The ink of one glyph at 300 dpi, in pixels per channel."""
    pil = font.pillow(size_pt / 72 * PRINT_DPI)
    left, top, right, bottom = pil.getbbox(char, anchor="ls")
    if right <= left or bottom <= top:
        return 0.0, 0.0, 0.0, 0.0
    mask = Image.new("L", (int(right - left) + 2, int(bottom - top) + 2), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), char, fill=255, font=pil, anchor="ls")
    return _weigh(mask.histogram(), color)


@lru_cache(maxsize=16384)
def _run_ink(font: FontFace, size_pt: float, text: str, color: tuple[int, int, int]) -> CMYK:
    """The ink of one text run at 300 dpi, in pixels per channel (labels and common values
    repeat from card to card)."""
    c = m = y = k = 0.0
    for char, count in Counter(text.replace(" ", "")).items():
        gc, gm, gy, gk = _glyph(font, size_pt, char, color)
        c, m, y, k = c + gc * count, m + gm * count, y + gy * count, k + gk * count
    return c, m, y, k


def estimate_coverage(layout: CardLayout) -> dict[str, float]:
    """C, M, Y, K as fractions of the ID-1 face (see the module docstring for the method)."""
    px_per_mm = PRINT_DPI / 25.4
    card_w, card_h = layout.template.size_mm
    card_px = round(card_w * px_per_mm) * round(card_h * px_per_mm)
    total = [0.0, 0.0, 0.0, 0.0]

    def add(values: CMYK, weight: float = 1.0) -> None:
        for i in range(4):
            total[i] += values[i] * weight

    c = m = y = k = 0.0
    for run in layout.texts:  # ~400 glyphs a card: one cached sum per run
        rc, rm, ry, rk = _run_ink(run.font, run.size, run.text, run.color)
        c, m, y, k = c + rc, m + rm, y + ry, k + rk
    add((c, m, y, k))
    if layout.photo is not None and layout.photo_box is not None:
        box = layout.photo_box
        means = ink_coverage(layout.photo.thumbnail)
        area = box.w * box.h * px_per_mm * px_per_mm
        add((means["C"], means["M"], means["Y"], means["K"]), area)
    if layout.signature is not None and layout.signature_box is not None:
        signature, box = layout.signature, layout.signature_box
        ink = signature.getpixel((0, 0))[:3]  # type: ignore[index]
        # Its pixels may be finer than 300 dpi (the page scales them into the box).
        scale = box.w * box.h * px_per_mm * px_per_mm / (signature.width * signature.height)
        add(_weigh(signature.getchannel("A").histogram(), tuple(ink)), scale)
    for qr in layout.qrs:
        n = len(qr.modules)
        cell_px = qr.box.w / (n + 8) * px_per_mm
        dark = sum(sum(row) for row in qr.modules)
        add(_levels(qr.ink)[255], dark * cell_px * cell_px)
    return {name: round(min(1.0, v / card_px), 5) for name, v in zip("CMYK", total, strict=True)}
