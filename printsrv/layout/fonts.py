"""Fonts: one loaded face per file, shared by the PDF writers (built-in, reportlab) and the raster.

Metrics come from reportlab so that layout, PDF and raster agree. ``chars`` is the set of
characters the font has a glyph for: text using any other character is refused by field name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from PIL import ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

MM_PER_PT = 25.4 / 72


@dataclass(frozen=True, eq=False)
class FontFace:
    """A registered font: ``name`` for reportlab, metrics in units of the font size."""

    name: str
    path: Path
    ascent: float
    descent: float
    reportlab: TTFont
    chars: frozenset[str]

    def width_mm(self, text: str, size_pt: float) -> float:
        """Advance width of ``text`` at ``size_pt`` in millimetres."""
        return _width_em(self.name, text) * size_pt * MM_PER_PT

    def missing(self, text: str) -> str:
        """The characters of ``text`` this font has no glyph for (empty when all are there)."""
        return "" if self.chars.issuperset(text) else "".join(
            sorted(set(text) - self.chars)
        )

    def width_em(self, text: str) -> float:
        return _width_em(self.name, text)

    def pillow(self, size_px: float) -> ImageFont.FreeTypeFont:
        """A Pillow font of ``size_px`` pixels (em size), cached."""
        return _pillow_font(str(self.path), round(size_px, 2))


@cache
def face(path: Path) -> FontFace:
    """Load and register the TrueType font at ``path`` once per process."""
    name = f"ktp-{path.stem}"
    font = TTFont(name, str(path))
    pdfmetrics.registerFont(font)
    chars = frozenset(chr(c) for c in font.face.charToGlyph if c >= 32 and not 127 <= c < 160)
    return FontFace(name, path, font.face.ascent / 1000, font.face.descent / 1000, font, chars)


@lru_cache(maxsize=65536)
def _width_em(name: str, text: str) -> float:
    return pdfmetrics.stringWidth(text, name, 1.0)


@lru_cache(maxsize=512)
def _pillow_font(path: str, size_px: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size_px)
