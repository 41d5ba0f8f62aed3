"""The record validator: one line of ``records.jsonl`` against ``docs/batch-format.md``.

:func:`validate_record` never raises on bad input: it returns every problem it finds (the
record is refused) and every hold reason (the record is imported but held for a supervisor).
Media files are only checked for their paths here; :mod:`printsrv.media` checks the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from printsrv.config import DEFAULT_RELIGIONS
from printsrv.nik import is_nik, nik_hold_reasons, parse_nik
from printsrv.products import CARD_TYPES, KIA, KTP_EL, PRODUCTS
from printsrv.regions import OFFICE_CODE_RE, RegionTable, countries, region_table

WNI = "WNI"
WNA = "WNA"
SEUMUR_HIDUP = "SEUMUR HIDUP"
TUNGGAL = "TUNGGAL"

JENIS_KELAMIN = ("LAKI-LAKI", "PEREMPUAN")
GOLONGAN_DARAH = ("A", "B", "AB", "O", "A+", "B+", "AB+", "O+", "A-", "B-", "AB-", "O-", "-")
STATUS_PERKAWINAN_WNI = (
    "BELUM KAWIN",
    "KAWIN",
    "KAWIN TERCATAT",
    "KAWIN BELUM TERCATAT",
    "CERAI HIDUP",
    "CERAI MATI",
)
#: English values printed on WNA cards, in the order of the Indonesian ones above.
STATUS_PERKAWINAN_WNA = ("SINGLE", "MARRIED", "DIVORCED", "WIDOWED")
#: Statuses that, below age 17, mean the holder may not have a KTP-EL yet.
UNMARRIED = ("BELUM KAWIN", "SINGLE")

ADULT_AGE = 17  # KTP-EL from 17 (or married); KIA below 17
KIA_PHOTO_AGE = 5  # a KIA carries a photo only from age 5

MEDIA_KEYS = ("photo", "signature", "finger_right_index", "finger_left_index")
MEDIA_EXTENSIONS = {
    "photo": (".jpg", ".jpeg"),
    "signature": (".png",),
    "finger_right_index": (".fmr",),
    "finger_left_index": (".fmr",),
}

COMMON_FIELDS = (
    "card_type",
    "request_id",
    "nik",
    "no_kk",
    "nama",
    "tempat_lahir",
    "tanggal_lahir",
    "jenis_kelamin",
    "golongan_darah",
    "alamat",
    "rt",
    "rw",
    "kel_desa",
    "kecamatan",
    "kabupaten_kota",
    "provinsi",
    "agama",
    "status_perkawinan",
    "pekerjaan",
    "kewarganegaraan",
    "negara",
    "berlaku_hingga",
    "tempat_terbit",
    "penunggalan",
    "office_code",
    "phone",
    "media",
)
KIA_FIELDS = PRODUCTS[KIA].own_fields
ALL_FIELDS = COMMON_FIELDS + KIA_FIELDS
#: Fields that may be absent (or ``null``) in every record.
OPTIONAL_FIELDS = frozenset({"card_type", "no_kk", "negara", "phone"})

NAME_MAX = 60
ALAMAT_MAX = 100
TEXT_MAX = 60  # place names, occupation, region names
REQUEST_ID_MAX = 64

_NAME_RE = re.compile(r"[A-Z][A-Z .',-]*", re.ASCII)
_RTRW_RE = re.compile(r"[0-9]{3}", re.ASCII)
_DIGITS16_RE = re.compile(r"[0-9]{16}", re.ASCII)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_PHONE_RE = re.compile(r"\+62[1-9][0-9]{6,11}", re.ASCII)  # E.164: at most 15 digits
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*", re.ASCII)
_AKTA_RE = re.compile(r"[A-Z0-9][A-Z0-9./ -]*", re.ASCII)
_COUNTRY_RE = re.compile(r"[A-Z]{3}", re.ASCII)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One reason a record is refused: the field (``media.photo`` for nested ones) and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(slots=True)
class RecordCheck:
    """The outcome of :func:`validate_record`.

    ``record`` is the normalized record (``card_type`` filled in, free text whitespace-trimmed);
    it is only meaningful when ``problems`` is empty.
    """

    record: dict[str, Any]
    problems: list[FieldProblem] = field(default_factory=list)
    hold_reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem: the record may be imported (possibly on hold)."""
        return not self.problems

    @property
    def held(self) -> bool:
        return bool(self.hold_reasons)

    @property
    def request_id(self) -> str:
        """The request id for messages, ``?`` when missing or unusable."""
        value = self.record.get("request_id")
        return value if isinstance(value, str) and value else "?"

    @property
    def nik(self) -> str:
        """The NIK for messages, ``?`` when missing or unusable."""
        value = self.record.get("nik")
        return value if isinstance(value, str) and value else "?"


