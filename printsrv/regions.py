"""The Kemendagri region table: provinces, regencies/cities and districts (``PP.KK.CC``).

The table ships in ``printsrv/data/regions.csv.gz`` (from the npm package ``idn-area-data``,
ODbL; see ``printsrv/data/REGIONS-LICENSE.md``) and is loaded once per process.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from printsrv.errors import InvalidValue

DATA_DIR = Path(__file__).resolve().parent / "data"
REGIONS_FILE = DATA_DIR / "regions.csv.gz"
COUNTRIES_FILE = DATA_DIR / "countries.csv"

_CODE_RE = re.compile(r"[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2})?)?", re.ASCII)
OFFICE_CODE_RE = re.compile(r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}", re.ASCII)


class RegionLevel(StrEnum):
    PROVINCE = "province"
    REGENCY = "regency"  # kabupaten or kota
    DISTRICT = "district"  # kecamatan


_LEVELS = {2: RegionLevel.PROVINCE, 5: RegionLevel.REGENCY, 8: RegionLevel.DISTRICT}
_REGENCY_PREFIXES = ("Kabupaten Administrasi ", "Kota Administrasi ", "Kabupaten ", "Kota ")


@dataclass(frozen=True, slots=True)
class Region:
    """One entry of the table; ``name`` is as published (mixed case)."""

    code: str
    name: str

    @property
    def level(self) -> RegionLevel:
        return _LEVELS[len(self.code)]

    @property
    def parent_code(self) -> str | None:
        return self.code[:-3] if len(self.code) > 2 else None

    @property
    def is_city(self) -> bool:
        """A *kota* (regency code 71–99) rather than a *kabupaten* (01–69)."""
        return self.level is RegionLevel.REGENCY and int(self.code[3:5]) >= 71

    @property
    def upper_name(self) -> str:
        """The full upper-case name, e.g. ``KABUPATEN BANGKALAN``, ``KOTA SURABAYA``."""
        return self.name.upper()

    @property
    def short_name(self) -> str:
        """Upper-case name without ``KABUPATEN``/``KOTA`` (``BANGKALAN``), for *tempat terbit*."""
        for prefix in _REGENCY_PREFIXES:
            if self.level is RegionLevel.REGENCY and self.name.startswith(prefix):
                return self.name[len(prefix) :].upper()
        return self.name.upper()


@dataclass(frozen=True, slots=True)
class RegionNames:
    """The upper-case names of a district and its parents, as a record carries them."""

    provinsi: str
    kabupaten_kota: str  # full form: "KABUPATEN BANGKALAN" / "KOTA SURABAYA"
    kecamatan: str
    tempat_terbit: str  # short form of the regency/city: "BANGKALAN"


class RegionTable:
    """An immutable code → region mapping with the look-ups intake and the generator need."""

    def __init__(self, regions: dict[str, Region], source: str, version: str) -> None:
        self._regions = regions
        self.source = source
        self.version = version
        self.districts: tuple[str, ...] = tuple(c for c in regions if len(c) == 8)

    def __len__(self) -> int:
        return len(self._regions)

    def __contains__(self, code: object) -> bool:
        return code in self._regions

    def lookup(self, code: str) -> Region | None:
        """The region with this dotted code (``35``, ``35.26``, ``35.26.01``), or ``None``."""
        return self._regions.get(code)

    def is_known_district(self, code: str) -> bool:
        """True when ``code`` is a ``PP.KK.CC`` district in the table (e.g. an office code)."""
        return len(code) == 8 and code in self._regions

    def is_known_nik_prefix(self, nik: str) -> bool:
        """True when the first six digits of ``nik`` are a known district."""
        if len(nik) < 6 or not nik[:6].isascii() or not nik[:6].isdigit():
            return False
        return f"{nik[0:2]}.{nik[2:4]}.{nik[4:6]}" in self._regions

    def names(self, district_code: str) -> RegionNames:
        """Upper-case province, regency/city and district names of a ``PP.KK.CC`` code.

        Raises ``KeyError`` for an unknown district.
        """
        district = self._regions[district_code]
        if district.level is not RegionLevel.DISTRICT:
            raise KeyError(district_code)
        regency = self._regions[district_code[:5]]
        province = self._regions[district_code[:2]]
        return RegionNames(
            provinsi=province.upper_name,
            kabupaten_kota=regency.upper_name,
            kecamatan=district.upper_name,
            tempat_terbit=regency.short_name,
        )

    def children(self, code: str) -> list[Region]:
        """Direct children of a province or regency, in code order."""
        n = len(code) + 3
        return [r for c, r in self._regions.items() if len(c) == n and c.startswith(code + ".")]


def load_region_table(path: Path = REGIONS_FILE) -> RegionTable:
    """Read a table file written by ``printsrv/data/build_regions.py``."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    source, version = (header[1], header[2]) if header and header[0] == "#source" else ("", "")
    regions: dict[str, Region] = {}
    for code, name in reader:
        if not _CODE_RE.fullmatch(code):
            raise InvalidValue(f"{path}: bad region code {code!r}")
        regions[code] = Region(code, name)
    return RegionTable(regions, source, version)


@cache
def region_table() -> RegionTable:
    """The shipped table, loaded once per process."""
    return load_region_table()


def lookup(code: str) -> Region | None:
    """Shortcut for ``region_table().lookup(code)``."""
    return region_table().lookup(code)


def is_known_nik_prefix(nik: str) -> bool:
    """Shortcut for ``region_table().is_known_nik_prefix(nik)``."""
    return region_table().is_known_nik_prefix(nik)


def is_known_office_code(code: str) -> bool:
    """True when ``code`` has the ``PP.KK.CC`` form and is a district in the table."""
    return bool(OFFICE_CODE_RE.fullmatch(code)) and region_table().is_known_district(code)


def names_for(district_code: str) -> RegionNames:
    """Shortcut for ``region_table().names(code)``; ``KeyError`` when unknown."""
    return region_table().names(district_code)


@cache
def countries() -> dict[str, str]:
    """ISO 3166-1 alpha-3 code → upper-case English short name (from Debian ``iso-codes``)."""
    with open(COUNTRIES_FILE, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return {code: name for code, name in rows[1:]}
