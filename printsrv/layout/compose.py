"""Composing one card: template + record → positioned text runs and images (no drawing yet)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache

from PIL import Image

from printsrv.cardinput import CardInput
from printsrv.layout.errors import RenderError
from printsrv.layout.fitting import fit_text
from printsrv.layout.fonts import FontFace, face
from printsrv.layout.images import (
    ImageProblem,
    PreparedPhoto,
    background_colour,
    prepare_photo,
    prepare_signature,
)
from printsrv.layout.template import Box, Element, Template

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class TextRun:
    """One line of text: left end of the baseline at (``x``, ``baseline_y``) mm, top-left origin."""

    font: FontFace
    size: float
    color: tuple[int, int, int]
    x: float
    baseline_y: float
    text: str
    field: str = ""  # the record field (or element id) the text comes from


@dataclass(frozen=True)
class QrRun:
    modules: tuple[tuple[bool, ...], ...]
    box: Box
    ink: tuple[int, int, int]


@dataclass
class CardLayout:
    """Everything to draw on one face, in card millimetres; ``boxes`` maps element id → boxes."""

    template: Template
    texts: list[TextRun] = field(default_factory=list)
    photo: PreparedPhoto | None = None
    photo_box: Box | None = None
    signature: Image.Image | None = None
    signature_box: Box | None = None
    qrs: list[QrRun] = field(default_factory=list)
    boxes: dict[str, tuple[Box, ...]] = field(default_factory=dict)
    sizes: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def format_date(value: str) -> str:
    """``YYYY-MM-DD`` → ``DD-MM-YYYY``; anything else (``SEUMUR HIDUP``) unchanged."""
    m = _ISO_DATE.match(value)
    return f"{m.group(3)}-{m.group(2)}-{m.group(1)}" if m else value


def _birth_date(values: dict[str, str]) -> date | None:
    try:
        return date.fromisoformat(values.get("tanggal_lahir", ""))
    except ValueError:
        return None


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def field_values(template: Template, card: CardInput) -> dict[str, str]:
    """The record's text fields in upper case, plus the derived ``kab_kota``, ``tanggal_terbit``
    and, for a chip card, ``card_access_number`` (the CAN).

    ``kab_kota`` is ``kabupaten_kota`` prefixed with ``KABUPATEN``/``KOTA`` unless it already is;
    the kind comes from the office code (``PP.KK.CC``, KK >= 71 is a city) or else the NIK.
    """
    values = {k: " ".join(v.split()).upper() for k, v in card.fields.items() if isinstance(v, str)}
    values["tanggal_terbit"] = card.issue_date.strftime("%d-%m-%Y")
    if card.card_access_number:  # the chip's PACE password, printed for the reader's user
        values["card_access_number"] = card.card_access_number
    name = values.get("kabupaten_kota", "")
    if name:
        if name.startswith(("KABUPATEN ", "KAB. ", "KOTA ")):
            values["kab_kota"] = name
        else:
            code = values.get("office_code", "")
            regency = code.split(".")[1] if code.count(".") == 2 else values.get("nik", "")[2:4]
            city = regency.isdigit() and int(regency) >= 71
            values["kab_kota"] = f"{'KOTA' if city else 'KABUPATEN'} {name}"
    born = _birth_date(values)
    if template.validity_years and not values.get("berlaku_hingga") and born:
        values["berlaku_hingga"] = _add_years(born, template.validity_years).isoformat()
    return values


class _Missing(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


@lru_cache(maxsize=1024)
def _parsed(value: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """The literal text, field name and format of each part of a template value."""
    return tuple((lit, name, spec) for lit, name, spec, _ in string.Formatter().parse(value))


@lru_cache(maxsize=1024)
def _shifted(el: Element, up: float) -> Element:
    """``el`` moved up by ``up`` mm (a stack's unused lines), made once per distinct shift."""
    return replace(el, box=replace(el.box, y=el.box.y - up))


def expand(value: str, values: dict[str, str]) -> str:
    """Fill ``{field}`` / ``{field:date}`` slots; raises _Missing for an absent or empty field."""
    out = []
    for literal, name, spec in _parsed(value):
        out.append(literal)
        if name is None:
            continue
        text = values.get(name, "")
        if not text:
            raise _Missing(name)
        out.append(format_date(text) if spec == "date" else text)
    return "".join(out)


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(frozen=True)
class _PlacedText:
    """A text element fitted and turned into runs (cached per element and text)."""

    size: float
    boxes: tuple[Box, ...]
    runs: tuple[TextRun, ...]
    unused: float  # mm of the box's lines left unused (a stack moves up by it)


#: (id(template), id(element), text) → (template, element, placed): labels and common values
#: repeat from card to card. Template and element are kept to check identity (a reloaded or
#: replaced template shares no entry, even with the same elements).
_PLACED: dict[tuple[int, int, str], tuple[Template, Element, _PlacedText]] = {}
_PLACED_MAX = 8192


def _text_element(
    layout: CardLayout, el: Element, values: dict[str, str], shifts: dict[str, float]
) -> None:
    """Fit one text element; in a ``stack`` it moves up by the lines earlier ones left unused."""
    template = layout.template
    if el.stack and shifts.get(el.stack):
        el = _shifted(el, shifts[el.stack])
    try:
        text = expand(el.value, values)
    except _Missing as missing:
        if el.optional:
            return
        raise RenderError(missing.name, "missing or empty", el.id) from None
    if el.kind == "text" or template.uppercase_labels:
        text = text.upper()
    key = (id(template), id(el), text)
    hit = _PLACED.get(key)
    if hit is not None and hit[0] is template and hit[1] is el:
        placed = hit[2]
    else:
        placed = _place_text(template, el, text, values)
        if len(_PLACED) >= _PLACED_MAX:
            _PLACED.clear()
        _PLACED[key] = (template, el, placed)
    if placed.unused:
        shifts[el.stack] = shifts.get(el.stack, 0.0) + placed.unused
    layout.sizes[el.id] = placed.size
    layout.boxes[el.id] = placed.boxes
    layout.texts.extend(placed.runs)


def _place_text(template: Template, el: Element, text: str, values: dict[str, str]) -> _PlacedText:
    """Check the glyphs of ``text``, fit it into ``el``'s box and make its runs (and those of
    its label); raises :class:`RenderError` naming the field at fault."""
    assert el.style is not None
    style = el.style
    font = face(template.fonts[style.font])
    slots = [name for name, _ in el.slots]
    unprintable = font.missing(text)
    if unprintable:
        name = next(
            (n for n in slots if set(values.get(n, "").upper()) & set(unprintable)), el.id
        )
        raise RenderError(
            name,
            f"character(s) {unprintable!r} cannot be printed: font {font.path.name} has no glyph",
            el.id,
        )
    fitted = fit_text(text, font, el.box, style.size, style.min_size, style.leading, el.lines,
                      style.align)  # fmt: skip
    if fitted is None:
        name = max(slots, key=lambda n: len(values.get(n, ""))) if slots else el.id
        raise RenderError(
            name,
            f"{text!r} does not fit {el.box.w:.1f} x {el.box.h:.1f} mm in {el.lines} line(s) "
            f"at {style.min_size:g} pt or more",
            el.id,
        )
    unused = 0.0
    if el.stack and el.lines > len(fitted.lines) > 0:
        unused = el.box.h * (el.lines - len(fitted.lines)) / el.lines
    runs = [TextRun(font, fitted.size, style.color, line.box.x, line.baseline_y, line.text,
                    slots[0] if len(slots) == 1 else el.id) for line in fitted.lines]  # fmt: skip
    if el.kind == "text" and el.label and not template.labels_preprinted and fitted.lines:
        assert el.label_style is not None and el.label_x is not None
        ls = el.label_style
        label = el.label.upper() if template.uppercase_labels else el.label
        label_font = face(template.fonts[ls.font])
        if label_font.missing(label + ":"):
            raise RenderError(
                el.id, f"label {label!r}: font {label_font.path.name} has no glyph for "
                f"{label_font.missing(label + ':')!r}", el.id,
            )  # fmt: skip
        baseline = fitted.lines[0].baseline_y
        runs.append(TextRun(label_font, ls.size, ls.color, el.label_x, baseline, label, el.id))
        colon_x = el.box.x - el.colon_gap
        runs.append(TextRun(label_font, ls.size, ls.color, colon_x, baseline, ":", el.id))
    boxes = tuple(line.box for line in fitted.lines)
    return _PlacedText(fitted.size, boxes, tuple(runs), unused)


def _photo_element(
    layout: CardLayout, el: Element, card: CardInput, values: dict[str, str]
) -> None:
    template = layout.template
    born = _birth_date(values)
    if el.min_age_years and (born is None or _age(born, card.issue_date) < el.min_age_years):
        if born is None:
            raise RenderError("tanggal_lahir", "needed to decide whether the photo is printed")
        if card.photo_jpeg:
            layout.warnings.append(
                f"photo not printed: holder is under {el.min_age_years} on the issue date"
            )
        return
    if not card.photo_jpeg and el.optional:
        return
    try:
        layout.photo = prepare_photo(card.photo_jpeg, el.box)
    except ImageProblem as exc:
        raise RenderError("photo", str(exc), el.id) from None
    layout.photo_box = el.box
    layout.boxes[el.id] = (el.box,)
    rule = template.photo_background
    if rule == "none":
        return
    if rule == "orange":
        expected, why = "ORANGE", "WNA"
    elif born is None:
        return
    else:
        expected = "RED" if born.year % 2 else "BLUE"
        why = f"birth year {born.year} is {'odd' if born.year % 2 else 'even'}"
    seen = background_colour(layout.photo.thumbnail)
    if seen != expected:
        layout.warnings.append(f"photo background looks {seen}, expected {expected} ({why})")


def _signature_element(layout: CardLayout, el: Element, card: CardInput) -> None:
    if not card.signature_png and el.optional:
        return
    try:
        layout.signature, layout.signature_box = prepare_signature(
            card.signature_png, el.box, el.ink
        )
    except ImageProblem as exc:
        raise RenderError("signature", str(exc), el.id) from None
    layout.boxes[el.id] = (layout.signature_box,)


def _qr_element(layout: CardLayout, el: Element, values: dict[str, str]) -> None:
    try:
        data = expand(el.value, values)
    except _Missing as missing:
        if el.optional:
            return
        raise RenderError(missing.name, "missing or empty", el.id) from None
    # Imported here: reportlab's barcode package pulls in platypus (~50 ms), and only a
    # template with a QR element needs it.
    from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel

    qr = QRCode(None, QRErrorCorrectLevel.M)
    qr.addData(data)
    qr.make()
    n = qr.getModuleCount()
    modules = tuple(tuple(bool(qr.isDark(r, c)) for c in range(n)) for r in range(n))
    side = min(el.box.w, el.box.h)
    box = Box(el.box.x + (el.box.w - side) / 2, el.box.y + (el.box.h - side) / 2, side, side)
    layout.qrs.append(QrRun(modules, box, el.ink))
    layout.boxes[el.id] = (box,)


def compose(template: Template, card: CardInput) -> CardLayout:
    """Lay out ``card`` on ``template``; raises :class:`RenderError` naming the field at fault."""
    values = field_values(template, card)
    layout = CardLayout(template)
    shifts: dict[str, float] = {}
    for el in template.elements:
        if el.kind == "label":
            if not template.labels_preprinted:
                _text_element(layout, el, values, shifts)
        elif el.kind == "text":
            _text_element(layout, el, values, shifts)
        elif el.kind == "photo":
            _photo_element(layout, el, card, values)
        elif el.kind == "signature":
            _signature_element(layout, el, card)
        elif el.kind == "qr":
            _qr_element(layout, el, values)
    return layout
