"""The monthly stock report of one office, computed from the movement journal.

Months run in the office's local time (WIB, WITA or WIT: printsrv.localtime). Balance:
``opening + received + transferred_in = issued + spoiled + transferred_out + closing``,
where on-hand (opening, closing) is in_stock + in_hopper + reserved. Destroyed blanks were
counted as spoiled when they were spoiled; ``destroyed`` is reported for the destruction records.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from printsrv import localtime
from printsrv.ledger.blanks import office_by_code
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    ON_HAND,
    Blank,
    BlankMovement,
    BlankState,
    Consumable,
    ConsumableKind,
    DestructionRecord,
    HandoverRecord,
    MovementKind,
    RibbonUsage,
    SpoilCause,
)
from printsrv.models import Office, OfficeKind
from printsrv.paperwork import csv_text, markup
from printsrv.products import STOCK_TYPES

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_bounds(month: str, office: str = "35") -> tuple[datetime, datetime]:
    """``YYYY-MM`` → the month's start and end as UTC datetimes, at the boundaries of the
    office's local month (WIB, WITA or WIT)."""
    match = _MONTH.match(month)
    if not match or not 1 <= int(match[2]) <= 12:
        raise LedgerError(f"month {month!r} is not YYYY-MM")
    return localtime.month_bounds(month, localtime.office_zone(office))


def _flows(
    session: Session,
    office_id: int,
    start: datetime | None,
    end: datetime,
    stock_type: str | None = None,
) -> dict[str, Any]:
    """Movement counts of the office in ``[start, end)`` (from the beginning when no start),
    of the blanks of ``stock_type`` when given."""
    m = BlankMovement
    window = [m.at < end] + ([m.at >= start] if start is not None else [])
    if stock_type is not None:
        window.append(
            m.blank_id.in_(select(Blank.id).where(Blank.stock_type == stock_type))
        )
    flows: dict[str, Any] = {
        "received": 0,
        "transferred_in": 0,
        "issued": 0,
        "spoiled": defaultdict(int),
        "transferred_out": 0,
        "destroyed": 0,
        "written_off_missing": 0,
    }
    rows = session.execute(
        select(
            type_coerce(m.kind, String()),
            type_coerce(m.from_state, String()),
            type_coerce(m.to_state, String()),
            type_coerce(m.cause, String()),
            func.count(),
        )
        .where(m.office_id == office_id, *window)
        .group_by(m.kind, m.from_state, m.to_state, m.cause)
    )
    for kind, from_state, to_state, cause, n in rows:
        if kind == MovementKind.RECEIVE:
            flows["received"] += n
        elif kind == MovementKind.TRANSFER:
            flows["transferred_out"] += n
        elif kind == MovementKind.DESTROY:
            flows["destroyed"] += n
        elif to_state == BlankState.ISSUED and from_state in ON_HAND:
            flows["issued"] += n
        elif to_state == BlankState.SPOILED and from_state in ON_HAND:
            flows["spoiled"][cause or SpoilCause.UNKNOWN_CRASH.value] += n
    flows["transferred_in"] = session.scalar(
        select(func.count())
        .select_from(m)
        .where(m.to_office_id == office_id, m.kind == MovementKind.TRANSFER, *window)
    )
    return flows


def _on_hand(flows: dict[str, Any]) -> int:
    return (
        flows["received"]
        + flows["transferred_in"]
        - flows["issued"]
        - sum(flows["spoiled"].values())
        - flows["transferred_out"]
    )


def _documents(
    session: Session, office_ids: list[int], start: datetime, end: datetime
) -> dict[str, Any]:
    """The documents behind the month's movements, with their counts in these offices (a
    transfer between two of them is both in and out)."""
    m = BlankMovement
    out: dict[str, list[dict[str, Any]]] = {
        "received": [],
        "transferred_in": [],
        "transferred_out": [],
        "destroyed": [],
    }
    codes = dict(session.execute(select(Office.id, Office.code)).all())
    rows = session.execute(
        select(m.handover_id, m.office_id, m.to_office_id, func.count())
        .where(
            m.handover_id.is_not(None),
            m.at >= start,
            m.at < end,
            m.office_id.in_(office_ids) | m.to_office_id.in_(office_ids),
        )
        .group_by(m.handover_id, m.office_id, m.to_office_id)
    )
    for handover_id, from_id, to_id, n in rows:
        doc = session.get_one(HandoverRecord, handover_id)
        if to_id is None:
            out["received"].append(
                {"number": doc.number, "from": doc.from_party, "carton": doc.carton, "count": n}
            )
            continue
        if to_id in office_ids:
            out["transferred_in"].append({"number": doc.number, "from": codes[from_id], "count": n})
        if from_id in office_ids:
            out["transferred_out"].append({"number": doc.number, "to": codes[to_id], "count": n})
    destroyed = session.execute(
        select(m.destruction_id, func.count())
        .where(
            m.destruction_id.is_not(None),
            m.office_id.in_(office_ids),
            m.at >= start,
            m.at < end,
        )
        .group_by(m.destruction_id)
    )
    for destruction_id, n in destroyed:
        destruction = session.get_one(DestructionRecord, destruction_id)
        out["destroyed"].append(
            {
                "number": destruction.number,
                "officers": [destruction.officer_1, destruction.officer_2],
                "witness": destruction.witness,
                "count": n,
            }
        )
    for items in out.values():
        items.sort(key=lambda d: d["number"])
    return out


