"""Anomaly flags for auditors, over the offices a user sees.

- spoilage rate of a station, or of an operator, far above its peers (each blank stock type
  apart: KTP-el chip blanks and KIA blanks spoil for different reasons; ``data["stock_type"]``);
- blanks idle in a station's hopper for more than N days;
- serial gaps: serials received under a handover record that are missing from the ledger, and
  numbering holes within a carton;
- ribbon panels used out of line with the cards issued (beyond the printer profile's panels per
  card ± a tolerance).

Each check is a read-only query returning :class:`Flag` rows; thresholds are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printsrv.ledger import analytics
from printsrv.ledger.models import (
    Blank,
    BlankMovement,
    BlankState,
    HandoverKind,
    HandoverRecord,
    MovementKind,
    RibbonUsage,
    SpoilCause,
    Station,
)
from printsrv.ledger.serials import parse_serial
from printsrv.models import Office
from printsrv.offices import visible_office_ids
from printsrv.station.journal import CardJob, CardOutcome

#: At most this many missing serials are listed per range (the count is always exact).
MAX_LISTED = 50


@dataclass(frozen=True)
class Flag:
    """One anomaly: its kind, what it is about, the figure, and the numbers behind it."""

    kind: str
    subject: str
    detail: str
    data: dict[str, Any]


def _outliers(
    kind: str, totals: dict[str, tuple[int, int]], *, factor: float, min_cards: int, floor: float
) -> list[Flag]:
    """The outliers of :func:`printsrv.ledger.analytics.outliers` as flags."""
    return [
        Flag(kind, o.subject, f"{o.rate:.0%} (median {o.median:.0%})",
             {"rate": o.rate, "median": o.median, "cards": o.cards, "spoiled": o.spoiled})
        for o in analytics.outliers(totals, factor=factor, min_cards=min_cards, floor=floor)
    ]


def _outliers_per_stock(
    kind: str, totals: dict[tuple[str, str], list[int]], *, factor: float, min_cards: int,
    floor: float,
) -> list[Flag]:
    """:func:`_outliers` among the subjects of each blank stock type (``(subject, stock type)``
    keys): a subject is compared with its peers on the same stock."""
    flags: list[Flag] = []
    for stock_type in sorted({t for _, t in totals}):
        part = {s: (v[0], v[1]) for (s, t), v in totals.items() if t == stock_type}
        for flag in _outliers(kind, part, factor=factor, min_cards=min_cards, floor=floor):
            flag.data["stock_type"] = stock_type
            flags.append(flag)
    return flags


def station_spoilage(
    session: Session, office: Office, *, factor: float = 2.0, min_cards: int = 10,
    floor: float = 0.05,
) -> list[Flag]:
    """Stations whose spoilage rate (spoiled / cards made) is far above the median of the
    stations printing on the same blank stock."""
    totals = analytics.station_stock_totals(session, visible_office_ids(session, office))
    return _outliers_per_stock("station_spoilage", totals, factor=factor, min_cards=min_cards,
                               floor=floor)


def operator_spoilage(
    session: Session, office: Office, *, factor: float = 2.0, min_cards: int = 10,
    floor: float = 0.05,
) -> list[Flag]:
    """Operators whose spoilage rate is far above their peers' (:func:`operator_totals`)."""
    return _outliers_per_stock("operator_spoilage", operator_totals(session, office),
                               factor=factor, min_cards=min_cards, floor=floor)


def station_totals(session: Session, office: Office) -> dict[tuple[str, str], list[int]]:
    """Cards made and spoiled per (station, blank stock type) in the user's offices."""
    return analytics.station_stock_totals(session, visible_office_ids(session, office))