def age_on(born: date, today: date) -> int:
    """Completed years between ``born`` and ``today``."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def parse_iso_date(value: str) -> date | None:
    """A ``YYYY-MM-DD`` string as a real date, else ``None``."""
    if not _DATE_RE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _has_control(value: str) -> bool:
    return not value.isprintable()


class _Checker:
    """Collects problems for one record; each ``_check_*`` handles one field."""

    def __init__(
        self, obj: Mapping[str, Any], today: date, religions: Sequence[str], table: RegionTable
    ) -> None:
        self.src = obj
        self.today = today
        self.religions = tuple(religions)
        self.table = table
        self.out: dict[str, Any] = {}
        self.problems: list[FieldProblem] = []
        self.holds: list[str] = []

    def problem(self, name: str, reason: str) -> None:
        self.problems.append(FieldProblem(name, reason))

    # -- generic getters -------------------------------------------------------------------

    def present(self, name: str) -> bool:
        return name in self.src and self.src[name] is not None

    def string(self, name: str, *, required: bool = True, strip: bool = False) -> str | None:
        """The field as a string (copied to the output), or ``None`` after reporting why not."""
        if not self.present(name):
            if required:
                self.problem(name, "is required")
            return None
        value = self.src[name]
        if not isinstance(value, str):
            self.problem(name, f"must be a string, not {_json_type(value)}")
            return None
        if strip:
            value = " ".join(value.split())
        if value == "":
            self.problem(name, "must not be empty")
            return None
        if _has_control(value):
            self.problem(name, "contains control or non-printable characters")
            return None
        self.out[name] = value
        return value

    def enum(self, name: str, allowed: Sequence[str], *, what: str | None = None) -> str | None:
        value = self.string(name)
        if value is not None and value not in allowed:
            self.problem(name, f"{value!r} is not {what or 'one of ' + ', '.join(allowed)}")
            return None
        return value

    def upper_text(self, name: str, max_len: int = TEXT_MAX, *, required: bool = True) -> None:
        value = self.string(name, required=required, strip=True)
        if value is None:
            return
        if value != value.upper():
            self.problem(name, "must be upper case")
        if len(value) > max_len:
            self.problem(name, f"is {len(value)} characters, at most {max_len} allowed")

    def person_name(self, name: str) -> None:
        value = self.string(name, strip=True)
        if value is None:
            return
        if len(value) > NAME_MAX:
            self.problem(name, f"is {len(value)} characters, at most {NAME_MAX} allowed")
        if not _NAME_RE.fullmatch(value):
            self.problem(
                name,
                "must be upper case letters A-Z, spaces and . ' , - only, starting with a letter",
            )

    def date_field(self, name: str) -> date | None:
        value = self.string(name)
        if value is None:
            return None
        parsed = parse_iso_date(value)
        if parsed is None:
            self.problem(name, f"{value!r} is not a real date in YYYY-MM-DD form")
        return parsed

    def digits16(self, name: str, *, required: bool) -> str | None:
        value = self.string(name, required=required)
        if value is not None and not _DIGITS16_RE.fullmatch(value):
            self.problem(name, "must be exactly 16 digits")
            return None
        return value

    # -- the record ------------------------------------------------------------------------

    def run(self) -> None:
        card_type = self.check_card_type()
        is_kia = card_type == KIA
        allowed = ALL_FIELDS if is_kia else COMMON_FIELDS
        for key in self.src:
            if key not in allowed:
                why = (
                    "is only allowed on KIA records"
                    if key in KIA_FIELDS
                    else "is not a known field"
                )
                self.problem(str(key), why)

        request_id = self.string("request_id")
        if request_id is not None:
            if len(request_id) > REQUEST_ID_MAX:
                self.problem("request_id", f"is longer than {REQUEST_ID_MAX} characters")
            elif not _REQUEST_ID_RE.fullmatch(request_id):
                self.problem("request_id", "may hold only letters, digits and . _ : / -")

        nik_ok = self.check_nik_format()
        self.digits16("no_kk", required="no_kk" in PRODUCTS[card_type].required_fields)
        self.person_name("nama")
        self.upper_text("tempat_lahir")
        born = self.date_field("tanggal_lahir")
        sex = self.enum("jenis_kelamin", JENIS_KELAMIN)
        self.enum("golongan_darah", GOLONGAN_DARAH, what="a blood group (A, B, AB, O, +/-, or -)")
        self.upper_text("alamat", ALAMAT_MAX)
        for name in ("rt", "rw"):
            value = self.string(name)
            if value is not None and not _RTRW_RE.fullmatch(value):
                self.problem(name, "must be exactly 3 digits, e.g. 001")
        for name in ("kel_desa", "kecamatan", "kabupaten_kota", "provinsi"):
            self.upper_text(name)
        self.enum("agama", self.religions, what="a configured religion")

        citizenship = self.enum("kewarganegaraan", (WNI, WNA))
        status = self.check_status(citizenship)
        self.upper_text("pekerjaan")
        self.check_negara(citizenship)
        self.check_berlaku(citizenship, is_kia, born)
        self.upper_text("tempat_terbit")
        value = self.string("penunggalan")
        if value is not None and value != TUNGGAL:
            self.problem(
                "penunggalan", f"{value!r} is not TUNGGAL: only de-duplicated records print"
            )
        self.check_office_code()
        self.check_phone()

        age = None
        if born is not None:
            if born > self.today:
                self.problem("tanggal_lahir", "is in the future")
            else:
                age = age_on(born, self.today)
                self.check_age(age, is_kia, status)
        if is_kia:
            self.person_name("nama_kepala_keluarga")
            akta = self.string("no_akta_lahir", strip=True)
            if akta is not None and (len(akta) > 40 or not _AKTA_RE.fullmatch(akta)):
                self.problem(
                    "no_akta_lahir", "must be 1-40 upper case letters, digits, spaces and . / -"
                )
        self.check_media(is_kia, age)

        if nik_ok:
            nik = parse_nik(self.src["nik"])
            self.holds.extend(
                nik_hold_reasons(nik, tanggal_lahir=born, jenis_kelamin=sex, table=self.table)
            )

    def check_card_type(self) -> str:
        if not self.present("card_type"):
            self.out["card_type"] = KTP_EL
            return KTP_EL
        value = self.enum("card_type", CARD_TYPES)
        return value or KTP_EL

    def check_nik_format(self) -> bool:
        value = self.string("nik")
        if value is None:
            return False
        if not is_nik(value):
            self.problem("nik", "must be exactly 16 digits")
            return False
        return True

    def check_status(self, citizenship: str | None) -> str | None:
        allowed: tuple[str, ...] = (
            STATUS_PERKAWINAN_WNA if citizenship == WNA else STATUS_PERKAWINAN_WNI
        )
        if citizenship is None:
            allowed = STATUS_PERKAWINAN_WNI + STATUS_PERKAWINAN_WNA
        what = "one of " + ", ".join(allowed)
        if citizenship == WNA:
            what += " (English values on WNA cards)"
        return self.enum("status_perkawinan", allowed, what=what)

    def check_negara(self, citizenship: str | None) -> None:
        if citizenship == WNA:
            value = self.string("negara")
            if value is None:
                return
            if not _COUNTRY_RE.fullmatch(value) or value not in countries():
                self.problem("negara", f"{value!r} is not an ISO 3166 alpha-3 country code")
            elif value == "IDN":
                self.problem("negara", "IDN is not a foreign nationality (use WNI)")
        elif citizenship == WNI and self.present("negara"):
            value = self.string("negara")
            if value is not None and value != "IDN":
                self.problem("negara", "must be absent or IDN for a WNI")

    def check_berlaku(self, citizenship: str | None, is_kia: bool, born: date | None) -> None:
        value = self.string("berlaku_hingga")
        if value is None or citizenship is None:
            return
        if value == SEUMUR_HIDUP:
            if citizenship == WNA:
                self.problem("berlaku_hingga", "must be a YYYY-MM-DD date for a WNA")
            return
        until = parse_iso_date(value)
        if citizenship == WNI and not is_kia:
            self.problem("berlaku_hingga", f"must be {SEUMUR_HIDUP} for a WNI")
        elif until is None:
            self.problem("berlaku_hingga", f"{value!r} is not a real date in YYYY-MM-DD form")
        elif until < self.today:
            self.problem("berlaku_hingga", f"{value} has already passed")

    def check_office_code(self) -> None:
        value = self.string("office_code")
        if value is None:
            return
        if not OFFICE_CODE_RE.fullmatch(value):
            self.problem("office_code", "must have the form PP.KK.CC, e.g. 35.26.01")
        elif not self.table.is_known_district(value):
            self.problem(
                "office_code",
                f"{value} is not a district in the region table "
                f"({self.table.source} {self.table.version})",
            )

    def check_phone(self) -> None:
        value = self.string("phone", required=False)
        if value is not None and not _PHONE_RE.fullmatch(value):
            self.problem("phone", "must be an Indonesian E.164 number, e.g. +6281234567890")

    def check_age(self, age: int, is_kia: bool, status: str | None) -> None:
        if is_kia:
            if age >= ADULT_AGE:
                self.problem("tanggal_lahir", f"holder is {age}: KIA is for children under 17")
        elif age < ADULT_AGE and status in UNMARRIED:
            self.problem(
                "tanggal_lahir",
                f"holder is {age}: a KTP-EL needs age 17 or a status other than {status}",
            )

    def check_media(self, is_kia: bool, age: int | None) -> None:
        if not self.present("media"):
            self.problem("media", "is required")
            return
        media = self.src["media"]
        if not isinstance(media, dict):
            self.problem("media", f"must be an object, not {_json_type(media)}")
            return
        for key in media:
            if key not in MEDIA_KEYS:
                self.problem(f"media.{key}", "is not a known media key")
        out: dict[str, str | None] = {}
        for key in MEDIA_KEYS:
            name = f"media.{key}"
            if key not in media:
                self.problem(name, "is required (null when the card type has none)")
                continue
            value = media[key]
            expected = self.media_expected(key, is_kia, age)
            if value is None:
                if expected is True:
                    self.problem(name, "is required")
                out[key] = None
                continue
            if expected is False:
                if key == "photo":
                    reason = f"must be null: a KIA carries a photo only from age {KIA_PHOTO_AGE}"
                else:
                    reason = "must be null: a KIA has no fingerprints"
                self.problem(name, reason)
                continue
            if not isinstance(value, str):
                self.problem(name, f"must be a path string or null, not {_json_type(value)}")
                continue
            why = media_path_problem(value, MEDIA_EXTENSIONS[key])
            if why:
                self.problem(name, why)
                continue
            out[key] = value
        self.out["media"] = out

    @staticmethod
    def media_expected(key: str, is_kia: bool, age: int | None) -> bool | None:
        """True: required; False: must be null; None: either (age unknown)."""
        if not is_kia:
            return True
        if key == "photo":
            return None if age is None else age >= KIA_PHOTO_AGE
        if key == "signature":
            return None  # a KIA shows no holder signature; accept one if the registry sends it
        return False


def media_path_problem(path: str, extensions: Sequence[str]) -> str | None:
    """Why ``path`` is not a safe relative path inside the batch with a right extension."""
    if path == "" or _has_control(path):
        return "must be a non-empty path"
    if path.startswith("/") or "\\" in path or re.match(r"[A-Za-z]:", path):
        return "must be a relative path inside the batch"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "must not contain empty, '.' or '..' path parts"
    if not path.lower().endswith(tuple(extensions)):
        return f"must end with {' or '.join(extensions)}"
    return None


def _json_type(value: object) -> str:
    names: dict[type, str] = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


def validate_record(
    obj: object,
    *,
    today: date,
    religions: Sequence[str] = DEFAULT_RELIGIONS,
    regions: RegionTable | None = None,
) -> RecordCheck:
    """Check one decoded JSON line; never raises for bad input.

    ``today`` is the intake date (age and validity checks); ``religions`` the configured
    *agama* list; ``regions`` the region table (the shipped one by default).
    """
    if not isinstance(obj, dict):
        return RecordCheck(
            {}, [FieldProblem("record", f"must be an object, not {_json_type(obj)}")]
        )
    checker = _Checker(obj, today, religions, regions or region_table())
    checker.run()
    # Keys from the source that we did not copy (unknown, invalid) are left out of ``record``,
    # except that ids are kept verbatim for messages.
    for key in ("request_id", "nik"):
        if key not in checker.out and isinstance(obj.get(key), str):
            checker.out[key] = obj[key]
    ordered = {k: checker.out[k] for k in ALL_FIELDS if k in checker.out}
    return RecordCheck(ordered, checker.problems, checker.holds)
