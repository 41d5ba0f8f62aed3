"""Synthetic residents for demos and benchmarks: valid records with real-looking media.

Everything is deterministic for a seed. To stay fast (the intake benchmark makes 10,000),
portraits and signatures come from a small pool of images drawn once per process; each
resident's copy differs by an embedded comment (JPEG COM segment / PNG tEXt chunk), so every
file has its own hash. Finger minutiae records are generated per resident.

Media representation: ``record["media"]`` always holds the four keys with the batch layout
paths (``media/<NIK>/photo.jpg`` ...); a medium the card type does not carry is ``null`` and
its bytes are ``None``: KIA records have no fingers and no signature, and no photo under 5.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from io import BytesIO
from random import Random
from typing import Any

from PIL import Image, ImageDraw

from printsrv.config import DEFAULT_RELIGIONS
from printsrv.errors import InvalidValue
from printsrv.media import FMR_MAGIC, FMR_VERSION_2005, FingerPosition
from printsrv.nik import make_nik
from printsrv.regions import RegionTable, region_table
from printsrv.validation import (
    KIA,
    KIA_PHOTO_AGE,
    KTP_EL,
    SEUMUR_HIDUP,
    STATUS_PERKAWINAN_WNA,
    WNA,
    WNI,
    age_on,
)

MEDIA_FILE_NAMES = {
    "photo": "photo.jpg",
    "signature": "signature.png",
    "finger_right_index": "finger-right-index.fmr",
    "finger_left_index": "finger-left-index.fmr",
}

PHOTO_SIZE = (300, 400)
SIGNATURE_SIZE = (400, 150)
FMR_IMAGE_SIZE = (256, 360)
_POOL_SIZE = 6  # portraits per background colour, and signatures


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_MALE = _words(
    "AHMAD AGUS ARIF ADITYA BAMBANG BAYU BUDI DEDI DIMAS EKO FAJAR GILANG HADI HENDRA IMAM "
    "IRWAN JOKO KURNIAWAN MUHAMMAD RIZKY RUDI SLAMET SYAHRUL TAUFIK WAHYU YUSUF ABDUL "
    "ANDI HERU TEGUH SUGENG ZAINAL RAHMAT FIRMAN DANANG"
)
_FEMALE = _words(
    "SITI SRI DEWI AYU FITRI INDAH KARTIKA LESTARI MAYA NUR PUTRI RATNA RINA SARI WULAN "
    "YULIA DIAN ENDANG NURUL ANISA RAHMAWATI LISA MEGA NOVITA TRI YUNI KHADIJAH AISYAH "
    "FATIMAH SUCI"
)
_FAMILY = _words(
    "SANTOSO WIJAYA HIDAYAT SAPUTRA PRATAMA SETIAWAN NUGROHO KUSUMA HASIBUAN SIREGAR "
    "NASUTION SIMANJUNTAK PANJAITAN SITUMORANG LUBIS HARAHAP TANJUNG SALIM HALIM GUNAWAN "
    "WIBOWO PURNOMO RAHMAN HAKIM MA'RUF NU'MAN SYAFI'I KHOIRUL AMIN FIRDAUS SUHENDRA "
    "MANURUNG SEMBIRING GINTING TAMBUNAN RUMAHORBO WATTIMENA PATTINAMA MANDAGI"
)
_BALI_MALE = ("I WAYAN", "I MADE", "I NYOMAN", "I KETUT", "I GUSTI NGURAH", "I PUTU")
_BALI_FEMALE = ("NI LUH", "NI MADE", "NI NYOMAN", "NI KETUT", "NI PUTU", "NI KADEK")
_TITLES_BEFORE = ("H.", "HJ.", "DRS.", "IR.", "DR.", "PROF. DR.")
_TITLES_AFTER = (", S.PD.", ", S.KOM.", ", S.H.", ", M.M.", ", S.E.", ", A.MD.", ", S.T., M.T.")
_WNA_MALE = (
    "JOHN MICHAEL SMITH",
    "TANAKA HIROSHI",
    "KIM MIN-JUN",
    "SEAN PATRICK O'BRIEN",
    "PIETER VAN DER BERG",
    "RAJESH KUMAR",
)
_WNA_FEMALE = (
    "ANNA-LENA MUELLER",
    "LIM WEI LING",
    "MARIA CLARA DOS SANTOS",
    "NGUYEN THI HUONG",
    "SUZUKI YUKI",
)
_WNA_COUNTRIES = ("JPN", "KOR", "CHN", "AUS", "USA", "NLD", "DEU", "MYS", "SGP", "IND", "GBR")
_WNA_CITIES = ("TOKYO", "SEOUL", "SYDNEY", "NEW YORK", "AMSTERDAM", "BERLIN", "KUALA LUMPUR")
_WNA_JOBS = ("ENGINEER", "TEACHER", "BUSINESSMAN", "CONSULTANT", "RESEARCHER", "RETIRED")

_STREETS = _words(
    "MERDEKA SUDIRMAN DIPONEGORO GAJAH MADA HAYAM WURUK KARTINI PAHLAWAN MAWAR MELATI "
    "KENANGA CEMPAKA FLAMBOYAN RAYA PEMUDA VETERAN IMAM BONJOL AHMAD YANI TRUNOJOYO"
)
_HAMLETS = _words("KRAJAN TENGAH BARAT TIMUR UTARA SELATAN KIDUL LOR WETAN KULON")
_VILLAGES = _words(
    "SUKAMAJU MEKARSARI SUKAJADI SIDOMULYO TANJUNGSARI KARANGANYAR MARGAMULYA SUMBERSARI "
    "KEDUNGREJO BANJARSARI CIPTAMULYA JATIMULYA TEGALREJO KEBONSARI PASIR PUTIH"
)
_JOBS = (
    "BELUM/TIDAK BEKERJA",
    "MENGURUS RUMAH TANGGA",
    "PELAJAR/MAHASISWA",
    "PENSIUNAN",
    "PEGAWAI NEGERI SIPIL (PNS)",
    "TENTARA NASIONAL INDONESIA (TNI)",
    "KEPOLISIAN RI (POLRI)",
    "PETANI/PEKEBUN",
    "NELAYAN/PERIKANAN",
    "KARYAWAN SWASTA",
    "KARYAWAN BUMN",
    "BURUH HARIAN LEPAS",
    "WIRASWASTA",
    "PEDAGANG",
    "GURU",
    "DOSEN",
    "DOKTER",
    "PERAWAT",
    "BIDAN",
    "SOPIR",
    "TUKANG KAYU",
)
_BLOOD = ("-", "-", "-", "A", "B", "AB", "O", "O", "A+", "B+", "O+", "AB-", "O-")
_RELIGION_WEIGHTS = {"ISLAM": 80, "KRISTEN": 7, "KATOLIK": 3, "KATHOLIK": 1, "HINDU": 2}
_MARITAL_ADULT = ("BELUM KAWIN", "KAWIN", "KAWIN", "KAWIN TERCATAT", "KAWIN BELUM TERCATAT")
_MARITAL_OLDER = ("KAWIN", "KAWIN", "KAWIN TERCATAT", "CERAI HIDUP", "CERAI MATI")


@dataclass(frozen=True, slots=True, repr=False)
class SyntheticResident:
    """A valid record plus its media bytes (``None`` where the card type has none)."""

    record: dict[str, Any]
    photo_jpeg: bytes | None
    signature_png: bytes | None
    finger_right_index_fmr: bytes | None
    finger_left_index_fmr: bytes | None

    @property
    def nik(self) -> str:
        return self.record["nik"]

    def media_bytes(self) -> dict[str, bytes | None]:
        """Media key → bytes, keyed like ``record["media"]``."""
        return {
            "photo": self.photo_jpeg,
            "signature": self.signature_png,
            "finger_right_index": self.finger_right_index_fmr,
            "finger_left_index": self.finger_left_index_fmr,
        }

    def files(self) -> dict[str, bytes]:
        """Batch path → bytes for the media this resident has (paths from ``record["media"]``)."""
        paths = self.record["media"]
        return {paths[k]: v for k, v in self.media_bytes().items() if v is not None}

    def __repr__(self) -> str:
        # synthetic, but handled like real records: no personal data in reprs
        rid, kind = self.record["request_id"], self.record["card_type"]
        return f"SyntheticResident(request_id={rid!r}, card_type={kind!r})"


def media_paths(nik: str, present: dict[str, bool], root: str = "media") -> dict[str, str | None]:
    """The batch layout paths for a NIK; ``None`` for media that are not present."""
    return {
        k: (f"{root}/{nik}/{name}" if present[k] else None) for k, name in MEDIA_FILE_NAMES.items()
    }


# --------------------------------------------------------------------------------------------
# Media pools


def _jpeg_with_comment(base: bytes, comment: bytes) -> bytes:
    """Insert a COM segment right after SOI: a unique file without re-encoding."""
    return base[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + base[2:]


def _png_with_text(base: bytes, text: bytes) -> bytes:
    """Insert a ``tEXt`` chunk right after IHDR (byte 33)."""
    data = b"Comment\x00" + text
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    return base[:33] + chunk + base[33:]


@cache
def portrait_pool(colour: str) -> tuple[bytes, ...]:
    """A few face-like 300x400 JPEG portraits on a red or blue background (orange: WNA)."""
    background = {"red": (200, 25, 35), "blue": (25, 90, 200), "orange": (240, 130, 20)}[colour]
    rng = Random(f"portrait-{colour}")
    out = []
    for _ in range(_POOL_SIZE):
        im = Image.new("RGB", PHOTO_SIZE, background)
        d = ImageDraw.Draw(im)
        skin = (rng.randint(150, 230), rng.randint(110, 180), rng.randint(80, 140))
        shirt = rng.choice([(245, 245, 245), (30, 30, 40), (60, 60, 120), (240, 240, 230)])
        hair = (rng.randint(10, 40),) * 3
        cx = 150 + rng.randint(-8, 8)
        d.ellipse((cx - 140, 300, cx + 140, 480), fill=shirt)  # shoulders
        d.rectangle((cx - 28, 240, cx + 28, 310), fill=skin)  # neck
        d.ellipse((cx - 78, 70 + rng.randint(-8, 8), cx + 78, 270), fill=skin)  # face
        d.chord((cx - 82, 55, cx + 82, 200), 180, 360, fill=hair)  # hair
        for ex in (cx - 32, cx + 32):
            d.ellipse((ex - 9, 160, ex + 9, 172), fill=(40, 30, 25))
        d.arc((cx - 30, 200, cx + 30, 235), 20, 160, fill=(120, 40, 40), width=3)
        buf = BytesIO()
        im.save(buf, "JPEG", quality=85, optimize=True)
        out.append(buf.getvalue())
    return tuple(out)


@cache
def signature_pool() -> tuple[bytes, ...]:
    """A few signature PNGs: dark strokes on a transparent background."""
    rng = Random("signature")
    out = []
    for _ in range(_POOL_SIZE):
        im = Image.new("LA", SIGNATURE_SIZE, (255, 0))
        d = ImageDraw.Draw(im)
        x, y = 30, 75
        points = [(x, y)]
        while x < 360:
            x += rng.randint(8, 25)
            y = max(20, min(130, y + rng.randint(-35, 35)))
            points.append((x, y))
        d.line(points, fill=(20, 255), width=3, joint="curve")
        d.line([(40, 120), (rng.randint(250, 370), 110)], fill=(20, 255), width=2)
        buf = BytesIO()
        im.save(buf, "PNG", optimize=True)
        out.append(buf.getvalue())
    return tuple(out)


def synthetic_fmr(rng: Random, position: int) -> bytes:
    """One ISO/IEC 19794-2:2005 record, one view, 20–50 minutiae, 500 ppi."""
    width, height = FMR_IMAGE_SIZE
    count = rng.randint(20, 50)
    body = bytearray(struct.pack(">BBBB", position, 0, rng.randint(40, 100), count))
    for _ in range(count):
        mtype = rng.randint(1, 2)
        x = rng.randrange(16, width - 16)
        y = rng.randrange(16, height - 16)
        body += struct.pack(">HHBB", (mtype << 14) | x, y, rng.randrange(256), rng.randint(30, 100))
    body += b"\x00\x00"  # no extended data
    length = 24 + len(body)
    header = FMR_MAGIC + FMR_VERSION_2005
    header += struct.pack(">IHHHHHBB", length, 0, width, height, 197, 197, 1, 0)
    return header + bytes(body)


# --------------------------------------------------------------------------------------------
# Records


def _pick_religion(rng: Random, religions: Sequence[str]) -> str:
    options = [r for r in religions if r in _RELIGION_WEIGHTS] or list(religions)
    if rng.random() < 0.06:
        return rng.choice(list(religions))
    weights = [_RELIGION_WEIGHTS.get(r, 1) for r in options]
    return rng.choices(options, weights)[0]


def _person_name(rng: Random, female: bool, *, bali: bool, titles: bool = True) -> str:
    """An upper-case name of 1..60 characters using letters, spaces and . ' , - only.

    ``titles=False`` (a child): no religious or academic title; the same random draws are
    made, so that the residents after it stay as they were for the seed."""
    given = _FEMALE if female else _MALE
    if bali:
        parts = [rng.choice(_BALI_FEMALE if female else _BALI_MALE), rng.choice(given)]
    elif rng.random() < 0.1:
        parts = [rng.choice(given)]  # single names are common
    else:
        parts = [rng.choice(given) for _ in range(rng.randint(1, 3))] + [rng.choice(_FAMILY)]
        if rng.random() < 0.05:
            parts[-1] = f"{parts[-1]}-{rng.choice(_FAMILY)}"
    before = ""
    if rng.random() < 0.08:
        before = rng.choice(("HJ.", "DRS.", "DR.") if female else _TITLES_BEFORE) + " "
    after = rng.choice(_TITLES_AFTER) if rng.random() < 0.1 else ""
    if not titles:
        before = after = ""
    long_name = rng.random() < 0.04  # very long names, up to the 60-character limit
    while True:
        name = before + " ".join(parts) + after
        extra = rng.choice(_FAMILY)
        if not long_name or len(name) + 1 + len(extra) > 60:
            break
        parts.append(extra)
    while len(name) > 60 and len(parts) > 1:
        parts.pop(-2)
        name = before + " ".join(parts) + after
    return name


def _address(rng: Random) -> str:
    base = f"JL. {rng.choice(_STREETS)} {rng.choice(_STREETS)} NO. {rng.randint(1, 250)}"
    extras = [
        f"GG. {rng.choice(_STREETS)} {rng.choice(('I', 'II', 'III', 'IV'))}",
        f"DUSUN {rng.choice(_HAMLETS)}",
        f"PERUM {rng.choice(_VILLAGES)} INDAH BLOK {rng.choice('ABCDEFG')}-{rng.randint(1, 40)}",
        f"SEBELAH MASJID {rng.choice(_VILLAGES)} {rng.choice(_HAMLETS)}",
        f"KOMPLEK {rng.choice(_STREETS)} PERMAI NO. {rng.randint(1, 99)}",
    ]
    if rng.random() < 0.5:
        return base
    rng.shuffle(extras)
    out = base
    for extra in extras:  # long addresses close to the 100-character limit
        if len(out) + 1 + len(extra) <= 100:
            out = f"{out} {extra}"
    return out


def _random_birth(rng: Random, today: date, min_age: int, max_age: int) -> date:
    """A birth date giving an age in ``[min_age, max_age]`` on ``today``."""
    latest = _add_years(today, -min_age)
    earliest = _add_years(today, -(max_age + 1)) + timedelta(days=1)
    return earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _default_offices(rng: Random, table: RegionTable) -> list[str]:
    return sorted(rng.sample(table.districts, 8))


def synthetic_residents(
    count: int,
    *,
    seed: int,
    today: date,
    office_codes: Sequence[str] | None = None,
    religions: Sequence[str] = DEFAULT_RELIGIONS,
    held: int = 0,
) -> Iterator[SyntheticResident]:
    """Yield ``count`` valid residents, deterministic for ``seed`` and ``today``.

    ``office_codes`` (``PP.KK.CC`` from the region table) are where the cards are printed and
    where residents live; by default eight districts drawn from the table with ``seed``.
    About 2 % are WNA and 4 % KIA children. ``held`` records, spread over the batch, carry a
    birth date one day off their NIK's: intake holds them for a supervisor's review.
    """
    table = region_table()
    rng = Random(seed)
    offices = list(office_codes) if office_codes else _default_offices(rng, table)
    for code in offices:
        if not table.is_known_district(code):
            raise InvalidValue(f"office code {code!r} is not a district in the region table")
    batch_tag = f"{rng.getrandbits(32):08X}"
    districts_of = {code[:5]: [r.code for r in table.children(code[:5])] for code in offices}
    birth_districts = table.districts[:: max(1, len(table.districts) // 400)]
    used_niks: set[str] = set()
    portraits = {c: portrait_pool(c) for c in ("red", "blue", "orange")}
    # A few records whose NIK does not match the birth date: held for review at intake.
    held_at = {round(i * count / held) for i in range(held)} if held else set()
    signatures = signature_pool()

    for index in range(count):
        office = rng.choice(offices)
        names = table.names(office)
        roll = rng.random()
        card_type = KIA if roll < 0.04 else KTP_EL
        citizenship = WNA if card_type == KTP_EL and roll > 0.98 else WNI
        female = rng.random() < 0.5

        if card_type == KIA:
            born = _random_birth(rng, today, 0, 16)
        elif citizenship == WNA:
            born = _random_birth(rng, today, 20, 75)
        elif rng.random() < 0.01:
            born = _random_birth(rng, today, 16, 16)  # married under 17: a KTP-EL is allowed
        else:
            born = _random_birth(rng, today, 17, 85)
        age = age_on(born, today)

        # The NIK was first issued in the office's regency (sometimes another district of it).
        nik_region = office if rng.random() < 0.8 else rng.choice(districts_of[office[:5]])
        while True:
            nik = make_nik(nik_region, born, female=female, sequence=rng.randint(1, 9999))
            if nik not in used_niks:
                used_niks.add(nik)
                break

        if citizenship == WNA:
            nama = rng.choice(_WNA_FEMALE if female else _WNA_MALE)
            tempat_lahir = rng.choice(_WNA_CITIES)
            status = rng.choice(STATUS_PERKAWINAN_WNA)
            pekerjaan = rng.choice(_WNA_JOBS)
        else:
            nama = _person_name(rng, female, bali=office.startswith("51") and rng.random() < 0.7,
                                titles=card_type != KIA)
            tempat_lahir = (
                names.tempat_terbit
                if rng.random() < 0.6
                else table.names(rng.choice(birth_districts)).tempat_terbit
            )
            if card_type == KIA or age < 17:
                status = "BELUM KAWIN" if card_type == KIA else "KAWIN"
            elif age < 25:
                status = rng.choice(("BELUM KAWIN", "BELUM KAWIN", "KAWIN"))
            elif age < 50:
                status = rng.choice(_MARITAL_ADULT)
            else:
                status = rng.choice(_MARITAL_OLDER)
            if card_type == KIA:
                pekerjaan = "PELAJAR/MAHASISWA" if age >= 6 else "BELUM/TIDAK BEKERJA"
            elif age < 23 and rng.random() < 0.6:
                pekerjaan = "PELAJAR/MAHASISWA"
            elif age >= 58 and rng.random() < 0.4:
                pekerjaan = "PENSIUNAN"
            else:
                pekerjaan = rng.choice(_JOBS)

        request_id = f"PC-{office.replace('.', '')}-{today:%Y%m%d}-{batch_tag}-{index + 1:06d}"
        record: dict[str, Any] = {
            "card_type": card_type,
            "request_id": request_id,
            "nik": nik,
        }
        if card_type == KIA or rng.random() < 0.6:
            issued = _random_birth(rng, today, 0, 15)
            kk_region = office.replace(".", "")
            record["no_kk"] = f"{kk_region}{issued:%d%m%y}{rng.randint(1, 9999):04d}"
        record.update(
            {
                "nama": nama,
                "tempat_lahir": tempat_lahir,
                "tanggal_lahir": (born - timedelta(days=index in held_at)).isoformat(),
                "jenis_kelamin": "PEREMPUAN" if female else "LAKI-LAKI",
                "golongan_darah": rng.choice(_BLOOD),
                "alamat": _address(rng),
                "rt": f"{rng.randint(1, 25):03d}",
                "rw": f"{rng.randint(1, 12):03d}",
                "kel_desa": rng.choice(_VILLAGES),
                "kecamatan": names.kecamatan,
                "kabupaten_kota": names.kabupaten_kota,
                "provinsi": names.provinsi,
                "agama": _pick_religion(rng, religions),
                "status_perkawinan": status,
                "pekerjaan": pekerjaan,
                "kewarganegaraan": citizenship,
            }
        )
        if citizenship == WNA:
            record["negara"] = rng.choice(_WNA_COUNTRIES)
            record["berlaku_hingga"] = (
                today + timedelta(days=rng.randint(180, 5 * 365))
            ).isoformat()
        elif card_type == KIA:
            record["berlaku_hingga"] = _add_years(born, 17).isoformat()
        else:
            record["berlaku_hingga"] = SEUMUR_HIDUP
        record["tempat_terbit"] = names.tempat_terbit
        record["penunggalan"] = "TUNGGAL"
        record["office_code"] = office
        if rng.random() < 0.7:
            record["phone"] = f"+628{rng.choice('1235789')}{rng.randrange(10**7, 10**9)}"
        if card_type == KIA:
            record["nama_kepala_keluarga"] = _person_name(rng, False, bali=False)
            record["no_akta_lahir"] = (
                f"{office[:5].replace('.', '')}-LT-{born:%d%m%Y}-{rng.randint(1, 9999):04d}"
            )

        tag = request_id.encode("ascii")
        has_photo = card_type == KTP_EL or age >= KIA_PHOTO_AGE
        colour = "orange" if citizenship == WNA else ("red" if born.year % 2 else "blue")
        photo = _jpeg_with_comment(rng.choice(portraits[colour]), tag) if has_photo else None
        signature = _png_with_text(rng.choice(signatures), tag) if card_type == KTP_EL else None
        right = synthetic_fmr(rng, FingerPosition.RIGHT_INDEX) if card_type == KTP_EL else None
        left = synthetic_fmr(rng, FingerPosition.LEFT_INDEX) if card_type == KTP_EL else None
        record["media"] = media_paths(
            nik,
            {
                "photo": photo is not None,
                "signature": signature is not None,
                "finger_right_index": right is not None,
                "finger_left_index": left is not None,
            },
        )
        yield SyntheticResident(record, photo, signature, right, left)
