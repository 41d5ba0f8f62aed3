"""A small PDF writer for the one-page card face (the default backend).

Each font's TrueType subset is built once per process for a fixed character set (printable
ASCII, codes 32..126 as themselves) with reportlab's subsetter, and kept as serialized PDF
objects. A card that uses other characters gets a subset extended by exactly those (codes from
127 up), built once and cached too. Per card only the content stream, the photo (DCTDecode
pass-through), the signature with its alpha mask (SMask), the xref and the trailer are written.

A character the font has no glyph for is refused earlier, by name of the field
(:func:`printsrv.layout.compose.compose`); the writer never prints a missing glyph silently.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from reportlab.pdfbase.ttfonts import makeToUnicodeCMap

from printsrv.layout.compose import CardLayout, TextRun
from printsrv.layout.errors import RenderError
from printsrv.layout.fonts import FontFace, face
from printsrv.layout.template import Box

PT_PER_MM = 72 / 25.4
#: Codes 32..126 print themselves; codes 0..31 are .notdef and never used.
BASE_CODES = tuple(range(32, 127))
FIRST_EXTRA_CODE = 127
#: zlib level of the per-card streams (content, signature); level 1 is ~4x faster than 6 and
#: within a few per cent of its size on this data.
CARD_ZLIB_LEVEL = 1

_ESCAPE = {ord("\\"): b"\\\\", ord("("): b"\\(", ord(")"): b"\\)"}


@dataclass(frozen=True)
class FontObjects:
    """One font subset as pre-serialized PDF objects (4: font, descriptor, file, ToUnicode)."""

    codes: dict[str, int]  # character → byte code
    font: bytes  # with %(desc)d and %(tou)d placeholders
    descriptor: bytes  # with %(file)d
    file: bytes  # complete stream object body
    to_unicode: bytes

    def encode(self, text: str, field: str) -> bytes:
        """``text`` as a PDF literal string body in this subset's codes."""
        try:
            raw = text.encode("ascii") if text.isascii() else bytes(self.codes[c] for c in text)
        except KeyError as exc:  # compose checks coverage first; this is a safety net
            reason = f"character {exc.args[0]!r} not in the font subset"
            raise RenderError(field or "text", reason) from None
        if b"\\" in raw or b"(" in raw or b")" in raw:
            return b"".join(_ESCAPE.get(b, bytes((b,))) for b in raw)
        return raw


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<<%s/Length %d>>\nstream\n%s\nendstream" % (dictionary, len(data), data)


def _tag(face: FontFace, subset: list[int]) -> bytes:
    digest = hashlib.sha1(repr((face.name, subset)).encode()).digest()
    return bytes(65 + b % 26 for b in digest[:6])


@lru_cache(maxsize=64)
def font_objects(face: FontFace, extras: tuple[str, ...] = ()) -> FontObjects:
    """The subset of ``face`` for printable ASCII plus ``extras`` (built once per process)."""
    if len(extras) > 256 - FIRST_EXTRA_CODE:
        raise RenderError("text", f"more than {256 - FIRST_EXTRA_CODE} non-ASCII characters")
    tt = face.reportlab.face
    subset = [0] * 32 + list(BASE_CODES) + [ord(c) for c in extras]
    codes = {chr(c): c for c in BASE_CODES}
    codes.update({c: FIRST_EXTRA_CODE + i for i, c in enumerate(extras)})
    name = _tag(face, subset) + b"+" + tt.name + tt.subfontNameX
    font_file = tt.makeSubset(subset)
    widths = b" ".join(b"%.7g" % tt.getCharWidth(c) if c else b"0" for c in subset)
    font = (
        b"<</Type/Font/Subtype/TrueType/BaseFont /%s/FirstChar 0/LastChar %d/Widths[%s]"
        b"/FontDescriptor %%(desc)d 0 R/ToUnicode %%(tou)d 0 R>>"
        % (name, len(subset) - 1, widths)
    )
    flags = (tt.flags & ~32) | 4  # symbolic: codes map through the subset's own cmap
    descriptor = (
        b"<</Type/FontDescriptor/FontName/%s/Flags %d/FontBBox[%s]/ItalicAngle %s"
        b"/Ascent %d/Descent %d/CapHeight %d/StemV %d/MissingWidth %d/FontFile2 %%(file)d 0 R>>"
        % (name, flags, b" ".join(b"%d" % v for v in tt.bbox), b"%g" % tt.italicAngle,
           tt.ascent, tt.descent, tt.capHeight, tt.stemV, tt.defaultWidth)
    )  # fmt: skip
    packed = zlib.compress(font_file, 9)
    file = _stream(b"/Filter/FlateDecode/Length1 %d" % len(font_file), packed)
    cmap = makeToUnicodeCMap(name.decode(), subset).encode()
    to_unicode = _stream(b"/Filter/FlateDecode", zlib.compress(cmap, 9))
    return FontObjects(codes, font, descriptor, file, to_unicode)