def _consumables(
    session: Session,
    office_ids: list[int],
    kind: ConsumableKind,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Panels used in the month and the rolls on hand at its end (our count beside the
    printer's last reported level)."""
    u = RibbonUsage
    panels_col, roll_col = (
        (u.panels, u.ribbon_id) if kind is ConsumableKind.RIBBON else (u.film_panels, u.film_id)
    )
    used, cards = session.execute(
        select(func.coalesce(func.sum(panels_col), 0), func.count())
        .select_from(u)
        .where(u.office_id.in_(office_ids), u.at >= start, u.at < end, panels_col > 0)
    ).one()
    rolls = list(
        session.scalars(
            select(Consumable)
            .where(Consumable.office_id.in_(office_ids), Consumable.kind == kind)
            .order_by(Consumable.serial)
        )
    )
    received = sum(1 for r in rolls if _naive(start) <= _naive(r.received_at) < _naive(end))
    finished = sum(
        1 for r in rolls if r.finished_at and _naive(start) <= _naive(r.finished_at) < _naive(end)
    )
    on_hand = []
    for roll in rolls:
        if _naive(roll.received_at) >= _naive(end):
            continue
        if roll.finished_at is not None and _naive(roll.finished_at) < _naive(end):
            continue
        used_by_end, level = session.execute(
            select(func.coalesce(func.sum(panels_col), 0), func.max(u.id))
            .select_from(u)
            .where(roll_col == roll.id, u.at < end)
        ).one()
        last_level = session.scalar(select(u.printer_level).where(u.id == level)) if level else None
        loaded = roll.loaded_at is not None and _naive(roll.loaded_at) < _naive(end)
        on_hand.append(
            {
                "serial": roll.serial,
                "type": roll.type,
                "state": "loaded" if loaded else "in_stock",
                "station": roll.station.name if loaded and roll.station else None,
                "capacity_panels": roll.capacity_panels,
                "set_panels": roll.set_panels,
                "used_panels": int(used_by_end),
                "remaining_panels": max(roll.capacity_panels - int(used_by_end), 0),
                "printer_level": last_level
                if kind is ConsumableKind.RIBBON
                else roll.printer_level,
            }
        )
    return {
        "used_panels": int(used),
        "cards": int(cards),
        "received": received,
        "finished": finished,
        "on_hand": on_hand,
        "ever_used": bool(rolls),
    }


def _naive(value: datetime) -> datetime:
    """UTC-naive, for comparing values SQLite returns naive with aware ones."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _panels_per_card(
    session: Session, office_ids: list[int], end: datetime, kind: ConsumableKind, rolls: list[dict]
) -> int:
    """Observed average panels per card at the office (rounded up), else one set per card."""
    col = RibbonUsage.panels if kind is ConsumableKind.RIBBON else RibbonUsage.film_panels
    total, cards = session.execute(
        select(func.coalesce(func.sum(col), 0), func.count()).where(
            RibbonUsage.office_id.in_(office_ids), RibbonUsage.at < end, col > 0
        )
    ).one()
    if cards:
        return max(math.ceil(int(total) / int(cards)), 1)
    return max((r["set_panels"] for r in rolls), default=1)


def _blank_balance(
    session: Session, office: Office, start: datetime, end: datetime, stock_type: str | None
) -> dict[str, Any]:
    """The month's blank balance of the office (of one stock type, or of all when ``None``)."""
    before = _flows(session, office.id, None, start, stock_type)
    during = _flows(session, office.id, start, end, stock_type)
    opening = _on_hand(before)
    spoiled = {c.value: int(during["spoiled"].get(c.value, 0)) for c in SpoilCause}
    for cause, n in during["spoiled"].items():  # a cause not in the enum (should not happen)
        spoiled.setdefault(cause, n)
    spoiled_total = sum(spoiled.values())
    closing = opening + _on_hand(during)
    upto = _flows(session, office.id, None, end, stock_type)
    awaiting = (
        sum(n for c, n in upto["spoiled"].items() if c != SpoilCause.MISSING) - upto["destroyed"]
    )
    return {
        "opening": opening,
        "received": during["received"],
        "transferred_in": during["transferred_in"],
        "issued": during["issued"],
        "spoiled": spoiled,
        "spoiled_total": spoiled_total,
        "transferred_out": during["transferred_out"],
        "destroyed": during["destroyed"],
        "closing": closing,
        "spoiled_awaiting_destruction": awaiting,
        "balanced": opening + during["received"] + during["transferred_in"]
        == during["issued"] + spoiled_total + during["transferred_out"] + closing,
    }


def report_offices(session: Session, office: Office) -> list[Office]:
    """The offices a report of ``office`` covers: itself and, for a regency or city, every
    kecamatan office under it (the regency roll-up), in code order."""
    if office.kind is not OfficeKind.REGENCY:
        return [office]
    under = session.scalars(
        select(Office).where(Office.code.like(f"{office.code}.%")).order_by(Office.code)
    )
    return [office, *under]


def _add_balances(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several offices' balances (the roll-up's totals)."""
    total: dict[str, Any] = {key: 0 for key in _COUNTS}
    total["spoiled"] = {c.value: 0 for c in SpoilCause}
    for part in parts:
        for key in _COUNTS:
            total[key] += part[key]
        for cause, n in part["spoiled"].items():
            total["spoiled"][cause] = total["spoiled"].get(cause, 0) + n
    total["balanced"] = all(p["balanced"] for p in parts)
    return total


_COUNTS = (
    "opening",
    "received",
    "transferred_in",
    "issued",
    "spoiled_total",
    "transferred_out",
    "destroyed",
    "closing",
    "spoiled_awaiting_destruction",
)


def stock_report(session: Session, office_code: str, month: str) -> dict[str, Any]:
    """The monthly stock report of ``office_code`` for ``month`` (``YYYY-MM``, the office's
    local month).

    The blank lines at the top level are all stock types together; ``stock_types`` holds the
    same lines for each blank stock type (KTP-el chip blanks and KIA blanks are different
    security stock), and the report balances only if each of them does. A regency's report
    rolls up its own stock and every kecamatan office under it: ``offices`` has one line per
    office (each with its ``stock_types``), the totals are their sums.
    """
    office = office_by_code(session, office_code)
    start, end = month_bounds(month, office_code)
    zone = localtime.office_zone(office_code)
    scope = report_offices(session, office)
    ids = [o.id for o in scope]
    lines = []
    for member in scope:
        per_type = {t: _blank_balance(session, member, start, end, t) for t in STOCK_TYPES}
        lines.append(
            {
                "code": member.code,
                "name": member.name,
                **_add_balances(list(per_type.values())),
                "stock_types": per_type,
            }
        )
    per_stock = {t: _add_balances([line["stock_types"][t] for line in lines]) for t in STOCK_TYPES}
    blanks = _add_balances(list(per_stock.values()))
    closing = blanks["closing"]
    ribbons = _consumables(session, ids, ConsumableKind.RIBBON, start, end)
    film = _consumables(session, ids, ConsumableKind.FILM, start, end)
    ribbon_ppc = _panels_per_card(session, ids, end, ConsumableKind.RIBBON, ribbons["on_hand"])
    film_ppc = _panels_per_card(session, ids, end, ConsumableKind.FILM, film["on_hand"])
    ribbon_cards = sum(r["remaining_panels"] // ribbon_ppc for r in ribbons["on_hand"])
    film_cards = sum(r["remaining_panels"] // film_ppc for r in film["on_hand"])
    limits = [closing, ribbon_cards] + ([film_cards] if film.pop("ever_used") else [])
    ribbons.pop("ever_used")
    generated = localtime.now_utc()
    return {
        "office": {"code": office.code, "name": office.name, "kind": office.kind.value},
        "month": month,
        "period": {
            "start": zone.local(start).isoformat(),
            "end": zone.local(end).isoformat(),
            "timezone": f"{zone.tz.key} ({zone.name})",
            "zone": zone.name,
        },
        "generated_at": zone.local(generated).isoformat(timespec="seconds"),
        "generated_at_local": zone.format(generated, seconds=True),
        **blanks,
        "stock_types": per_stock,
        "rollup": len(scope) > 1,
        "offices": lines,
        "documents": _documents(session, ids, start, end),
        "pickup": _pickup(session, [o.code for o in scope], ids, start, end,
                          received=blanks["received"] + blanks["transferred_in"]),
        "ribbons": ribbons,
        "film": film,
        "forecast": {
            "blanks_on_hand": closing,
            "ribbon_panels_per_card": ribbon_ppc,
            "ribbon_cards": ribbon_cards,
            "film_panels_per_card": film_ppc,
            "film_cards": film_cards if len(limits) == 3 else None,
            "cards_possible": min(limits),
        },
    }


def _pickup(
    session: Session, codes: list[str], ids: list[int], start: datetime, end: datetime,
    *, received: int,
) -> dict[str, Any]:
    """After printing: cards handed over in the month, cards printed by its end and not yet
    collected then, Suket issued and revoked, and IKD activations beside the blanks received."""
    from printsrv.desk.models import CardCollection, IkdActivation, Suket
    from printsrv.models import Record, RecordState

    def count(stmt: Any) -> int:
        return int(session.scalar(stmt) or 0)

    handed = count(select(func.count()).select_from(CardCollection).where(
        CardCollection.office_code.in_(codes), CardCollection.at >= start,
        CardCollection.at < end))  # fmt: skip
    waiting = count(select(func.count()).select_from(Record).where(
        Record.office_id.in_(ids), Record.issued_at < end,
        Record.state.in_([RecordState.ISSUED, RecordState.AT_DESK])))  # fmt: skip
    collected_later = count(select(func.count()).select_from(CardCollection).join(
        Record, Record.id == CardCollection.record_id).where(
        CardCollection.office_code.in_(codes), CardCollection.at >= end,
        Record.issued_at < end))  # fmt: skip
    suket_issued = count(select(func.count()).select_from(Suket).where(
        Suket.office_code.in_(codes), Suket.issued_at >= start, Suket.issued_at < end))
    suket_revoked = count(select(func.count()).select_from(Suket).where(
        Suket.office_code.in_(codes), Suket.revoked_at >= start, Suket.revoked_at < end))
    zone = localtime.office_zone(codes[0])
    first, last = zone.local(start).date(), zone.local(end).date()
    ikd = count(select(func.coalesce(func.sum(IkdActivation.activations), 0)).where(
        IkdActivation.office_code.in_(codes), IkdActivation.day >= first,
        IkdActivation.day < last))  # fmt: skip
    return {
        "handed_over": handed,
        "not_collected": waiting + collected_later,
        "suket_issued": suket_issued,
        "suket_revoked": suket_revoked,
        "ikd_activations": ikd,
        "ikd_share_percent": round(100 * ikd / received) if received else None,
    }


# ---------------------------------------------------------------------------- renderings

LANGUAGES = ("id", "en")

#: The report's words: Bahasa Indonesia (as it is filed) and English.
_TEXT: dict[str, dict[str, str]] = {
    "title": {"id": "Laporan Stok Blangko KTP-el", "en": "KTP-el Blank Stock Report"},
    "pickup": {"id": "Pengambilan kartu, Suket dan IKD", "en": "Card pickup, Suket and IKD"},
    "handed_over": {"id": "Diserahkan", "en": "Handed over"},
    "not_collected": {"id": "Belum diambil (akhir periode)",
                      "en": "Not collected (end of period)"},
    "suket_issued": {"id": "Suket diterbitkan", "en": "Suket issued"},
    "suket_revoked": {"id": "Suket dicabut (KTP-el terbit)",
                      "en": "Suket revoked (KTP-el issued)"},
    "ikd_activations": {"id": "Aktivasi IKD", "en": "IKD activations"},
    "ikd_share_percent": {"id": "Aktivasi IKD per blangko diterima (%)",
                          "en": "IKD activations per blank received (%)"},
    "office": {"id": "Kantor", "en": "Office"},
    "rollup": {
        "id": "gabungan kabupaten/kota dan kecamatan di bawahnya",
        "en": "regency roll-up with the kecamatan offices under it",
    },
    "month": {"id": "Bulan", "en": "Month"},
    "through": {"id": "s.d.", "en": "to"},
    "generated": {"id": "Dibuat pada", "en": "Generated"},
    "page": {"id": "Halaman {page} dari {pages}", "en": "Page {page} of {pages}"},
    "item": {"id": "Uraian", "en": "Item"},
    "count": {"id": "Jumlah", "en": "Count"},
    "section": {"id": "Bagian", "en": "Section"},
    "key": {"id": "kunci", "en": "key"},
    "stock:KTP-EL": {"id": "Blangko KTP-el (dengan chip)", "en": "KTP-el blanks (with chip)"},
    "stock:KIA": {"id": "Blangko KIA", "en": "KIA blanks"},
    "opening": {"id": "Stok awal", "en": "Opening stock"},
    "received": {"id": "Diterima", "en": "Received"},
    "transferred_in": {"id": "Mutasi masuk", "en": "Transferred in"},
    "issued": {"id": "Dicetak", "en": "Issued (printed)"},
    "spoiled_total": {"id": "Rusak", "en": "Spoiled"},
    "transferred_out": {"id": "Mutasi keluar", "en": "Transferred out"},
    "closing": {"id": "Stok akhir", "en": "Closing stock"},
    "destroyed": {"id": "Dimusnahkan (dari yang rusak)", "en": "Destroyed (of spoiled)"},
    "spoiled_awaiting_destruction": {
        "id": "Rusak menunggu pemusnahan",
        "en": "Spoiled awaiting destruction",
    },
    "by_office": {"id": "Rincian per kantor", "en": "By office"},
    "balance": {
        "id": "Stok awal + Diterima + Mutasi masuk = Dicetak + Rusak + Mutasi keluar + Stok akhir",
        "en": "Opening + received + transferred in = issued + spoiled + transferred out + "
        "closing",
    },
    "balanced": {"id": "SEIMBANG", "en": "BALANCED"},
    "unbalanced": {"id": "TIDAK SEIMBANG", "en": "DOES NOT BALANCE"},
    "check": {"id": "Pemeriksaan", "en": "Check"},
    "documents": {"id": "Dokumen bulan ini", "en": "Documents this month"},
    "document": {"id": "Nomor dokumen", "en": "Document"},
    "kind": {"id": "Jenis", "en": "Kind"},
    "doc:received": {"id": "Penerimaan", "en": "Received"},
    "doc:transferred_in": {"id": "Mutasi masuk", "en": "Transferred in"},
    "doc:transferred_out": {"id": "Mutasi keluar", "en": "Transferred out"},
    "doc:destroyed": {"id": "Pemusnahan", "en": "Destruction"},
    "supplies": {"id": "Pita (ribbon) dan film", "en": "Ribbons and film"},
    "ribbon": {"id": "Pita", "en": "Ribbon"},
    "film": {"id": "Film", "en": "Film"},
    "used_panels": {"id": "Panel terpakai bulan ini", "en": "Panels used this month"},
    "cards": {"id": "Kartu tercatat", "en": "Cards recorded"},
    "rolls_received": {"id": "Gulungan diterima", "en": "Rolls received"},
    "rolls_finished": {"id": "Gulungan habis", "en": "Rolls finished"},
    "rolls_on_hand": {"id": "Gulungan tersedia akhir bulan", "en": "Rolls on hand at month end"},
    "panels_left": {"id": "Sisa panel (hitungan kami)", "en": "Panels remaining (our count)"},
    "rolls": {"id": "Gulungan tersedia", "en": "Rolls on hand"},
    "roll": {"id": "Gulungan", "en": "Roll"},
    "type": {"id": "Tipe", "en": "Type"},
    "state": {"id": "Keadaan", "en": "State"},
    "remaining": {"id": "Sisa / kapasitas panel", "en": "Remaining / capacity panels"},
    "printer_level": {"id": "Level menurut printer", "en": "Printer level"},
    "roll:loaded": {"id": "terpasang", "en": "loaded"},
    "roll:in_stock": {"id": "di gudang", "en": "in stock"},
    "forecast": {"id": "Prakiraan", "en": "Forecast"},
    "blanks_on_hand": {"id": "Blangko tersedia", "en": "Blanks on hand"},
    "ribbon_cards": {
        "id": "Cukup pita untuk (kartu, {n} panel per kartu)",
        "en": "Ribbon enough for (cards, {n} panels per card)",
    },
    "film_cards": {
        "id": "Cukup film untuk (kartu, {n} panel per kartu)",
        "en": "Film enough for (cards, {n} panels per card)",
    },
    "cards_possible": {"id": "Kartu yang masih dapat dicetak", "en": "Cards still possible"},
    "prepared_by": {"id": "Dibuat oleh", "en": "Prepared by"},
    "acknowledged_by": {"id": "Mengetahui", "en": "Acknowledged by"},
    "nip": {"id": "NIP", "en": "NIP"},
    "none": {"id": "(tidak ada)", "en": "(none)"},
}

#: Spoil causes, as the Berita Acara name them (the web's ``CAUSE_ID`` in Indonesian).
_CAUSES: dict[str, dict[str, str]] = {
    "factory_defect": {"id": "Cacat pabrik", "en": "Factory defect"},
    "print_defect": {"id": "Cacat cetak (mengelupas, luntur)", "en": "Print defect"},
    "ribbon_fault": {"id": "Gangguan pita/film", "en": "Ribbon or film fault"},
    "chip_failure": {"id": "Gagal tulis chip", "en": "Chip write failure"},
    "data_error": {"id": "Kesalahan data", "en": "Data error"},
    "jam_misfeed": {"id": "Macet/salah tarik", "en": "Jam or misfeed"},
    "qc_reject": {"id": "Ditolak QC", "en": "QC reject"},
    "test_print": {"id": "Cetak uji", "en": "Test print"},
    "handling_damage": {"id": "Rusak saat penanganan", "en": "Handling damage"},
    "unknown_crash": {"id": "Tidak diketahui (pemulihan)", "en": "Unknown (recovery)"},
    "printer_gone": {"id": "Printer hilang", "en": "Printer gone"},
    "missing": {"id": "Hilang", "en": "Missing"},
}

_MONTHS = {
    "id": ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
}

#: The blank balance lines, in the order the report reads them.
_LINES = (
    "opening",
    "received",
    "transferred_in",
    "issued",
    "spoiled_total",
    "transferred_out",
    "closing",
    "destroyed",
    "spoiled_awaiting_destruction",
)


def _t(key: str, lang: str, **values: Any) -> str:
    text = _TEXT[key].get(lang) or _TEXT[key]["id"]
    return text.format(**values) if values else text


def _lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise LedgerError(f"report language {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


@dataclass(frozen=True)
class Signatories:
    """Who signs the monthly report: the operator or supervisor who made it (*Dibuat oleh*)
    and the head of the office who acknowledges it (*Mengetahui*)."""

    prepared_name: str = ""
    prepared_nip: str = ""
    head_name: str = ""
    head_nip: str = ""
    head_title: str = ""

    def merged(self, other: Signatories) -> Signatories:
        """These values, each empty one taken from ``other`` (a form over the settings)."""
        return Signatories(
            **{f: getattr(self, f) or getattr(other, f) for f in self.__dataclass_fields__}
        )


def signatories_from_settings(table: Mapping[str, Any], office_code: str) -> Signatories:
    """The signatories of ``office_code`` from the setting ``report_signatories``: its plain
    keys (``prepared_name``, ``prepared_nip``, ``head_name``, ``head_nip``, ``head_title``)
    overridden by a sub-table for the office, its regency or province (longest code wins)."""
    fields = Signatories.__dataclass_fields__
    values = {k: str(v) for k, v in table.items() if k in fields}
    for length in (2, 5, 8):
        part = table.get(office_code[:length]) if len(office_code) >= length else None
        if isinstance(part, Mapping):
            values.update({k: str(v) for k, v in part.items() if k in fields})
    return Signatories(**values)


@dataclass
class ReportSection:
    """One table of the report: a heading, column headings and rows; ``keys`` names each
    row for machines (the CSV's last column)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    #: Rows shown in bold (totals).
    strong: set[int] = field(default_factory=set)

    def add(self, key: str, *cells: Any, strong: bool = False) -> None:
        if strong:
            self.strong.add(len(self.rows))
        self.rows.append(list(cells))
        self.keys.append(key)


def period_text(report: dict[str, Any], lang: str = "id") -> str:
    """``Maret 2026 (01-03-2026 s.d. 31-03-2026, WIB)``: the office's local month."""
    lang = _lang(lang)
    year, month = (int(x) for x in report["month"].split("-"))
    start = datetime.fromisoformat(report["period"]["start"])
    last = datetime.fromisoformat(report["period"]["end"]) - timedelta(days=1)
    return (
        f"{_MONTHS[lang][month - 1]} {year} ({start:%d-%m-%Y} {_t('through', lang)} "
        f"{last:%d-%m-%Y}, {report['period']['zone']})"
    )


def report_title(report: dict[str, Any], lang: str = "id") -> str:
    return _t("title", _lang(lang))


def office_text(report: dict[str, Any], lang: str = "id") -> str:
    """``35.26 DISDUKCAPIL KAB. PAMEKASAN`` (and the roll-up note for a regency)."""
    office = report["office"]
    text = f"{office['code']} {office['name']}"
    return text + (f" ({_t('rollup', lang)})" if report.get("rollup") else "")


def report_sections(report: dict[str, Any], lang: str = "id") -> list[ReportSection]:
    """The report as the tables an auditor reads, in ``lang`` (``id`` or ``en``): one per
    blank stock type (with its lines per office in a roll-up), the balance check, the
    documents, ribbons and film, and the forecast. The PDF, the CSV and the web page are
    all made from these."""
    lang = _lang(lang)
    sections: list[ReportSection] = []
    for stock_type, part in report["stock_types"].items():
        name = _t(f"stock:{stock_type}", lang) if f"stock:{stock_type}" in _TEXT else stock_type
        sec = ReportSection(f"blanks:{stock_type}", name, [_t("item", lang), _t("count", lang)])
        for key in _LINES:
            sec.add(key, _t(key, lang), part[key], strong=key in ("closing", "opening"))
            if key == "spoiled_total":
                for cause, n in part["spoiled"].items():
                    if n:
                        label = _CAUSES.get(cause, {}).get(lang, cause)
                        sec.add(f"spoiled:{cause}", f"{_t('spoiled_total', lang)}: {label}", n)
        sections.append(sec)
        if report.get("rollup"):
            cols = ["opening", "received", "transferred_in", "issued", "spoiled_total",
                    "transferred_out", "closing"]
            per = ReportSection(
                f"offices:{stock_type}",
                f"{name}: {_t('by_office', lang)}",
                [_t("office", lang)] + [_t(c, lang) for c in cols],
            )
            for line in report["offices"]:
                own = line["stock_types"][stock_type]
                per.add(line["code"], f"{line['code']} {line['name']}", *(own[c] for c in cols))
            per.add("total", _t("count", lang), *(part[c] for c in cols), strong=True)
            sections.append(per)
    check = ReportSection("check", _t("check", lang), [_t("item", lang), ""])
    check.add(
        "balanced",
        _t("balance", lang),
        _t("balanced" if report["balanced"] else "unbalanced", lang),
        strong=True,
    )
    sections.append(check)
    docs = ReportSection(
        "documents", _t("documents", lang),
        [_t("document", lang), _t("kind", lang), _t("count", lang)],
    )
    for kind, items in report["documents"].items():
        for d in items:
            docs.add(f"{kind}:{d['number']}", d["number"], _t(f"doc:{kind}", lang), d["count"])
    if not docs.rows:
        docs.add("none", _t("none", lang), "", 0)
    sections.append(docs)
    if "pickup" in report:
        pickup = ReportSection("pickup", _t("pickup", lang), [_t("item", lang), _t("count", lang)])
        for key, value in report["pickup"].items():
            pickup.add(key, _t(key, lang), "-" if value is None else value)
        sections.append(pickup)
    r, f = report["ribbons"], report["film"]
    supplies = ReportSection(
        "supplies", _t("supplies", lang),
        [_t("item", lang), _t("ribbon", lang), _t("film", lang)],
    )
    supplies.add("used_panels", _t("used_panels", lang), r["used_panels"], f["used_panels"])
    supplies.add("cards", _t("cards", lang), r["cards"], f["cards"])
    supplies.add("rolls_received", _t("rolls_received", lang), r["received"], f["received"])
    supplies.add("rolls_finished", _t("rolls_finished", lang), r["finished"], f["finished"])
    supplies.add("rolls_on_hand", _t("rolls_on_hand", lang), len(r["on_hand"]), len(f["on_hand"]))
    supplies.add(
        "panels_left", _t("panels_left", lang),
        sum(x["remaining_panels"] for x in r["on_hand"]),
        sum(x["remaining_panels"] for x in f["on_hand"]),
    )
    sections.append(supplies)
    rolls = ReportSection(
        "rolls", _t("rolls", lang),
        [_t("roll", lang), _t("type", lang), _t("state", lang), _t("remaining", lang),
         _t("printer_level", lang)],
    )
    for kind, part in (("ribbon", r), ("film", f)):
        for roll in part["on_hand"]:
            state = _t(f"roll:{roll['state']}", lang)
            rolls.add(
                f"{kind}:{roll['serial']}",
                f"{_t(kind, lang)} {roll['serial']}",
                roll["type"],
                state + (f" ({roll['station']})" if roll["station"] else ""),
                f"{roll['remaining_panels']} / {roll['capacity_panels']}",
                "-" if roll["printer_level"] is None else roll["printer_level"],
            )
    if rolls.rows:
        sections.append(rolls)
    fc = report["forecast"]
    forecast = ReportSection("forecast", _t("forecast", lang), [_t("item", lang), ""])
    forecast.add("blanks_on_hand", _t("blanks_on_hand", lang), fc["blanks_on_hand"])
    forecast.add(
        "ribbon_cards", _t("ribbon_cards", lang, n=fc["ribbon_panels_per_card"]),
        fc["ribbon_cards"],
    )
    if fc["film_cards"] is not None:
        forecast.add(
            "film_cards", _t("film_cards", lang, n=fc["film_panels_per_card"]), fc["film_cards"]
        )
    forecast.add("cards_possible", _t("cards_possible", lang), fc["cards_possible"], strong=True)
    sections.append(forecast)
    return sections


def report_rows(report: dict[str, Any], lang: str = "id") -> list[tuple[str, str, Any, str]]:
    """The report flattened to ``(section, item, value, key)`` rows (the CSV): a table with
    several value columns gives one row per cell, its item naming row and column."""
    out: list[tuple[str, str, Any, str]] = []
    for sec in report_sections(report, lang):
        value_columns = sec.columns[1:]
        for key, row in zip(sec.keys, sec.rows, strict=True):
            if len(row) == 2:
                out.append((sec.title, row[0], row[1], f"{sec.key}:{key}"))
                continue
            for column, value in zip(value_columns, row[1:], strict=True):
                out.append((sec.title, f"{row[0]}: {column}", value, f"{sec.key}:{key}"))
    return out


def render_csv(report: dict[str, Any], lang: str = "id") -> str:
    """The report as ``section,item,value,key`` rows in ``lang`` (cells safe from
    spreadsheet formulas); the key column is the same in every language."""
    lang = _lang(lang)
    header = [_t("section", lang), _t("item", lang), _t("count", lang), _t("key", lang)]
    return csv_text(header, report_rows(report, lang))


def report_filename(report: dict[str, Any], fmt: str) -> str:
    """``laporan-stok-35.26.01-2026-03.pdf``: named after the office and the month."""
    return f"laporan-stok-{report['office']['code']}-{report['month']}.{fmt}"


def render_pdf(
    report: dict[str, Any], lang: str = "id", signatories: Signatories | None = None
) -> bytes:
    """The report as an A4 PDF in ``lang``: office and month, a table per section, the
    balance check, the signature block (*Dibuat oleh*, *Mengetahui*) with space to sign, and
    "Halaman 1 dari 2" and the generation time (office time, with its zone) on every page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    from printsrv.paperwork import numbered_canvas, signature_block

    lang = _lang(lang)
    people = signatories or Signatories()
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    cell = styles["BodyText"].clone("cell", fontSize=8, leading=9.5)
    cell_right = cell.clone("cell_right", alignment=2)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=f"{_t('title', lang)} {report['office']['code']} {report['month']}",
        author="ktp-printsrv",
    )
    width = A4[0] - 36 * mm
    footer = f"{report['office']['code']} · {report['month']} · {_t('generated', lang)} " + str(
        report.get("generated_at_local") or report["generated_at"]
    )
    story: list[Any] = [
        Paragraph(markup(_t("title", lang)), styles["Title"]),
        Paragraph(f"<b>{_t('office', lang)}:</b> {markup(office_text(report, lang))}", small),
        Paragraph(f"<b>{_t('month', lang)}:</b> {markup(period_text(report, lang))}", small),
        Paragraph(
            f"<b>{_t('generated', lang)}:</b> "
            f"{markup(report.get('generated_at_local') or report['generated_at'])}",
            small,
        ),
        Spacer(1, 4 * mm),
    ]
    for sec in report_sections(report, lang):
        ncols = len(sec.columns)
        first = width * (0.62 if ncols == 2 else 0.45 if ncols == 3 else 0.34 if ncols < 7 else 0.3)
        rest = (width - first) / max(ncols - 1, 1)
        data = [[Paragraph(f"<b>{markup(c)}</b>", cell if i == 0 else cell_right)
                 for i, c in enumerate(sec.columns)]]
        for row in sec.rows:
            data.append([Paragraph(markup(row[0]), cell)] + [str(v) for v in row[1:]])
        table = Table(data, colWidths=[first] + [rest] * (ncols - 1), repeatRows=1)
        style = TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4f0")),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
        for i in sec.strong:
            style.add("FONTNAME", (1, i + 1), (-1, i + 1), "Helvetica-Bold")
        table.setStyle(style)
        story += [
            KeepTogether([Paragraph(markup(sec.title), styles["Heading4"]), table]),
            Spacer(1, 2 * mm),
        ]
    story.append(Spacer(1, 6 * mm))
    story.append(
        KeepTogether(
            signature_block(
                [
                    (_t("prepared_by", lang), "", people.prepared_name, people.prepared_nip),
                    (
                        _t("acknowledged_by", lang),
                        people.head_title,
                        people.head_name,
                        people.head_nip,
                    ),
                ]
            )
        )
    )
    doc.build(story, canvasmaker=numbered_canvas(_TEXT["page"][lang], footer))
    return buf.getvalue()