def operator_totals(session: Session, office: Office) -> dict[tuple[str, str], list[int]]:
    """Cards made and spoiled per (operator, blank stock type) in the user's offices.

    A blank's operator is the person who recorded it spoiled by hand, otherwise the operator
    of the station when it made the card (``card_job.operator``: who asked for the batch or
    started the station), otherwise the person who last loaded it into a hopper. Rate =
    spoiled / (issued + spoiled) over the blanks used; blanks written off as missing are not
    an operator's spoilage."""
    ids = visible_office_ids(session, office)
    rows = session.execute(
        select(Blank.id, Blank.state, Blank.serial, Blank.stock_type).where(
            Blank.office_id.in_(ids),
            Blank.state.in_([BlankState.ISSUED, BlankState.SPOILED, BlankState.DESTROYED]),
            (Blank.spoil_cause.is_(None)) | (Blank.spoil_cause != SpoilCause.MISSING),
        )
    ).all()
    used = {blank_id: state for blank_id, state, _, _ in rows}
    if not used:
        return {}
    serial_of = {blank_id: serial for blank_id, _, serial, _ in rows}
    stock_of = {blank_id: stock_type for blank_id, _, _, stock_type in rows}
    at_station: dict[str, str] = {
        serial: operator
        for serial, operator in session.execute(
            select(CardJob.blank_serial, CardJob.operator)
            .join(Blank, Blank.serial == CardJob.blank_serial)
            .where(Blank.office_id.in_(ids), CardJob.operator.is_not(None))
            .order_by(CardJob.id)
        ).all()
        if serial is not None and operator is not None  # the query's join and filter
    }
    owner: dict[int, str] = {}
    manual: dict[int, str] = {}
    movements = session.execute(
        select(BlankMovement.blank_id, BlankMovement.kind, BlankMovement.actor)
        .where(
            BlankMovement.office_id.in_(ids),
            BlankMovement.kind.in_([MovementKind.LOAD, MovementKind.SPOIL]),
        )
        .order_by(BlankMovement.id)
    ).all()
    for blank_id, kind, actor in movements:
        if blank_id not in used:
            continue
        if MovementKind(kind) is MovementKind.LOAD:
            owner[blank_id] = actor
        elif not actor.startswith("station:"):
            manual[blank_id] = actor
    totals: dict[tuple[str, str], list[int]] = {}
    for blank_id, state in used.items():
        person = (manual.get(blank_id) or at_station.get(serial_of[blank_id])
                  or owner.get(blank_id))
        if person is None:
            continue
        t = totals.setdefault((person, stock_of[blank_id]), [0, 0])
        t[0] += 1
        if BlankState(state) is not BlankState.ISSUED:
            t[1] += 1
    return totals


def idle_hopper(
    session: Session, office: Office, *, days: int = 14, now: datetime | None = None
) -> list[Flag]:
    """Stations holding blanks in the hopper whose last movement is older than ``days``."""
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=days)).astimezone(UTC).replace(tzinfo=None)
    last = (
        select(BlankMovement.blank_id, func.max(BlankMovement.at).label("last_at"))
        .group_by(BlankMovement.blank_id)
        .subquery()
    )
    rows = session.execute(
        select(Station.name, func.count(), func.min(last.c.last_at))
        .join(Blank, Blank.station_id == Station.id)
        .join(last, last.c.blank_id == Blank.id)
        .where(
            Station.office_id.in_(visible_office_ids(session, office)),
            Blank.state == BlankState.IN_HOPPER,
            last.c.last_at < cutoff,
        )
        .group_by(Station.name)
        .order_by(Station.name)
    ).all()
    out = []
    for name, n, oldest in rows:
        oldest_naive = oldest.astimezone(UTC).replace(tzinfo=None) if oldest.tzinfo else oldest
        age = (now.astimezone(UTC).replace(tzinfo=None) - oldest_naive).days
        out.append(Flag("idle_hopper", name, f"{n} blanks idle, oldest {age} days",
                        {"count": int(n), "oldest_days": age, "days": days}))
    return out


def _missing_numbers(present: set[int], lo: int, hi: int) -> tuple[int, list[int]]:
    missing_count = (hi - lo + 1) - len(present)
    listed: list[int] = []
    if missing_count:
        for n in range(lo, hi + 1):
            if n not in present:
                listed.append(n)
                if len(listed) >= MAX_LISTED:
                    break
    return missing_count, listed


def serial_gaps(session: Session, office: Office) -> list[Flag]:
    """Serials received under a handover record of the user's offices that are not in the
    ledger in any state, and numbering holes within a carton (serials between a carton's
    lowest and highest that the ledger does not have)."""
    ids = visible_office_ids(session, office)
    out: list[Flag] = []
    receipts = session.scalars(
        select(HandoverRecord)
        .where(HandoverRecord.kind == HandoverKind.RECEIPT, HandoverRecord.to_office_id.in_(ids))
        .order_by(HandoverRecord.id)
    ).all()
    for h in receipts:
        first, last = parse_serial(h.first_serial), parse_serial(h.last_serial)
        found = session.scalar(
            select(func.count()).select_from(Blank).where(
                Blank.prefix == first.prefix, Blank.number.between(first.number, last.number)
            )
        )
        expected = last.number - first.number + 1
        if found == expected and h.count == expected:
            continue
        present = set(
            session.scalars(
                select(Blank.number).where(
                    Blank.prefix == first.prefix, Blank.number.between(first.number, last.number)
                )
            )
        )
        count, listed = _missing_numbers(present, first.number, last.number)
        serials = [f"{first.prefix}{n:0{first.width}d}" for n in listed]
        out.append(Flag("serial_gap", h.number,
                        f"{count} of {expected} serials received are missing from the ledger",
                        {"missing": count, "serials": serials, "handover": h.number,
                         "declared": h.count}))
    cartons = session.execute(
        select(Blank.carton, Blank.prefix, func.min(Blank.number), func.max(Blank.number),
               func.count())
        .where(Blank.office_id.in_(ids), Blank.carton.is_not(None))
        .group_by(Blank.carton, Blank.prefix)
    ).all()
    # Blanks transferred elsewhere leave the office but stay in the carton: count them all.
    for carton, prefix, lo, hi, _n in cartons:
        total = session.scalar(
            select(func.count()).select_from(Blank).where(
                Blank.carton == carton, Blank.prefix == prefix, Blank.number.between(lo, hi)
            )
        )
        if total == hi - lo + 1:
            continue
        present = set(session.scalars(select(Blank.number).where(
            Blank.carton == carton, Blank.prefix == prefix, Blank.number.between(lo, hi))))
        count, listed = _missing_numbers(present, lo, hi)
        sample_serial = session.scalar(
            select(Blank.serial).where(Blank.carton == carton, Blank.prefix == prefix).limit(1)
        )
        width = parse_serial(sample_serial).width if sample_serial else len(str(hi))
        serials = [f"{prefix}{n:0{width}d}" for n in listed]
        out.append(Flag("carton_hole", f"{carton}",
                        f"{count} numbers missing within the carton",
                        {"missing": count, "serials": serials, "carton": carton}))
    return out