def _num(v: float) -> bytes:
    return b"%.4f" % v


@dataclass(frozen=True)
class PageImage:
    """An image XObject of a page: its dictionary (without ``/Length``) and stream data, and
    the image of its soft mask (alpha), if any."""

    dictionary: bytes
    data: bytes
    smask: PageImage | None = None


@dataclass(frozen=True)
class PageParts:
    """One page's own content, not yet numbered into a document; picklable, so that worker
    processes can lay out pages and one process can write them all into a single PDF.

    ``fonts`` lists, in the order of the content's ``/F1``, ``/F2``… names, each font file and
    the non-ASCII characters its subset needs (:func:`font_objects`).
    """

    size_pt: tuple[float, float]
    content: bytes  # the page's compressed content stream
    images: tuple[PageImage, ...]  # /Im1, /Im2…
    fonts: tuple[tuple[Path, tuple[str, ...]], ...]
    title: bytes


#: (run, offset, page height) → its "Tm … Tj" operators, for ASCII runs (labels and common
#: values repeat from card to card).
_SHOW_TEXT: dict[tuple[TextRun, float, float, float], bytes] = {}
_SHOW_TEXT_MAX = 16384


def page_parts(
    layout: CardLayout, page_mm: tuple[float, float], offset_mm: tuple[float, float]
) -> PageParts:
    """The page of ``page_mm`` showing ``layout`` with the card's top-left corner at
    ``offset_mm``."""
    k = PT_PER_MM
    page_w, page_h = page_mm
    ox, oy = offset_mm

    def rect(box: Box) -> tuple[float, float, float, float]:
        return (ox + box.x) * k, (page_h - oy - box.y - box.h) * k, box.w * k, box.h * k

    ops: list[bytes] = []
    images: list[PageImage] = []
    photo = layout.photo
    if photo is not None and layout.photo_box is not None:
        space = b"/DeviceGray" if photo.mode == "L" else b"/DeviceRGB"
        images.append(PageImage(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace%s"
                                b"/BitsPerComponent 8/Filter/DCTDecode" % (*photo.size, space),
                                photo.jpeg))  # fmt: skip
        x, y, w, h = rect(layout.photo_box)
        if photo.crop is None:
            ops.append(b"q %s 0 0 %s %s %s cm /Im%d Do Q"
                       % (_num(w), _num(h), _num(x), _num(y), len(images)))  # fmt: skip
        else:  # the whole JPEG, scaled so that its crop fills the box, clipped to the box
            left, top, right, bottom = photo.crop
            sx, sy = w / (right - left), h / (bottom - top)
            ox0, oy0 = x - left * sx, y - (photo.size[1] - bottom) * sy
            ops.append(b"q %s %s %s %s re W n %s 0 0 %s %s %s cm /Im%d Do Q" % (
                _num(x), _num(y), _num(w), _num(h), _num(photo.size[0] * sx),
                _num(photo.size[1] * sy), _num(ox0), _num(oy0), len(images)))  # fmt: skip
    signature = layout.signature
    if signature is not None and layout.signature_box is not None:
        size = signature.size
        alpha = zlib.compress(signature.getchannel("A").tobytes(), CARD_ZLIB_LEVEL)
        smask = PageImage(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace"
                          b"/DeviceGray/BitsPerComponent 8/Filter/FlateDecode" % size, alpha)
        ink = signature.getpixel((0, 0))[:3]  # type: ignore[index]
        # One pixel of ink: its soft mask, with no /Matte, is scaled to the same unit square
        # (ISO 32000-1, 11.6.5.3), so the ink's shape is the mask's, at the mask's resolution.
        images.append(PageImage(b"/Type/XObject/Subtype/Image/Width 1/Height 1/ColorSpace"
                                b"/DeviceRGB/BitsPerComponent 8", bytes(ink), smask))
        x, y, w, h = rect(layout.signature_box)
        ops.append(b"q %s 0 0 %s %s %s cm /Im%d Do Q"
                   % (_num(w), _num(h), _num(x), _num(y), len(images)))  # fmt: skip
    for qr in layout.qrs:
        ops.append(b"%.4f %.4f %.4f rg" % tuple(c / 255 for c in qr.ink))
        n = len(qr.modules)
        cell = qr.box.w / (n + 8)  # 4-module quiet zone inside the box
        for r, row in enumerate(qr.modules):
            c = 0
            while c < n:
                if row[c]:
                    start = c
                    while c < n and row[c]:
                        c += 1
                    box = Box(qr.box.x + (4 + start) * cell, qr.box.y + (4 + r) * cell,
                              (c - start) * cell, cell)  # fmt: skip
                    ops.append(b"%s %s %s %s re f" % tuple(_num(v) for v in rect(box)))
                c += 1
    # Text: which fonts (and which subsets) this card needs.
    fonts: dict[FontFace, FontObjects] = {}
    extras_of: dict[FontFace, tuple[str, ...]] = {}
    for run in layout.texts:
        if run.font not in fonts:
            chars = set().union(*(t.text for t in layout.texts if t.font is run.font))
            extras = tuple(sorted(c for c in chars if not " " <= c <= "~"))
            fonts[run.font] = font_objects(run.font, extras)
            extras_of[run.font] = extras
    names = {f: b"/F%d" % (i + 1) for i, f in enumerate(fonts)}
    if layout.texts:
        ops.append(b"BT")
        current: tuple[FontFace, float] | None = None
        color: tuple[int, int, int] | None = None
        for run in layout.texts:
            if (run.font, run.size) != current:
                current = (run.font, run.size)
                ops.append(b"%s %g Tf" % (names[run.font], run.size))
            if run.color != color:
                color = run.color
                ops.append(b"%.4f %.4f %.4f rg" % tuple(c / 255 for c in run.color))
            key = (run, ox, oy, page_h)
            op = _SHOW_TEXT.get(key) if run.text.isascii() else None
            if op is None:
                op = b"1 0 0 1 %s %s Tm (%s) Tj" % (
                    _num((ox + run.x) * k), _num((page_h - oy - run.baseline_y) * k),
                    fonts[run.font].encode(run.text, run.field))  # fmt: skip
                if run.text.isascii():  # ASCII codes are the same in every subset
                    if len(_SHOW_TEXT) >= _SHOW_TEXT_MAX:
                        _SHOW_TEXT.clear()
                    _SHOW_TEXT[key] = op
            ops.append(op)
        ops.append(b"ET")
    return PageParts(
        size_pt=(page_w * k, page_h * k),
        content=zlib.compress(b"\n".join(ops), CARD_ZLIB_LEVEL),
        images=tuple(images),
        fonts=tuple((f.path, extras_of[f]) for f in fonts),
        title=b"%s card face" % layout.template.id.encode("ascii", "replace"),
    )


