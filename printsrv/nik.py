"""The NIK (*Nomor Induk Kependudukan*): ``PP KK CC DDMMYY SSSS``.

``PP KK CC`` is the district where the NIK was first issued (regencies 01–69, cities 71–99),
``DDMMYY`` the birth date with 40 added to the day for women, ``SSSS`` the SIAK sequence
0001–9999. Only "not 16 digits" is an error (:class:`NikError`); every other inconsistency is a
*hold reason*: a string for the supervisor who reviews the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from printsrv.errors import InvalidValue, PrintSrvError
from printsrv.regions import RegionTable, region_table

NIK_RE = re.compile(r"[0-9]{16}", re.ASCII)

MALE = "LAKI-LAKI"
FEMALE = "PEREMPUAN"


class NikError(PrintSrvError):
    """The value is not a NIK at all (not a string of exactly 16 ASCII digits)."""


@dataclass(frozen=True, slots=True)
class Nik:
    """A NIK split into its parts; the raw date fields are kept as found."""

    value: str
    province: str  # "35"
    regency: str  # "26"; 01–69 kabupaten, 71–99 kota
    district: str  # "01"
    day_field: int  # 1–31, or 41–71 for women
    month: int
    year2: int  # two-digit year, century unknown
    sequence: int  # 1–9999

    @property
    def region_code(self) -> str:
        """``PP.KK.CC`` as in the Kemendagri table."""
        return f"{self.province}.{self.regency}.{self.district}"

    @property
    def is_female(self) -> bool:
        return self.day_field > 40

    @property
    def jenis_kelamin(self) -> str:
        return FEMALE if self.is_female else MALE

    @property
    def birth_day(self) -> int:
        return self.day_field - 40 if self.is_female else self.day_field

    @property
    def is_city(self) -> bool:
        return int(self.regency) >= 71

    def birth_date_candidates(self) -> tuple[date, ...]:
        """The real dates (1900s and 2000s) that the date part can mean, oldest first."""
        out = []
        for century in (1900, 2000):
            try:
                out.append(date(century + self.year2, self.month, self.birth_day))
            except ValueError:
                continue
        return tuple(out)

    def birth_date(self, today: date) -> date | None:
        """The most recent candidate birth date not after ``today``; ``None`` if there is none."""
        past = [d for d in self.birth_date_candidates() if d <= today]
        return past[-1] if past else None

    def matches_birth_date(self, born: date) -> bool:
        """True when the date part encodes ``born`` (day, month and the year's last two digits)."""
        return (
            self.birth_day == born.day
            and self.month == born.month
            and self.year2 == born.year % 100
        )


def is_nik(value: object) -> bool:
    """True for a string of exactly 16 ASCII digits."""
    return isinstance(value, str) and NIK_RE.fullmatch(value) is not None


def parse_nik(value: object) -> Nik:
    """Split a NIK into its parts. Raises :class:`NikError` unless it is 16 ASCII digits.

    No other check is made here: see :func:`structure_hold_reasons` and friends.
    """
    if not isinstance(value, str):
        raise NikError(f"NIK must be a string, not {type(value).__name__}")
    if NIK_RE.fullmatch(value) is None:
        raise NikError("NIK must be exactly 16 digits")
    return Nik(
        value=value,
        province=value[0:2],
        regency=value[2:4],
        district=value[4:6],
        day_field=int(value[6:8]),
        month=int(value[8:10]),
        year2=int(value[10:12]),
        sequence=int(value[12:16]),
    )


def make_nik(region_code: str, born: date, *, female: bool, sequence: int) -> str:
    """Build a NIK from ``PP.KK.CC``, birth date, sex and sequence (the inverse of parsing)."""
    if not 1 <= sequence <= 9999:
        raise InvalidValue(f"sequence {sequence} outside 1..9999")
    prefix = region_code.replace(".", "")
    if len(prefix) != 6 or not prefix.isdigit():
        raise InvalidValue(f"bad region code {region_code!r}")
    day = born.day + 40 if female else born.day
    return f"{prefix}{day:02d}{born.month:02d}{born.year % 100:02d}{sequence:04d}"


def structure_hold_reasons(nik: Nik) -> list[str]:
    """Reasons the NIK cannot have been issued as it is (date part, sequence, code ranges)."""
    reasons = []
    if not 1 <= nik.day_field <= 31 and not 41 <= nik.day_field <= 71:
        reasons.append(f"NIK day field {nik.day_field:02d} is neither 01-31 nor 41-71")
    elif not nik.birth_date_candidates():
        reasons.append(f"NIK date part {nik.value[6:12]} is not a real date")
    if nik.sequence == 0:
        reasons.append("NIK sequence 0000 is outside 0001-9999")
    if nik.province == "00" or nik.regency in ("00", "70") or nik.district == "00":
        reasons.append(f"NIK region part {nik.region_code} is not a valid code")
    return reasons


def birth_hold_reasons(
    nik: Nik, tanggal_lahir: date | None, jenis_kelamin: str | None
) -> list[str]:
    """Disagreements between the NIK date part and the record's birth date and sex."""
    reasons = []
    if tanggal_lahir is not None and not nik.matches_birth_date(tanggal_lahir):
        reasons.append(
            f"NIK date part {nik.value[6:12]} does not match tanggal_lahir "
            f"{tanggal_lahir.isoformat()}"
        )
    if jenis_kelamin in (MALE, FEMALE) and jenis_kelamin != nik.jenis_kelamin:
        reasons.append(
            f"NIK day field {nik.day_field:02d} means {nik.jenis_kelamin}, "
            f"record says {jenis_kelamin}"
        )
    return reasons


def region_hold_reasons(nik: Nik, table: RegionTable | None = None) -> list[str]:
    """``[reason]`` when the NIK's ``PP.KK.CC`` prefix is not in the region table."""
    table = table or region_table()
    if table.is_known_nik_prefix(nik.value):
        return []
    return [
        f"NIK region prefix {nik.region_code} is not in the region table "
        f"({table.source} {table.version})"
    ]


def nik_hold_reasons(
    nik: Nik,
    *,
    tanggal_lahir: date | None,
    jenis_kelamin: str | None,
    table: RegionTable | None = None,
) -> list[str]:
    """Every hold reason for this NIK in a record (structure, birth date/sex, region)."""
    return (
        structure_hold_reasons(nik)
        + birth_hold_reasons(nik, tanggal_lahir, jenis_kelamin)
        + region_hold_reasons(nik, table)
    )
