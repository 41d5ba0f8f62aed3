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
from datetime import UTC, datetime
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
from printsrv.models import Office
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


def _documents(session: Session, office: Office, start: datetime, end: datetime) -> dict[str, Any]:
    """The documents behind the month's movements, with their counts in this office."""
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
            (m.office_id == office.id) | (m.to_office_id == office.id),
        )
        .group_by(m.handover_id, m.office_id, m.to_office_id)
    )
    for handover_id, from_id, to_id, n in rows:
        doc = session.get_one(HandoverRecord, handover_id)
        if to_id is None:
            out["received"].append(
                {"number": doc.number, "from": doc.from_party, "carton": doc.carton, "count": n}
            )
        elif to_id == office.id:
            out["transferred_in"].append({"number": doc.number, "from": codes[from_id], "count": n})
        else:
            out["transferred_out"].append({"number": doc.number, "to": codes[to_id], "count": n})
    destroyed = session.execute(
        select(m.destruction_id, func.count())
        .where(m.destruction_id.is_not(None), m.office_id == office.id, m.at >= start, m.at < end)
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
    office: Office,
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
        .where(u.office_id == office.id, u.at >= start, u.at < end, panels_col > 0)
    ).one()
    rolls = list(
        session.scalars(
            select(Consumable)
            .where(Consumable.office_id == office.id, Consumable.kind == kind)
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
    session: Session, office: Office, end: datetime, kind: ConsumableKind, rolls: list[dict]
) -> int:
    """Observed average panels per card at the office (rounded up), else one set per card."""
    col = RibbonUsage.panels if kind is ConsumableKind.RIBBON else RibbonUsage.film_panels
    total, cards = session.execute(
        select(func.coalesce(func.sum(col), 0), func.count()).where(
            RibbonUsage.office_id == office.id, RibbonUsage.at < end, col > 0
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


def stock_report(session: Session, office_code: str, month: str) -> dict[str, Any]:
    """The monthly stock report of ``office_code`` for ``month`` (``YYYY-MM``, the office's
    local month).

    The blank lines at the top level are all stock types together; ``stock_types`` holds the
    same lines for each blank stock type (KTP-el chip blanks and KIA blanks are different
    security stock), and the report balances only if each of them does.
    """
    office = office_by_code(session, office_code)
    start, end = month_bounds(month, office_code)
    zone = localtime.office_zone(office_code)
    blanks = _blank_balance(session, office, start, end, None)
    per_stock = {t: _blank_balance(session, office, start, end, t) for t in STOCK_TYPES}
    closing = blanks["closing"]
    ribbons = _consumables(session, office, ConsumableKind.RIBBON, start, end)
    film = _consumables(session, office, ConsumableKind.FILM, start, end)
    ribbon_ppc = _panels_per_card(session, office, end, ConsumableKind.RIBBON, ribbons["on_hand"])
    film_ppc = _panels_per_card(session, office, end, ConsumableKind.FILM, film["on_hand"])
    ribbon_cards = sum(r["remaining_panels"] // ribbon_ppc for r in ribbons["on_hand"])
    film_cards = sum(r["remaining_panels"] // film_ppc for r in film["on_hand"])
    limits = [closing, ribbon_cards] + ([film_cards] if film.pop("ever_used") else [])
    ribbons.pop("ever_used")
    return {
        "office": {"code": office.code, "name": office.name},
        "month": month,
        "period": {
            "start": zone.local(start).isoformat(),
            "end": zone.local(end).isoformat(),
            "timezone": f"{zone.tz.key} ({zone.name})",
        },
        "generated_at": zone.local(localtime.now_utc()).isoformat(timespec="seconds"),
        **blanks,
        "balanced": all(b["balanced"] for b in [blanks, *per_stock.values()]),
        "stock_types": per_stock,
        "documents": _documents(session, office, start, end),
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


# ---------------------------------------------------------------------------- renderings

_LINES = (
    ("opening", "Opening stock"),
    ("received", "Received"),
    ("transferred_in", "Transferred in"),
    ("issued", "Issued (printed)"),
    ("spoiled_total", "Spoiled"),
    ("transferred_out", "Transferred out"),
    ("closing", "Closing stock"),
    ("destroyed", "Destroyed (of spoiled)"),
    ("spoiled_awaiting_destruction", "Spoiled awaiting destruction"),
)


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The report flattened to ``(section, item, value)`` rows (CSV and PDF)."""
    rows: list[tuple[str, str, Any]] = [
        ("office", "code", report["office"]["code"]),
        ("office", "name", report["office"]["name"]),
        ("period", "month", report["month"]),
    ]
    for key, _label in _LINES:
        rows.append(("blanks", key, report[key]))
    for cause, n in report["spoiled"].items():
        rows.append(("spoiled", cause, n))
    for stock_type, part in report.get("stock_types", {}).items():
        for key, _label in _LINES:
            rows.append((f"blanks:{stock_type}", key, part[key]))
    for section, docs in report["documents"].items():
        for doc in docs:
            rows.append((f"documents:{section}", doc["number"], doc["count"]))
    for name in ("ribbons", "film"):
        part = report[name]
        for key in ("used_panels", "cards", "received", "finished"):
            rows.append((name, key, part[key]))
        for roll in part["on_hand"]:
            level = "-" if roll["printer_level"] is None else roll["printer_level"]
            rows.append(
                (
                    f"{name}:on_hand",
                    roll["serial"],
                    f"{roll['remaining_panels']}/{roll['capacity_panels']} panels by our count; "
                    f"printer level {level}",
                )
            )
    for key, value in report["forecast"].items():
        rows.append(("forecast", key, value))
    rows.append(("check", "balanced", report["balanced"]))
    return rows


def render_csv(report: dict[str, Any]) -> str:
    """The report as ``section,item,value`` rows (cells safe from spreadsheet formulas)."""
    return csv_text(["section", "item", "value"], report_rows(report))


def render_pdf(report: dict[str, Any]) -> bytes:
    """A one-page A4 PDF: the blank balance, spoiled by cause, documents, ribbons, forecast."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Blank stock report {report['office']['code']} {report['month']}",
        author="ktp-printsrv",
    )
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4f0")),
            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
            ("FONTSIZE", (0, 0), (-1, -1), 8.5),
            ("ALIGN", (-1, 1), (-1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    story: list[Any] = [
        Paragraph("Blank stock report (Laporan stok blangko KTP-el)", styles["Title"]),
        Paragraph(
            f"{report['office']['code']} {markup(report['office']['name'])} — month "
            f"{report['month']} "
            f"({report['period']['timezone']}); generated {report['generated_at']}",
            small,
        ),
        Spacer(1, 4 * mm),
    ]
    balance = [["Blanks", "Count"]]
    balance += [[label, str(report[key])] for key, label in _LINES]
    table = Table(balance, colWidths=[110 * mm, 40 * mm])
    style = TableStyle(grid.getCommands())
    style.add("FONTNAME", (0, 7), (-1, 7), "Helvetica-Bold")
    table.setStyle(style)
    story += [table, Spacer(1, 3 * mm)]
    status = "BALANCED" if report["balanced"] else "DOES NOT BALANCE"
    story.append(
        Paragraph(
            f"opening + received + transferred in = issued + spoiled + transferred out + "
            f"closing: <b>{status}</b>",
            small,
        )
    )
    story.append(Spacer(1, 3 * mm))
    causes = [["Spoiled by cause", "Count"]] + [
        [cause.replace("_", " "), str(n)] for cause, n in report["spoiled"].items() if n
    ]
    if len(causes) == 1:
        causes.append(["(none)", "0"])
    table = Table(causes, colWidths=[110 * mm, 40 * mm])
    table.setStyle(grid)
    story += [table, Spacer(1, 3 * mm)]
    docs = [["Document", "Kind", "Count"]]
    for section, items in report["documents"].items():
        docs += [[d["number"], section.replace("_", " "), str(d["count"])] for d in items]
    if len(docs) > 1:
        table = Table(docs, colWidths=[80 * mm, 40 * mm, 30 * mm])
        table.setStyle(grid)
        story += [table, Spacer(1, 3 * mm)]
    supplies = [["Ribbons and film", "Ribbon", "Film"]]
    r, f = report["ribbons"], report["film"]
    supplies += [
        ["Panels used this month (our count)", str(r["used_panels"]), str(f["used_panels"])],
        ["Cards recorded", str(r["cards"]), str(f["cards"])],
        [
            "Rolls received / finished",
            f"{r['received']} / {r['finished']}",
            f"{f['received']} / {f['finished']}",
        ],
        ["Rolls on hand at month end", str(len(r["on_hand"])), str(len(f["on_hand"]))],
        [
            "Panels remaining (our count)",
            str(sum(x["remaining_panels"] for x in r["on_hand"])),
            str(sum(x["remaining_panels"] for x in f["on_hand"])),
        ],
    ]
    table = Table(supplies, colWidths=[80 * mm, 35 * mm, 35 * mm])
    table.setStyle(grid)
    story += [table, Spacer(1, 2 * mm)]
    rolls = [["Roll", "Type", "State", "Remaining / capacity", "Printer level"]]
    for name, part in (("ribbon", r), ("film", f)):
        for roll in part["on_hand"][:8]:
            rolls.append(
                [
                    f"{name} {roll['serial']}",
                    roll["type"],
                    roll["state"] + (f" ({roll['station']})" if roll["station"] else ""),
                    f"{roll['remaining_panels']} / {roll['capacity_panels']}",
                    "-" if roll["printer_level"] is None else str(roll["printer_level"]),
                ]
            )
    if len(rolls) > 1:
        table = Table(rolls, colWidths=[40 * mm, 20 * mm, 35 * mm, 35 * mm, 20 * mm])
        table.setStyle(grid)
        story += [table, Spacer(1, 3 * mm)]
    fc = report["forecast"]
    forecast = [
        ["Forecast", "Cards"],
        ["Blanks on hand", str(fc["blanks_on_hand"])],
        [f"Ribbon ({fc['ribbon_panels_per_card']} panels per card)", str(fc["ribbon_cards"])],
    ]
    if fc["film_cards"] is not None:
        forecast.append(
            [f"Film ({fc['film_panels_per_card']} panels per card)", str(fc["film_cards"])]
        )
    forecast.append(["Cards still possible", str(fc["cards_possible"])])
    table = Table(forecast, colWidths=[110 * mm, 40 * mm])
    style = TableStyle(grid.getCommands())
    style.add("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold")
    table.setStyle(style)
    story.append(table)
    doc.build(story)
    return buf.getvalue()
