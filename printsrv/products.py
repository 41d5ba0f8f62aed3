"""The card products this server makes: one entry per card type, read by everything else.

Each :class:`CardProduct` says which template folder lays out its face, whether the card has a
chip, which blank stock it is printed on, and which record fields it requires beyond the common
ones. :func:`holder_for` is the one mapping from a record to the chip's holder data: the station
(``printsrv.station.chipenc``) and ``run.py chip personalize`` both call it, so one record gives
one chip.

Adding a card type is one entry in :data:`PRODUCTS` plus its template folder under
``templates/`` (``layout.toml`` with ``card_type`` set to the new type, ``sample.json`` and the
sample media). Its blank stock type is either an existing one (the card shares the blanks) or a
new one, which the ledger then counts apart from the others.

Chip holder data (ICAO 9303 LDS, ``chip-standards.md``; the card face in ``domain-ektp.md``):

- address (DG11 5F42): the card face's lines, the RT/RW line with its label (``RT/RW 001/002``:
  on the chip no printed label says what ``001/002`` is);
- issuing authority (DG12 5F19): the record's ``tempat_terbit``, the regency/city of issue the
  card face prints under the photo (not the holder's ``kabupaten_kota``, which may differ);
- nationality: ``IDN`` for WNI, else the record's ISO 3166 alpha-3 ``negara``; a WNA record
  without one gets ``XXX``, ICAO 9303's code for an unspecified nationality (``<<<`` is only the
  MRZ filler: it is not a nationality code);
- personal summary: ``AGAMA=…;STATUS=…;GOLDARAH=…`` with empty values left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from printsrv.errors import PrintSrvError

if TYPE_CHECKING:
    from chip.lds import HolderData
    from printsrv.cardinput import CardInput

KTP_EL = "KTP-EL"
KIA = "KIA"

#: Blank stock types (the ledger's ``blank.stock_type``): security stock with its own serials.
STOCK_KTP_EL = "KTP-EL"
STOCK_KIA = "KIA"


@dataclass(frozen=True)
class CardProduct:
    """One card type: its template folder, chip, blank stock and required fields."""

    card_type: str
    template: str
    has_chip: bool
    stock_type: str
    #: Fields required beyond the common ones (validation).
    required_fields: tuple[str, ...] = ()
    #: Fields only this card type may carry.
    own_fields: tuple[str, ...] = ()
    #: The template for a WNA holder, when it differs.
    template_wna: str | None = None


PRODUCTS: dict[str, CardProduct] = {
    KTP_EL: CardProduct(
        card_type=KTP_EL, template="ktp-el", template_wna="ktp-el-wna",
        has_chip=True, stock_type=STOCK_KTP_EL,
    ),
    KIA: CardProduct(
        card_type=KIA, template="kia", has_chip=False, stock_type=STOCK_KIA,
        required_fields=("no_kk",),
        own_fields=("nama_kepala_keluarga", "no_akta_lahir"),
    ),
}  # fmt: skip

#: The card types, in registry order.
CARD_TYPES: tuple[str, ...] = tuple(PRODUCTS)
#: The blank stock types, in registry order, each once.
STOCK_TYPES: tuple[str, ...] = tuple(dict.fromkeys(p.stock_type for p in PRODUCTS.values()))
DEFAULT_STOCK_TYPE = STOCK_KTP_EL


class UnknownCardType(PrintSrvError):
    """A card type (or stock type) the registry does not know."""


def product(card_type: str) -> CardProduct:
    """The product of ``card_type`` (raises :class:`UnknownCardType`)."""
    try:
        return PRODUCTS[card_type]
    except KeyError:
        raise UnknownCardType(
            f"unknown card type {card_type!r}: expected one of {', '.join(CARD_TYPES)}"
        ) from None


def card_types_for_stock(stock_types: set[str] | frozenset[str]) -> list[str]:
    """The card types printed on any of ``stock_types`` (for the station's claim)."""
    return [p.card_type for p in PRODUCTS.values() if p.stock_type in stock_types]


def template_for(card: CardInput) -> str:
    """The template folder for a record (the WNA variant for a WNA holder, if any)."""
    p = product(card.card_type)
    wna = card.fields.get("kewarganegaraan", "").strip().upper() == "WNA"
    return p.template_wna if wna and p.template_wna else p.template


def _date(card: CardInput, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(card.fields.get(name, ""))
    except ValueError:
        raise PrintSrvError(
            f"record {card.request_id}: {name}: not a YYYY-MM-DD date"
        ) from None


def holder_for(card: CardInput) -> HolderData:
    """The chip's holder data for ``card`` (the one record → chip mapping; see the module text).

    Raises :class:`~printsrv.errors.PrintSrvError` for a card type without a chip or a record
    whose dates do not parse (naming the record and field).
    """
    from chip.lds import HolderData

    if not product(card.card_type).has_chip:
        raise PrintSrvError(f"record {card.request_id}: {card.card_type} cards have no chip")
    f = card.fields
    valid = f.get("berlaku_hingga", "SEUMUR HIDUP").strip().upper()
    summary = ";".join(
        f"{label}={f[key]}"
        for label, key in (
            ("AGAMA", "agama"), ("STATUS", "status_perkawinan"), ("GOLDARAH", "golongan_darah"),
        )
        if f.get(key)
    )  # fmt: skip
    return HolderData(
        document_number=card.nik,
        name=f.get("nama", ""),
        birth_date=_date(card, "tanggal_lahir"),
        sex={"LAKI-LAKI": "M", "PEREMPUAN": "F"}.get(f.get("jenis_kelamin", ""), "<"),
        expiry=None if valid == "SEUMUR HIDUP" else _date(card, "berlaku_hingga"),
        place_of_birth=f.get("tempat_lahir", ""),
        address=(
            f.get("alamat", ""),
            f"RT/RW {f.get('rt', '')}/{f.get('rw', '')}",
            f.get("kel_desa", ""),
            f.get("kecamatan", ""),
            f.get("kabupaten_kota", ""),
            f.get("provinsi", ""),
        ),
        issuing_authority=f.get("tempat_terbit", ""),
        issue_date=card.issue_date,
        photo_jpeg=card.photo_jpeg,
        signature_image=card.signature_png,
        finger_right_index_fmr=card.finger_right_index_fmr,
        finger_left_index_fmr=card.finger_left_index_fmr,
        nationality=(
            "IDN" if f.get("kewarganegaraan", "WNI") == "WNI" else (f.get("negara") or "XXX")
        ),
        occupation=f.get("pekerjaan", ""),
        personal_summary=summary,
    )