def _profile_panels_per_card(profile_id: str) -> int | None:
    try:
        from printers.profiles import get_profile

        profile = get_profile(profile_id)
    except Exception:  # an unknown or broken profile: nothing to compare against
        return None
    return int(profile.ribbon.panels_per_card(profile.duplex))


def ribbon_out_of_line(
    session: Session, office: Office, *, tolerance: float = 0.25, min_cards: int = 10,
    expected: dict[str, int] | None = None,
) -> list[Flag]:
    """Stations whose ribbon panels used per card issued lie outside the printer profile's
    panels per card ± ``tolerance`` (a fraction). ``expected`` overrides the profile's figure
    per station name (tests, stations on an unknown profile)."""
    stations = session.scalars(
        select(Station).where(Station.office_id.in_(visible_office_ids(session, office)))
    ).all()
    out = []
    for st in stations:
        per_card = (expected or {}).get(st.name) or _profile_panels_per_card(st.profile)
        if not per_card:
            continue
        panels = int(session.scalar(
            select(func.coalesce(func.sum(RibbonUsage.panels), 0)).where(
                RibbonUsage.station_id == st.id)
        ) or 0)
        issued = int(session.scalar(
            select(func.count()).select_from(CardJob).where(
                CardJob.station == st.name, CardJob.outcome == CardOutcome.ISSUED)
        ) or 0)
        if issued < min_cards and panels < min_cards * per_card:
            continue
        ratio = panels / issued if issued else float("inf")
        if per_card * (1 - tolerance) <= ratio <= per_card * (1 + tolerance):
            continue
        out.append(Flag("ribbon_use", st.name,
                        f"{panels} panels for {issued} cards issued "
                        f"({ratio:.1f} per card, profile {per_card} ± {tolerance:.0%})",
                        {"panels": panels, "issued": issued, "per_card": per_card,
                         "ratio": ratio}))
    return out


def self_handover(session: Session, office: Office) -> list[Flag]:
    """Cards handed over at the desk by the officer who printed them, with no second officer
    (the last 31 days; offices whose pickup rules ask for two refuse such a handover, so a
    flag means the rule was off or the card was printed under another's name)."""
    from printsrv.desk.service import self_handovers

    codes = list(session.scalars(
        select(Office.code).where(Office.id.in_(visible_office_ids(session, office)))))  # fmt: skip
    return [
        Flag("self_handover", c.request_id,
             f"printed and handed over by {c.officer} alone ({c.receipt_number})",
             {"officer": c.officer, "receipt": c.receipt_number})
        for c in self_handovers(session, codes)
    ]


def ikd_below_target(session: Session, office: Office, *, target: int) -> list[Flag]:
    """Offices whose IKD activations last month were below ``target`` % of the blanks they
    received that month (the month that ended last, in the office's zone)."""
    from printsrv.desk.ikd import month_summary
    from printsrv.localtime import local_date

    first = local_date(office.code).replace(day=1)
    last_month = (first - timedelta(days=1)).strftime("%Y-%m")
    months = month_summary(session, visible_office_ids(session, office), last_month,
                           target_percent=target)  # fmt: skip
    return [
        Flag("ikd_below_target", m.office_code,
             f"{m.activations} IKD activations for {m.blanks_received} blanks received in "
             f"{last_month}",
             {"month": last_month, "activations": m.activations,
              "received": m.blanks_received, "share": round(100 * (m.share or 0)),
              "target": target})
        for m in months if m.below_target
    ]


def all_flags(
    session: Session, office: Office, *, idle_days: int = 14, ikd_target: int = 50
) -> dict[str, list[Flag]]:
    """Every check, keyed by kind (for the auditors' dashboard)."""
    return {
        "station_spoilage": station_spoilage(session, office),
        "operator_spoilage": operator_spoilage(session, office),
        "idle_hopper": idle_hopper(session, office, days=idle_days),
        "serial_gaps": serial_gaps(session, office),
        "ribbon_use": ribbon_out_of_line(session, office),
        "self_handover": self_handover(session, office),
        "ikd_below_target": ikd_below_target(session, office, target=ikd_target),
    }