class PdfDocument:
    """A PDF of any number of pages written to ``out`` as they come (memory stays bounded);
    each font subset is written once and shared by every page that uses it."""

    def __init__(self, out: BinaryIO, title: bytes) -> None:
        self._out = out
        self._offsets: list[int] = [0, 0, 0]  # 1 catalog, 2 page tree, 3 info: written last
        self._pos = 0
        self._kids: list[int] = []
        self._fonts: dict[tuple[Path, tuple[str, ...]], int] = {}
        self._title = title
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._pos += len(data)

    def _object(self, body: bytes, number: int | None = None) -> int:
        if number is None:
            self._offsets.append(0)
            number = len(self._offsets)
        self._offsets[number - 1] = self._pos
        self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
        return number

    def _image(self, image: PageImage) -> int:
        dictionary = image.dictionary
        if image.smask is not None:
            dictionary += b"/SMask %d 0 R" % self._image(image.smask)
        return self._object(_stream(dictionary, image.data))

    def _font(self, path: Path, extras: tuple[str, ...]) -> int:
        number = self._fonts.get((path, extras))
        if number is None:
            fo = font_objects(face(path), extras)
            file = self._object(fo.file)
            tou = self._object(fo.to_unicode)
            desc = self._object(fo.descriptor % {b"file": file})
            number = self._fonts[(path, extras)] = self._object(
                fo.font % {b"desc": desc, b"tou": tou}
            )
        return number

    @property
    def pages(self) -> int:
        return len(self._kids)

    def add_page(self, page: PageParts) -> None:
        """Append ``page`` (its objects are written at once)."""
        xobjects = b"".join(
            b"/Im%d %d 0 R" % (i, self._image(im)) for i, im in enumerate(page.images, 1)
        )
        contents = self._object(_stream(b"/Filter/FlateDecode", page.content))
        font_refs = b"".join(
            b"/F%d %d 0 R" % (i, self._font(path, extras))
            for i, (path, extras) in enumerate(page.fonts, 1)
        )
        self._kids.append(self._object(
            b"<</Type/Page/Parent 2 0 R/MediaBox [0 0 %s %s]/Contents %d 0 R/Resources<<"
            b"/ProcSet[/PDF/Text/ImageB/ImageC]/Font<<%s>>/XObject<<%s>>>>>>"
            % (_num(page.size_pt[0]), _num(page.size_pt[1]), contents, font_refs, xobjects)
        ))  # fmt: skip

    def close(self) -> None:
        """Write the page tree, catalog, info, cross-reference table and trailer."""
        kids = b" ".join(b"%d 0 R" % n for n in self._kids)
        self._object(b"<</Type/Pages/Kids[%s]/Count %d>>" % (kids, len(self._kids)), 2)
        self._object(b"<</Type/Catalog/Pages 2 0 R>>", 1)
        self._object(b"<</Title(%s)/Creator(ktp-printsrv)/Producer(ktp-printsrv)>>"
                     % self._title.translate(None, b"()\\"), 3)  # fmt: skip
        xref = self._pos
        count = len(self._offsets) + 1
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % count)
        self._write(b"".join(b"%010d 00000 n \n" % offset for offset in self._offsets))
        self._write(b"trailer\n<</Size %d/Root 1 0 R/Info 3 0 R>>\nstartxref\n%d\n%%%%EOF\n"
                    % (count, xref))  # fmt: skip


def write_pdf(
    layout: CardLayout, page_mm: tuple[float, float], offset_mm: tuple[float, float]
) -> bytes:
    """One page of ``page_mm``; the card's top-left corner sits at ``offset_mm`` on the page."""
    page = page_parts(layout, page_mm, offset_mm)
    out = io.BytesIO()
    document = PdfDocument(out, page.title)
    document.add_page(page)
    document.close()
    return out.getvalue()
