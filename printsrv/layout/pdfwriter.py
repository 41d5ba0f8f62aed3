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
import zlib
from dataclasses import dataclass
from functools import lru_cache

from reportlab.pdfbase.ttfonts import makeToUnicodeCMap

from printsrv.layout.compose import CardLayout
from printsrv.layout.errors import RenderError
from printsrv.layout.fonts import FontFace
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


@lru_cache(maxsize=32)
def _ink_plane(size: tuple[int, int], ink: tuple[int, int, int]) -> bytes:
    """A compressed RGB plane of one colour (the signature's colour; its shape is the SMask)."""
    return zlib.compress(bytes(ink) * (size[0] * size[1]), 9)


def _num(v: float) -> bytes:
    return b"%.4f" % v


def write_pdf(
    layout: CardLayout, page_mm: tuple[float, float], offset_mm: tuple[float, float]
) -> bytes:
    """One page of ``page_mm``; the card's top-left corner sits at ``offset_mm`` on the page."""
    k = PT_PER_MM
    page_w, page_h = page_mm
    ox, oy = offset_mm

    def rect(box: Box) -> tuple[float, float, float, float]:
        return (ox + box.x) * k, (page_h - oy - box.y - box.h) * k, box.w * k, box.h * k

    objects: list[bytes] = []  # bodies; object number = index + 1

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    objects.extend((b"", b"", b""))  # 1 catalog, 2 pages, 3 page (filled below)
    info = add(b"<</Title(%s card face)/Creator(ktp-printsrv)/Producer(ktp-printsrv)>>"
               % layout.template.id.encode("ascii", "replace"))  # fmt: skip
    ops: list[bytes] = []
    xobjects: list[bytes] = []
    photo = layout.photo
    if photo is not None and layout.photo_box is not None:
        space = b"/DeviceGray" if photo.mode == "L" else b"/DeviceRGB"
        num = add(_stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace%s"
                          b"/BitsPerComponent 8/Filter/DCTDecode" % (*photo.size, space),
                          photo.jpeg))  # fmt: skip
        xobjects.append(b"/Im1 %d 0 R" % num)
        x, y, w, h = rect(layout.photo_box)
        ops.append(b"q %s 0 0 %s %s %s cm /Im1 Do Q" % (_num(w), _num(h), _num(x), _num(y)))
    signature = layout.signature
    if signature is not None and layout.signature_box is not None:
        size = signature.size
        alpha = zlib.compress(signature.getchannel("A").tobytes(), CARD_ZLIB_LEVEL)
        smask = add(_stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace"
                            b"/DeviceGray/BitsPerComponent 8/Filter/FlateDecode" % size,
                            alpha))  # fmt: skip
        ink = signature.getpixel((0, 0))[:3]  # type: ignore[index]
        num = add(_stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace"
                          b"/DeviceRGB/BitsPerComponent 8/Filter/FlateDecode/SMask %d 0 R"
                          % (*size, smask), _ink_plane(size, tuple(ink))))  # fmt: skip
        xobjects.append(b"/Im2 %d 0 R" % num)
        x, y, w, h = rect(layout.signature_box)
        ops.append(b"q %s 0 0 %s %s %s cm /Im2 Do Q" % (_num(w), _num(h), _num(x), _num(y)))
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
    for run in layout.texts:
        if run.font not in fonts:
            chars = set().union(*(t.text for t in layout.texts if t.font is run.font))
            extras = tuple(sorted(c for c in chars if not " " <= c <= "~"))
            fonts[run.font] = font_objects(run.font, extras)
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
            ops.append(b"1 0 0 1 %s %s Tm (%s) Tj" % (
                _num((ox + run.x) * k), _num((page_h - oy - run.baseline_y) * k),
                fonts[run.font].encode(run.text, run.field)))  # fmt: skip
        ops.append(b"ET")
    content = zlib.compress(b"\n".join(ops), CARD_ZLIB_LEVEL)
    contents = add(_stream(b"/Filter/FlateDecode", content))
    font_refs = []
    for face_, fo in fonts.items():
        file = add(fo.file)
        tou = add(fo.to_unicode)
        desc = add(fo.descriptor % {b"file": file})
        font = add(fo.font % {b"desc": desc, b"tou": tou})
        font_refs.append(b"%s %d 0 R" % (names[face_], font))
    objects[0] = b"<</Type/Catalog/Pages 2 0 R>>"
    objects[1] = b"<</Type/Pages/Kids[3 0 R]/Count 1>>"
    objects[2] = (
        b"<</Type/Page/Parent 2 0 R/MediaBox [0 0 %s %s]/Contents %d 0 R/Resources<<"
        b"/ProcSet[/PDF/Text/ImageB/ImageC]/Font<<%s>>/XObject<<%s>>>>>>"
        % (_num(page_w * k), _num(page_h * k), contents, b"".join(font_refs), b"".join(xobjects))
    )
    out = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    pos = len(out[0])
    xref = [b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)]
    for i, body in enumerate(objects, 1):
        xref.append(b"%010d 00000 n \n" % pos)
        chunk = b"%d 0 obj\n%s\nendobj\n" % (i, body)
        out.append(chunk)
        pos += len(chunk)
    out.extend(xref)
    out.append(b"trailer\n<</Size %d/Root 1 0 R/Info %d 0 R>>\nstartxref\n%d\n%%EOF\n"
               % (len(objects) + 1, info, pos))  # fmt: skip
    return b"".join(out)
