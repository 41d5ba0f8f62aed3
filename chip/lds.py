"""ICAO Doc 9303 LDS1 elementary files: the file table, the TD1 MRZ and data-group builders.

SEUMUR HIDUP ("valid for life") has no expiry date. ICAO 9303-5 makes the TD1 date of expiry a
mandatory, check-digited date; a filler-only date is defined only for an unknown date of birth.
A lifetime card therefore carries the latest date the field can hold, ``991231`` (31 December
2099), with its normal check digit (see docs/chip.md).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from enum import Enum

from chip.errors import DataError, MalformedError
from chip.tlv import find, parse, tlv, unwrap

LDS_AID = bytes.fromhex("A0000002471001")
LDS_VERSION = b"0107"
UNICODE_VERSION = b"040000"


@dataclass(frozen=True)
class LdsFile:
    name: str
    fid: int
    sfi: int
    tag: int
    dg: int | None  # data-group number, None for EF.COM / EF.SOD


class Ef(Enum):
    """The elementary files we write, in writing order (EF.SOD last)."""

    COM = LdsFile("EF.COM", 0x011E, 0x1E, 0x60, None)
    DG1 = LdsFile("DG1", 0x0101, 0x01, 0x61, 1)
    DG2 = LdsFile("DG2", 0x0102, 0x02, 0x75, 2)
    DG3 = LdsFile("DG3", 0x0103, 0x03, 0x63, 3)
    DG7 = LdsFile("DG7", 0x0107, 0x07, 0x67, 7)
    DG11 = LdsFile("DG11", 0x010B, 0x0B, 0x6B, 11)
    DG12 = LdsFile("DG12", 0x010C, 0x0C, 0x6C, 12)
    DG14 = LdsFile("DG14", 0x010E, 0x0E, 0x6E, 14)  # SecurityInfos: the AA algorithm
    DG15 = LdsFile("DG15", 0x010F, 0x0F, 0x6F, 15)  # Active Authentication public key
    CVCA = LdsFile("EF.CVCA", 0x011C, 0x1C, 0x42, None)  # EAC: the CVCA the chip trusts
    SOD = LdsFile("EF.SOD", 0x011D, 0x1D, 0x77, None)


DATA_GROUPS = (Ef.DG1, Ef.DG2, Ef.DG3, Ef.DG7, Ef.DG11, Ef.DG12, Ef.DG14, Ef.DG15)


@dataclass(frozen=True, repr=False)
class HolderData:
    """What the chip needs of one holder; plain data filled by the application."""

    document_number: str  # the 16-digit NIK
    name: str
    birth_date: dt.date
    sex: str  # "M", "F" or "<"
    expiry: dt.date | None  # None: SEUMUR HIDUP
    place_of_birth: str
    address: tuple[str, ...]
    issuing_authority: str
    issue_date: dt.date
    photo_jpeg: bytes
    signature_image: bytes
    finger_right_index_fmr: bytes | None = None
    finger_left_index_fmr: bytes | None = None
    nationality: str = "IDN"
    issuing_state: str = "IDN"
    document_code: str = "ID"
    occupation: str = ""
    personal_summary: str = ""  # religion, marital status, blood type
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never leak personal data into logs
        return "HolderData(<redacted>)"


# -- MRZ ---------------------------------------------------------------------------------------
_MRZ_VALUES = {c: i for i, c in enumerate("0123456789")} | {
    chr(ord("A") + i): 10 + i for i in range(26)
} | {"<": 0}


def check_digit(text: str) -> str:
    """ICAO 9303 check digit (weights 7, 3, 1)."""
    try:
        total = sum(_MRZ_VALUES[c] * (7, 3, 1)[i % 3] for i, c in enumerate(text))
    except KeyError as exc:
        raise DataError(f"character {exc.args[0]!r} not allowed in the MRZ") from exc
    return str(total % 10)


# Letters without an ASCII decomposition (ICAO 9303-3 section 6 transliteration table).
_ICAO_TRANSLITERATION = str.maketrans({"Đ": "D", "Ð": "D", "Æ": "AE", "Ø": "OE", "Þ": "TH",
                                       "ß": "SS", "Ł": "L", "Œ": "OE", "Ħ": "H", "ẞ": "SS"})


def mrz_name(name: str, width: int = 30) -> str:
    """Transliterate a name to the MRZ alphabet; Indonesian names have no surname, so the
    whole name is the primary identifier."""
    text = name.upper().translate(_ICAO_TRANSLITERATION)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"['.]", "", text)
    text = re.sub(r"[^A-Z]+", "<", text).strip("<")
    if not text:
        raise DataError("name has no letters for the MRZ")
    return (text + "<<")[:width].ljust(width, "<")


#: The TD1 date of expiry of a document valid for life (SEUMUR HIDUP): 31 December 2099.
LIFETIME_EXPIRY_MRZ = "991231"


def _mrz_date(d: dt.date | None) -> str:
    return "<<<<<<" if d is None else d.strftime("%y%m%d")


def td1_mrz(h: HolderData) -> str:
    """The three 30-character TD1 lines, concatenated (90 characters)."""
    number = h.document_number
    if not number.isalnum() or (not number.isupper() and not number.isdigit()):
        raise DataError("document number must be upper-case alphanumeric")
    if len(number) <= 9:
        number_field = number.ljust(9, "<") + check_digit(number.ljust(9, "<"))
        optional1 = "<" * 15
    else:  # ICAO long document number: overflow and its check digit open the optional data
        tail = number[9:] + check_digit(number)
        if len(tail) > 15:
            raise DataError("document number longer than 23 characters")
        number_field = number[:9] + "<"
        optional1 = tail.ljust(15, "<")
    line1 = f"{h.document_code[:2]:<2}".replace(" ", "<") + h.issuing_state + number_field
    line1 += optional1
    birth = _mrz_date(h.birth_date)
    expiry = LIFETIME_EXPIRY_MRZ if h.expiry is None else _mrz_date(h.expiry)
    if h.sex not in ("M", "F", "<"):
        raise DataError(f"sex must be M, F or <, not {h.sex!r}")
    line2 = (birth + check_digit(birth) + h.sex + expiry + check_digit(expiry)
             + h.nationality[:3].ljust(3, "<") + "<" * 11)
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    line2 += check_digit(composite)
    line3 = mrz_name(h.name)
    mrz = line1 + line2 + line3
    if len(mrz) != 90:
        raise DataError(f"MRZ has {len(mrz)} characters, expected 90")
    return mrz


# -- data groups -------------------------------------------------------------------------------
def ef_com(data_groups: list[Ef]) -> bytes:
    tags = bytes(ef.value.tag for ef in data_groups)
    return tlv(0x60, tlv(0x5F01, LDS_VERSION) + tlv(0x5F36, UNICODE_VERSION) + tlv(0x5C, tags))


def dg1(h: HolderData) -> bytes:
    return tlv(0x61, tlv(0x5F1F, td1_mrz(h).encode("ascii")))


def biometric_header(bio_type: int, format_type: int, subtype: int | None = None) -> bytes:
    """Biometric header template A1 (ICAO header version 1.1, format owner SC37)."""
    body = tlv(0x80, b"\x01\x01") + tlv(0x81, bytes((bio_type,)))
    if subtype is not None:
        body += tlv(0x82, bytes((subtype,)))
    body += tlv(0x87, b"\x01\x01") + tlv(0x88, format_type.to_bytes(2, "big"))
    return tlv(0xA1, body)


def biometric_group(outer_tag: int, instances: list[bytes]) -> bytes:
    """Outer tag { 7F61 { 02 count, 7F60 instance ... } }."""
    group = tlv(0x02, bytes((len(instances),))) + b"".join(tlv(0x7F60, i) for i in instances)
    return tlv(outer_tag, tlv(0x7F61, group))


def dg2(face_record: bytes) -> bytes:
    return biometric_group(0x75, [biometric_header(0x02, 0x0008) + tlv(0x5F2E, face_record)])


def dg7(image: bytes) -> bytes:
    return tlv(0x67, tlv(0x02, b"\x01") + tlv(0x5F43, image))


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def dg11(h: HolderData) -> bytes:
    items: list[tuple[int, bytes]] = [
        (0x5F0E, _text(h.name)),
        (0x5F10, _text(h.document_number)),
        (0x5F2B, h.birth_date.strftime("%Y%m%d").encode()),
        (0x5F11, _text(h.place_of_birth)),
        (0x5F42, _text("<".join(h.address))),
    ]
    if h.occupation:
        items.append((0x5F13, _text(h.occupation)))
    if h.personal_summary:
        items.append((0x5F15, _text(h.personal_summary)))
    taglist = b"".join(t.to_bytes(2, "big") for t, _ in items)
    return tlv(0x6B, tlv(0x5C, taglist) + b"".join(tlv(t, v) for t, v in items))


def dg12(h: HolderData) -> bytes:
    items = [
        (0x5F19, _text(h.issuing_authority)),
        (0x5F26, h.issue_date.strftime("%Y%m%d").encode()),
    ]
    taglist = b"".join(t.to_bytes(2, "big") for t, _ in items)
    return tlv(0x6C, tlv(0x5C, taglist) + b"".join(tlv(t, v) for t, v in items))


# -- parsing (verify side) ---------------------------------------------------------------------
def parse_dg1(data: bytes) -> str:
    """The MRZ text of DG1."""
    value = find(unwrap(data, 0x61), 0x5F1F)
    if value is None:
        raise MalformedError("DG1 without MRZ")
    return value.decode("ascii")


def parse_ef_com(data: bytes) -> list[int]:
    """Data-group tags listed in EF.COM."""
    value = find(unwrap(data, 0x60), 0x5C)
    return list(value or b"")


def biometric_instances(data: bytes, outer_tag: int) -> list[tuple[bytes, dict[int, bytes]]]:
    """(header A1 raw TLV, {tag: value} of the instance) for each 7F60 in a DG2/DG3-style file."""
    group = find(unwrap(data, outer_tag), 0x7F61)
    if group is None:
        raise MalformedError("no biometric group 7F61")
    out = []
    for tag, value in parse(group):
        if tag != 0x7F60:
            continue
        items = dict(parse(value))
        header = tlv(0xA1, items.get(0xA1, b""))
        out.append((header, items))
    return out
