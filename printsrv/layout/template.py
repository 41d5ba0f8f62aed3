"""Card-face templates: TOML files loaded and validated strictly.

A template is data: page size, fonts and a list of elements with positions in millimetres
(origin top-left of the ISO card). Every mistake is reported as ``file:line: key: reason``.
See ``docs/templates.md`` for the format.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from printsrv import PROJECT_ROOT
from printsrv.layout.errors import TemplateError
from printsrv.products import CARD_TYPES

TEMPLATES_DIR = PROJECT_ROOT / "templates"
ID1_MM = (85.60, 53.98)

#: Record fields (batch-format.md) plus the fields derived by the renderer.
RECORD_FIELDS = frozenset(
    {
        "card_type", "request_id", "nik", "no_kk", "nama", "tempat_lahir", "tanggal_lahir",
        "jenis_kelamin", "golongan_darah", "alamat", "rt", "rw", "kel_desa", "kecamatan",
        "kabupaten_kota", "provinsi", "agama", "status_perkawinan", "pekerjaan",
        "kewarganegaraan", "negara", "berlaku_hingga", "tempat_terbit", "office_code",
        "nama_kepala_keluarga", "no_akta_lahir",
    }
)  # fmt: skip
DERIVED_FIELDS = frozenset({"kab_kota", "tanggal_terbit", "card_access_number"})
KNOWN_FIELDS = RECORD_FIELDS | DERIVED_FIELDS
FORMATS = frozenset({"", "date"})
KINDS = frozenset({"text", "label", "photo", "signature", "qr"})
ALIGNS = frozenset({"left", "center", "right"})
BACKGROUND_RULES = frozenset({"none", "red-odd-blue-even", "orange"})

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Box:
    """A rectangle in millimetres, origin top-left of the card."""

    x: float
    y: float
    w: float
    h: float

    def contains(self, other: Box, eps: float = 1e-6) -> bool:
        return (
            other.x >= self.x - eps
            and other.y >= self.y - eps
            and other.x + other.w <= self.x + self.w + eps
            and other.y + other.h <= self.y + self.h + eps
        )


@dataclass(frozen=True)
class TextStyle:
    font: str
    size: float  # pt, the preferred size
    min_size: float  # pt, the smallest size fitting may shrink to
    leading: float  # line height as a multiple of the size
    color: tuple[int, int, int]
    align: str


@dataclass(frozen=True)
class Element:
    """One thing drawn on the face; which keys matter depends on ``kind``."""

    kind: str
    id: str
    box: Box
    line: int  # line of the element in its file, for error messages
    value: str = ""
    label: str = ""
    label_x: float | None = None
    lines: int = 1
    optional: bool = False
    style: TextStyle | None = None
    label_style: TextStyle | None = None
    colon_gap: float = 1.0
    min_age_years: int = 0
    ink: tuple[int, int, int] = (0, 0, 0)
    stack: str = ""

    @property
    def slots(self) -> tuple[tuple[str, str], ...]:
        """The ``(field, format)`` pairs referenced by ``value``."""
        return _slots(self.value)


@lru_cache(maxsize=1024)
def _slots(value: str) -> tuple[tuple[str, str], ...]:
    parts = string.Formatter().parse(value)
    return tuple((name, spec or "") for _, name, spec, _ in parts if name is not None)


@dataclass(frozen=True)
class Template:
    """A validated card-face template."""

    id: str
    path: Path
    card_type: str
    size_mm: tuple[float, float]
    labels_preprinted: bool
    uppercase_labels: bool
    photo_background: str
    preview_blank: tuple[int, int, int] | None
    validity_years: int | None
    fonts: dict[str, Path]
    elements: tuple[Element, ...] = field(default=())

    @property
    def folder(self) -> Path:
        return self.path.parent


# --- locating keys in the TOML text -----------------------------------------------------------

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*(\"[^\"]+\"|[A-Za-z0-9_-]+)\s*=")


def _key_lines(text: str) -> dict[str, int]:
    """Map ``table.key`` / ``element[3].key`` paths to their 1-based line numbers.

    Enough of TOML for templates: tables, arrays of tables and ``key = value`` lines.
    """
    lines: dict[str, int] = {}
    prefix = ""
    counts: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        if m := _ARRAY_TABLE.match(raw):
            name = m.group(1)
            index = counts.get(name, 0)
            counts[name] = index + 1
            prefix = f"{name}[{index}]"
            lines[prefix] = number
        elif m := _TABLE.match(raw):
            prefix = m.group(1)
            lines[prefix] = number
        elif m := _KEY.match(raw):
            key = m.group(1).strip('"')
            lines.setdefault(f"{prefix}.{key}" if prefix else key, number)
    return lines


class _Checker:
    """Typed access to a parsed table that reports the file, line and key of each mistake."""

    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path, self.lines = path, lines

    def fail(self, key: str, reason: str) -> TemplateError:
        line = self.lines.get(key)
        parent = key
        while line is None and ("." in parent or "[" in parent):
            parent = parent.rsplit(".", 1)[0] if "." in parent else parent.rsplit("[", 1)[0]
            line = self.lines.get(parent)
        return TemplateError(self.path, line, key, reason)

    def table(self, data: dict[str, Any], path: str, allowed: set[str]) -> dict[str, Any]:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )
        return data

    def get(self, data: dict[str, Any], path: str, key: str, kind: str, default: Any = ...) -> Any:
        full = f"{path}.{key}"
        if key not in data:
            if default is ...:
                raise self.fail(full, "missing")
            return default
        value = data[key]
        if kind == "str":
            ok = isinstance(value, str)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "num":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif kind.startswith("num["):
            n = int(kind[4:-1])
            ok = (
                isinstance(value, list)
                and len(value) == n
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            )
            value = tuple(float(v) for v in value) if ok else value
        elif kind == "color":
            ok = isinstance(value, str) and bool(_HEX.match(value))
            value = _rgb(value) if ok else value
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
        if not ok:
            expected = {"color": 'a colour like "#1a2b3c"', "num": "a number"}.get(kind, kind)
            raise self.fail(full, f"expected {expected}, got {value!r}")
        return value


def _rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


_STYLE_KEYS = {"font", "size", "min_size", "leading", "color", "align"}
_ELEMENT_KEYS = {
    "text": {
        "kind",
        "id",
        "box",
        "value",
        "label",
        "label_x",
        "lines",
        "optional",
        "colon_gap",
        "stack",
    }
    | _STYLE_KEYS
    | {f"label_{k}" for k in _STYLE_KEYS},
    "label": {"kind", "id", "box", "value", "lines", "stack"} | _STYLE_KEYS,
    "photo": {"kind", "id", "box", "min_age_years", "optional"},
    "signature": {"kind", "id", "box", "ink", "optional"},
    "qr": {"kind", "id", "box", "value", "ink", "optional"},
}


def _style(
    c: _Checker, data: dict[str, Any], path: str, base: TextStyle, prefix: str = ""
) -> TextStyle:
    def get(key: str, kind: str, default: Any) -> Any:
        return c.get(data, path, prefix + key, kind, default)

    style = TextStyle(
        font=get("font", "str", base.font),
        size=get("size", "num", base.size),
        min_size=get("min_size", "num", None) or 0.0,
        leading=get("leading", "num", base.leading),
        color=get("color", "color", base.color),
        align=get("align", "str", base.align),
    )
    if not style.min_size:  # an element that sets a size alone does not inherit a bigger min_size
        style = TextStyle(**{**style.__dict__, "min_size": min(base.min_size, style.size)})
    if style.align not in ALIGNS:
        raise c.fail(f"{path}.{prefix}align", f"expected one of {sorted(ALIGNS)}")
    if not 2.0 <= style.min_size <= style.size <= 40.0:
        raise c.fail(f"{path}.{prefix}min_size", "need 2 <= min_size <= size <= 40 (pt)")
    if not 0.8 <= style.leading <= 3.0:
        raise c.fail(f"{path}.{prefix}leading", "need 0.8 <= leading <= 3")
    return style


def parse_template(text: str, path: Path) -> Template:
    """Validate TOML ``text`` (read from ``path``) into a :class:`Template`.

    Raises :class:`TemplateError` naming the file, line and key of the first mistake.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise TemplateError(path, int(m.group(1)) if m else None, "(syntax)", str(exc)) from exc
    c = _Checker(path, _key_lines(text))
    c.table(data, "", {"card", "fonts", "defaults", "element"})
    for key in ("card", "fonts", "defaults"):
        if not isinstance(data.get(key, {}), dict):
            raise c.fail(key, "expected a table")
    card = c.table(data.get("card", {}), "card", {
        "id", "card_type", "size_mm", "labels_preprinted", "uppercase_labels",
        "photo_background", "preview_blank", "validity_years", "title",
    })  # fmt: skip
    if "card" not in data:
        raise c.fail("card", "missing table [card]")
    size = c.get(card, "card", "size_mm", "num[2]", ID1_MM)
    if not all(20 <= v <= 200 for v in size):
        raise c.fail("card.size_mm", "sizes must be between 20 and 200 mm")
    rule = c.get(card, "card", "photo_background", "str", "none")
    if rule not in BACKGROUND_RULES:
        raise c.fail("card.photo_background", f"expected one of {sorted(BACKGROUND_RULES)}")
    card_type = c.get(card, "card", "card_type", "str")
    if card_type not in CARD_TYPES:
        raise c.fail("card.card_type", f"expected one of {', '.join(CARD_TYPES)}")
    validity = c.get(card, "card", "validity_years", "int", None)

    fonts: dict[str, Path] = {}
    for name, rel in data.get("fonts", {}).items():
        if not isinstance(rel, str):
            raise c.fail(f"fonts.{name}", "expected a file name")
        font_path = (path.parent / rel).resolve()
        if not font_path.is_file():
            raise c.fail(f"fonts.{name}", f"font file not found: {font_path}")
        if font_path.suffix.lower() != ".ttf":
            raise c.fail(f"fonts.{name}", "only TrueType (.ttf) fonts can be embedded")
        fonts[name] = font_path
    if not fonts:
        raise c.fail("fonts", "at least one font is needed")

    defaults = c.table(data.get("defaults", {}), "defaults", _STYLE_KEYS | {"colon_gap"})
    base = TextStyle(next(iter(fonts)), 6.0, 4.0, 1.15, (0, 0, 0), "left")
    base = _style(c, defaults, "defaults", base)
    colon_gap = c.get(defaults, "defaults", "colon_gap", "num", 1.0)
    if base.font not in fonts:
        raise c.fail("defaults.font", f"unknown font (declared: {', '.join(fonts)})")

    raw_elements = data.get("element", [])
    if not isinstance(raw_elements, list) or not raw_elements:
        raise c.fail("element", "at least one [[element]] is needed")
    elements: list[Element] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_elements):
        where = f"element[{index}]"
        kind = c.get(raw, where, "kind", "str")
        if kind not in KINDS:
            raise c.fail(f"{where}.kind", f"expected one of {sorted(KINDS)}")
        c.table(raw, where, _ELEMENT_KEYS[kind])
        ident = c.get(raw, where, "id", "str")
        if ident in seen:
            raise c.fail(f"{where}.id", f"duplicate id {ident!r}")
        seen.add(ident)
        box = Box(*c.get(raw, where, "box", "num[4]"))
        if box.w <= 0 or box.h <= 0 or box.x < 0 or box.y < 0:
            raise c.fail(f"{where}.box", "width and height must be positive, x and y >= 0")
        if box.x + box.w > size[0] + 1e-6 or box.y + box.h > size[1] + 1e-6:
            raise c.fail(
                f"{where}.box", f"box {box} lies outside the {size[0]} x {size[1]} mm card"
            )
        kw: dict[str, Any] = {"kind": kind, "id": ident, "box": box, "line": c.lines.get(where, 0)}
        if kind in ("text", "label", "qr"):
            kw["value"] = c.get(raw, where, "value", "str")
            try:
                list(string.Formatter().parse(kw["value"]))
            except ValueError as exc:
                raise c.fail(f"{where}.value", f"bad {{field}} syntax: {exc}") from exc
        if kind in ("text", "label"):
            kw["stack"] = c.get(raw, where, "stack", "str", "")
            style = _style(c, raw, where, base)
            if style.font not in fonts:
                raise c.fail(f"{where}.font", f"unknown font (declared: {', '.join(fonts)})")
            kw["style"] = style
            kw["lines"] = c.get(raw, where, "lines", "int", 1)
            if not 1 <= kw["lines"] <= 4:
                raise c.fail(f"{where}.lines", "need 1..4")
        if kind == "text":
            kw["label"] = c.get(raw, where, "label", "str", "")
            kw["label_x"] = c.get(raw, where, "label_x", "num", None)
            if kw["label"] and kw["label_x"] is None:
                raise c.fail(f"{where}.label_x", "missing (needed with label)")
            label_style = _style(c, raw, where, base, prefix="label_")
            if label_style.font not in fonts:
                raise c.fail(f"{where}.label_font", "unknown font")
            kw["label_style"] = label_style
            kw["colon_gap"] = c.get(raw, where, "colon_gap", "num", colon_gap)
        if kind in ("text", "qr"):
            for name, spec in Element(**kw).slots:
                if name not in KNOWN_FIELDS:
                    raise c.fail(f"{where}.value", f"unknown field {{{name}}}")
                if spec not in FORMATS:
                    raise c.fail(f"{where}.value", f"unknown format :{spec} (known: date)")
        elif kind == "label" and Element(**kw).slots:
            raise c.fail(f"{where}.value", 'a label is fixed text; use kind = "text" for fields')
        if kind in ("photo", "signature", "qr", "text"):
            kw["optional"] = c.get(raw, where, "optional", "bool", False)
        if kind == "photo":
            kw["min_age_years"] = c.get(raw, where, "min_age_years", "int", 0)
        if kind in ("signature", "qr"):
            kw["ink"] = c.get(raw, where, "ink", "color", (0, 0, 0))
        elements.append(Element(**kw))

    return Template(
        id=c.get(card, "card", "id", "str"),
        path=path,
        card_type=card_type,
        size_mm=size,
        labels_preprinted=c.get(card, "card", "labels_preprinted", "bool", False),
        uppercase_labels=c.get(card, "card", "uppercase_labels", "bool", False),
        photo_background=rule,
        preview_blank=c.get(card, "card", "preview_blank", "color", None),
        validity_years=validity,
        fonts=fonts,
        elements=tuple(elements),
    )


def load_template_file(path: Path) -> Template:
    """Read and validate one layout file; raises :class:`TemplateError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(path, None, "(file)", f"cannot read: {exc}") from exc
    return parse_template(text, path)


@cache
def load_template(name: str) -> Template:
    """The shipped template ``templates/<name>/layout.toml``, loaded once per process."""
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise TemplateError(Path(name), None, "(name)", "template names are lower case a-z0-9-")
    return load_template_file(TEMPLATES_DIR / name / "layout.toml")


def template_names() -> list[str]:
    """Names of the templates shipped in ``templates/``."""
    return sorted(p.parent.name for p in TEMPLATES_DIR.glob("*/layout.toml"))
