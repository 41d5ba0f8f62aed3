"""Printer profiles: one TOML file per printer model, loaded and validated strictly.

A profile says how to send a card to the model's CUPS queue (page name, options), how the card
is laid out (image area, orientation, back rotation), what one card costs in ribbon/film panels,
and how a card reaches the chip encoder. Unknown keys, missing keys and wrong types are
:class:`~printers.errors.ProfileError`\\ s naming the file, the key and its line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from printers.errors import ProfileError

PROFILE_DIR: Final = Path(__file__).resolve().parent

ORIENTATIONS: Final = frozenset({"landscape", "portrait"})
ROTATIONS: Final = frozenset({0, 90, 180, 270})
TECHNOLOGIES: Final = frozenset({"direct", "retransfer"})
ENCODER_METHODS: Final = frozenset({"vendor-command", "vendor-sdk", "cardsim", "none"})
PAGE_OPTIONS: Final = frozenset({"PageSize", "media"})
#: Options a profile may not set: the library decides them.
RESERVED_OPTIONS: Final = frozenset({"print-scaling", "fit-to-page", "sides", "media", "PageSize"})


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """Page and image geometry of one card side as the driver expects it."""

    page_option: str
    page_name: str
    image_width_mm: float
    image_height_mm: float
    dpi: int
    orientation: str
    back_rotation: int

    @property
    def image_px(self) -> tuple[int, int]:
        """Image area in pixels at ``dpi`` (width, height)."""
        return (
            round(self.image_width_mm / 25.4 * self.dpi),
            round(self.image_height_mm / 25.4 * self.dpi),
        )


@dataclass(frozen=True, slots=True)
class RibbonSpec:
    """The ribbon: its panel set, what one card spends, and a roll's capacity."""

    type: str
    panel_set: tuple[str, ...]
    front_panels: tuple[str, ...]
    back_panels: tuple[str, ...]
    capacity_sets: int
    sets_per_card_simplex: int
    sets_per_card_duplex: int
    film_capacity_panels: int = 0
    film_panels_per_side: int = 0

    def panels_per_card(self, duplex: bool) -> int:
        """Ribbon panels one card spends."""
        sets = self.sets_per_card_duplex if duplex else self.sets_per_card_simplex
        return sets * len(self.panel_set)

    def film_per_card(self, duplex: bool) -> int:
        """Retransfer film panels one card spends (0 for direct-to-card printers)."""
        return self.film_panels_per_side * (2 if duplex else 1)

    def cards_per_roll(self, duplex: bool) -> int:
        """Cards one full ribbon roll prints."""
        sets = self.sets_per_card_duplex if duplex else self.sets_per_card_simplex
        cards = self.capacity_sets // sets
        if self.film_panels_per_side:
            cards = min(cards, self.film_capacity_panels // self.film_per_card(duplex))
        return cards


@dataclass(frozen=True, slots=True)
class EncoderSpec:
    """How a card reaches the contactless encoder and leaves it."""

    method: str
    reader_pattern: str
    to_encoder: str = ""
    eject: str = ""
    reject: str = ""


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """One printer model's profile (see ``docs/printers.md`` for every key)."""

    id: str
    vendor: str
    model: str
    technology: str
    driver: str
    input_capacity: int
    output_capacity: int
    duplex: bool
    reports_supplies: bool
    media: MediaSpec
    ribbon: RibbonSpec
    encoder: EncoderSpec
    options: Mapping[str, str] = field(default_factory=dict)
    simplex_options: Mapping[str, str] = field(default_factory=dict)
    duplex_options: Mapping[str, str] = field(default_factory=dict)
    source: Path | None = None

    def job_options(self, duplex: bool | None = None) -> dict[str, str]:
        """CUPS job options for one card: page, ``print-scaling=none``, sides, driver options."""
        two_sided = self.duplex if duplex is None else duplex
        opts: dict[str, str] = {self.media.page_option: self.media.page_name}
        opts.update(self.options)
        opts.update(self.duplex_options if two_sided else self.simplex_options)
        opts["sides"] = "two-sided-long-edge" if two_sided else "one-sided"
        opts["print-scaling"] = "none"
        return opts


# -- strict loading ------------------------------------------------------------------------------

# Schema: key -> type (or nested schema). A type in a tuple means "list of that type".
_Schema = dict[str, Any]

_OPTIONS: Final = "options"  # marker for a string -> string table

_SCHEMA: Final[_Schema] = {
    "id": str,
    "vendor": str,
    "model": str,
    "technology": str,
    "driver": str,
    "duplex": bool,
    "reports_supplies": bool,
    "feeder": {"input_capacity": int, "output_capacity": int},
    "media": {
        "page_option": str,
        "page_name": str,
        "image_width_mm": float,
        "image_height_mm": float,
        "dpi": int,
        "orientation": str,
        "back_rotation": int,
    },
    "ribbon": {
        "type": str,
        "panel_set": (str,),
        "front_panels": (str,),
        "back_panels": (str,),
        "capacity_sets": int,
        "sets_per_card_simplex": int,
        "sets_per_card_duplex": int,
        "?film_capacity_panels": int,
        "?film_panels_per_side": int,
    },
    "?cups": {"?options": _OPTIONS, "?simplex_options": _OPTIONS, "?duplex_options": _OPTIONS},
    "encoder": {
        "method": str,
        "reader_pattern": str,
        "?to_encoder": str,
        "?eject": str,
        "?reject": str,
    },
}


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def fail(self, dotted: str, problem: str) -> ProfileError:
        leaf = dotted.rsplit(".", 1)[-1]
        line = next(
            (
                n
                for n, text in enumerate(self.lines, 1)
                if re.match(rf"\s*\[?\s*\"?{re.escape(leaf)}\"?\s*[=\]]", text)
            ),
            None,
        )
        where = f"{self.path}:{line}" if line else str(self.path)
        return ProfileError(f"{where}: key {dotted!r}: {problem}")

    def check(self, data: Mapping[str, Any], schema: _Schema, prefix: str = "") -> None:
        wanted = {k.lstrip("?"): k.startswith("?") for k in schema}
        for key in data:
            if key not in wanted:
                raise self.fail(prefix + key, "unknown key")
        for key, optional in wanted.items():
            dotted = prefix + key
            kind = schema[("?" if optional else "") + key]
            if key not in data:
                if optional:
                    continue
                raise self.fail(dotted, "missing")
            value = data[key]
            if isinstance(kind, dict):
                if not isinstance(value, dict):
                    raise self.fail(dotted, "must be a table")
                self.check(value, kind, dotted + ".")
            elif kind == _OPTIONS:
                if not isinstance(value, dict) or not all(
                    isinstance(v, str) for v in value.values()
                ):
                    raise self.fail(dotted, "must be a table of strings")
                for opt in value:
                    if opt in RESERVED_OPTIONS:
                        raise self.fail(f"{dotted}.{opt}", "is set by the library, not a profile")
            elif isinstance(kind, tuple):
                if not isinstance(value, list) or not all(isinstance(v, kind[0]) for v in value):
                    raise self.fail(dotted, f"must be a list of {kind[0].__name__}")
            elif kind is float:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self.fail(dotted, "must be a number")
            elif kind is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise self.fail(dotted, "must be an integer")
            elif not isinstance(value, kind):
                raise self.fail(dotted, f"must be a {kind.__name__}")


def load_profile(path: Path | str) -> PrinterProfile:
    """Load and validate one profile file; raise :class:`ProfileError` naming file and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}") from exc
    checker = _Checker(path, text)
    checker.check(data, _SCHEMA)
    media, ribbon, enc, cups = data["media"], data["ribbon"], data["encoder"], data.get("cups", {})

    def choose(dotted: str, value: object, allowed: frozenset[Any]) -> None:
        if value not in allowed:
            raise checker.fail(dotted, f"must be one of {sorted(allowed)}, not {value!r}")

    def positive(dotted: str, value: float) -> None:
        if value <= 0:
            raise checker.fail(dotted, "must be positive")

    choose("technology", data["technology"], TECHNOLOGIES)
    choose("media.page_option", media["page_option"], PAGE_OPTIONS)
    choose("media.orientation", media["orientation"], ORIENTATIONS)
    choose("media.back_rotation", media["back_rotation"], ROTATIONS)
    choose("encoder.method", enc["method"], ENCODER_METHODS)
    for key in ("image_width_mm", "image_height_mm", "dpi"):
        positive(f"media.{key}", media[key])
    for key in ("capacity_sets", "sets_per_card_simplex", "sets_per_card_duplex"):
        positive(f"ribbon.{key}", ribbon[key])
    for key in ("input_capacity", "output_capacity"):
        positive(f"feeder.{key}", data["feeder"][key])
    if not ribbon["panel_set"]:
        raise checker.fail("ribbon.panel_set", "must not be empty")
    for side in ("front_panels", "back_panels"):
        unknown = set(ribbon[side]) - set(ribbon["panel_set"])
        if unknown:
            raise checker.fail(f"ribbon.{side}", f"panels {sorted(unknown)} not in panel_set")
    film_cap = ribbon.get("film_capacity_panels", 0)
    film_side = ribbon.get("film_panels_per_side", 0)
    if data["technology"] == "retransfer" and (film_cap <= 0 or film_side <= 0):
        raise checker.fail("ribbon.film_panels_per_side", "retransfer printers need film panels")
    if data["technology"] == "direct" and (film_cap or film_side):
        raise checker.fail("ribbon.film_panels_per_side", "direct-to-card printers use no film")
    if path.stem != data["id"]:
        raise checker.fail("id", f"must match the file name {path.stem!r}")
    return PrinterProfile(
        id=data["id"],
        vendor=data["vendor"],
        model=data["model"],
        technology=data["technology"],
        driver=data["driver"],
        input_capacity=data["feeder"]["input_capacity"],
        output_capacity=data["feeder"]["output_capacity"],
        duplex=data["duplex"],
        reports_supplies=data["reports_supplies"],
        media=MediaSpec(
            page_option=media["page_option"],
            page_name=media["page_name"],
            image_width_mm=float(media["image_width_mm"]),
            image_height_mm=float(media["image_height_mm"]),
            dpi=media["dpi"],
            orientation=media["orientation"],
            back_rotation=media["back_rotation"],
        ),
        ribbon=RibbonSpec(
            type=ribbon["type"],
            panel_set=tuple(ribbon["panel_set"]),
            front_panels=tuple(ribbon["front_panels"]),
            back_panels=tuple(ribbon["back_panels"]),
            capacity_sets=ribbon["capacity_sets"],
            sets_per_card_simplex=ribbon["sets_per_card_simplex"],
            sets_per_card_duplex=ribbon["sets_per_card_duplex"],
            film_capacity_panels=film_cap,
            film_panels_per_side=film_side,
        ),
        encoder=EncoderSpec(
            method=enc["method"],
            reader_pattern=enc["reader_pattern"],
            to_encoder=enc.get("to_encoder", ""),
            eject=enc.get("eject", ""),
            reject=enc.get("reject", ""),
        ),
        options=dict(cups.get("options", {})),
        simplex_options=dict(cups.get("simplex_options", {})),
        duplex_options=dict(cups.get("duplex_options", {})),
        source=path,
    )


def available_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    """Ids of the profiles shipped in ``directory``."""
    return sorted(p.stem for p in directory.glob("*.toml"))


def get_profile(profile_id: str, directory: Path = PROFILE_DIR) -> PrinterProfile:
    """Load a shipped profile by id; :class:`ProfileError` if there is none."""
    path = directory / f"{profile_id}.toml"
    if not path.is_file():
        raise ProfileError(
            f"{path}: no printer profile {profile_id!r}; known: {available_profiles(directory)}"
        )
    return load_profile(path)
