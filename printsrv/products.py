"""Card products: what each card type is, in one place.

A card type names its card-face template folder, whether it carries a chip, the blank stock it
is printed on, the record fields it requires, and (for a chip card) the one mapping from a
record to the chip's holder data, used by the station's encoder and by ``run.py chip
personalize`` alike, so that both write the same data groups for the same record and card.

Adding a card type is one :class:`CardProduct` entry in :data:`PRODUCTS` plus its template
folder under ``templates/`` (``layout.toml`` with ``card_type`` set to it, ``sample.json`` and
sample media). Its ``blank_stock`` is an existing stock type (the card shares those blanks) or a
new one, which the ledger, the station's claim, the report and the anomaly flags then count
apart (:data:`STOCK_TYPES`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from printsrv.cardinput import CardInput
from printsrv.errors import PrintSrvError

if TYPE_CHECKING:
    from chip.bac import BacKey
    from chip.lds import HolderData
    from printsrv.config import Settings


@dataclass(frozen=True)
class CardProduct:
    """One card type."""

    card_type: str
    template: str
    has_chip: bool
    blank_stock: str
    required_fields: tuple[str, ...]
    #: Fields only this card type may carry (validation refuses them on others).
    own_fields: tuple[str, ...] = ()


_COMMON = ("request_id", "nik", "nama", "tempat_lahir", "tanggal_lahir", "jenis_kelamin",
           "kecamatan", "kabupaten_kota", "provinsi", "office_code")

PRODUCTS: dict[str, CardProduct] = {
    "KTP-EL": CardProduct("KTP-EL", "ktp-el", True, "KTP-EL",
                          (*_COMMON, "alamat", "agama", "status_perkawinan", "pekerjaan",
                           "kewarganegaraan", "berlaku_hingga")),
    "KIA": CardProduct("KIA", "kia", False, "KIA", (*_COMMON, "no_kk"),
                       own_fields=("nama_kepala_keluarga", "no_akta_lahir")),
}
KTP_EL, KIA = "KTP-EL", "KIA"
#: The card types, in registry order.
CARD_TYPES: tuple[str, ...] = tuple(PRODUCTS)
#: The blank stock types (the ledger's ``blank.stock_type``), each once, in registry order:
#: security stock with its own serials (KTP-el chip blanks, KIA blanks).
STOCK_TYPES: tuple[str, ...] = tuple(dict.fromkeys(p.blank_stock for p in PRODUCTS.values()))
#: The stock type of blanks received or loaded without one (and of blanks before migration
#: 0010): KTP-el chip blanks.
DEFAULT_STOCK_TYPE = PRODUCTS[KTP_EL].blank_stock


def card_types_for_stock(stock_types: set[str] | frozenset[str]) -> list[str]:
    """The card types printed on any of ``stock_types`` (the station's claim)."""
    return [p.card_type for p in PRODUCTS.values() if p.blank_stock in stock_types]


def product(card_type: str) -> CardProduct:
    """The product of ``card_type`` (an unknown one is an error naming it)."""
    try:
        return PRODUCTS[card_type]
    except KeyError:
        raise PrintSrvError(
            f"card_type {card_type!r} is not one of {', '.join(PRODUCTS)}"
        ) from None
#: A KTP-el of a foreign resident (WNA) has its own face template, the same chip and stock.
WNA_TEMPLATE = "ktp-el-wna"


def product_of(card: CardInput) -> CardProduct:
    """The product of a record; an unknown card type is an error naming it."""
    try:
        return product(card.card_type)
    except PrintSrvError as exc:
        raise PrintSrvError(f"record {card.request_id}: {exc}") from None


def template_for(card: CardInput) -> str:
    """The card-face template of a record (``kia``, ``ktp-el-wna`` or ``ktp-el``)."""
    product = PRODUCTS.get(card.card_type, PRODUCTS["KTP-EL"])
    if product.card_type == "KTP-EL" and card.fields.get(
        "kewarganegaraan", ""
    ).strip().upper() == "WNA":
        return WNA_TEMPLATE
    return product.template


#: ICAO 9303-3 code for an unspecified nationality ("<<<" is filler, not a code).
UNSPECIFIED_NATIONALITY = "XXX"


def holder_data(card: CardInput) -> HolderData:
    """The chip's holder data for a chip card's record (the only record → chip mapping).

    * address line 2 is written as on the card face, ``RT/RW 001/002``;
    * the issuing authority is the record's own ``tempat_terbit`` (what the registry says is
      the place of issue), or ``DISDUKCAPIL <regency>`` when the record has none;
    * a WNA's nationality is the record's ``negara``, ``XXX`` (unspecified, ICAO 9303-3) if
      missing; a WNI's is ``IDN``;
    * the personal summary names only the fields the record has.
    """
    from chip.lds import HolderData

    if not product_of(card).has_chip:
        raise PrintSrvError(f"record {card.request_id}: {card.card_type} cards have no chip")
    f = card.fields
    sex = {"LAKI-LAKI": "M", "PEREMPUAN": "F"}.get(f.get("jenis_kelamin", ""), "<")
    valid = f.get("berlaku_hingga", "SEUMUR HIDUP").strip().upper()
    try:
        birth = dt.date.fromisoformat(f["tanggal_lahir"])
        expiry = None if valid == "SEUMUR HIDUP" else dt.date.fromisoformat(valid)
    except (KeyError, ValueError) as exc:
        raise PrintSrvError(f"record {card.request_id}: tanggal_lahir/berlaku_hingga: "
                            f"not a date ({exc})") from exc
    wni = f.get("kewarganegaraan", "WNI").strip().upper() == "WNI"
    summary = ";".join(
        f"{label}={f[key]}" for label, key in
        (("AGAMA", "agama"), ("STATUS", "status_perkawinan"), ("GOLDARAH", "golongan_darah"))
        if f.get(key)
    )
    kab = f.get("kabupaten_kota", "")
    return HolderData(
        document_number=card.nik,
        name=f.get("nama", ""),
        birth_date=birth,
        sex=sex,
        expiry=expiry,
        place_of_birth=f.get("tempat_lahir", ""),
        address=(f.get("alamat", ""), f"RT/RW {f.get('rt', '')}/{f.get('rw', '')}",
                 f.get("kel_desa", ""), f.get("kecamatan", ""), kab, f.get("provinsi", "")),
        issuing_authority=(f.get("tempat_terbit", "") or f"DISDUKCAPIL {kab}").strip()[:60],
        issue_date=card.issue_date,
        photo_jpeg=card.photo_jpeg,
        signature_image=card.signature_png,
        finger_right_index_fmr=card.finger_right_index_fmr,
        finger_left_index_fmr=card.finger_left_index_fmr,
        nationality="IDN" if wni else (f.get("negara", "") or UNSPECIFIED_NATIONALITY),
        occupation=f.get("pekerjaan", ""),
        personal_summary=summary,
    )


def record_bac_key(settings: Settings, request_id: str) -> BacKey:
    """The BAC key (ICAO 9303-11) of a record's chip, from the MRZ its DG1 carries; only the
    record's fields are read (no media are decrypted)."""
    from chip.bac import BacKey
    from chip.lds import td1_mrz
    from printsrv.db import unit_of_work
    from printsrv.records import get_record

    with unit_of_work(settings) as session:
        record = get_record(session, request_id)
        fields = {k: v for k, v in record.data.items() if isinstance(v, str)}
    return BacKey.from_mrz(td1_mrz(holder_data(CardInput(request_id, fields, b"", b""))))
