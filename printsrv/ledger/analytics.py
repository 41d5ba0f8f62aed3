"""Ledger analytics: spoilage outliers, computed once for every page that shows them.

A station's (or an operator's) spoilage rate is spoiled cards over cards made (issued +
spoiled; a blank released back to the hopper made no card). A subject is an outlier when its
rate exceeds ``factor`` times the median rate of its peers with at least ``min_cards`` cards,
and ``floor`` in any case. The median is the middle value (the mean of the two middle ones for
an even count): an upper median would flag less for two stations than for three.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printsrv.ledger.models import Station
from printsrv.station.journal import CardJob, CardOutcome


@dataclass(frozen=True)
class Outlier:
    subject: str
    rate: float
    median: float
    cards: int
    spoiled: int


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return 0.0
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def threshold(totals: dict[str, tuple[int, int]], *, factor: float = 2.0, min_cards: int = 10,
              floor: float = 0.05) -> tuple[float, float] | None:
    """``(median, limit)`` of the subjects with at least ``min_cards`` cards: a rate above
    ``limit`` is an outlier. ``None`` with fewer than two such subjects (no peers)."""
    rates = [sp / made for made, sp in totals.values() if made >= min_cards]
    if len(rates) < 2:
        return None
    mid = median(rates)
    return mid, max(mid * factor, floor)


def outliers(totals: dict[str, tuple[int, int]], *, factor: float = 2.0, min_cards: int = 10,
             floor: float = 0.05) -> list[Outlier]:
    """Subjects (``subject → (cards made, spoiled)``) far above their peers' median rate."""
    bounds = threshold(totals, factor=factor, min_cards=min_cards, floor=floor)
    if bounds is None:
        return []
    mid, limit = bounds
    rates = {s: sp / made for s, (made, sp) in totals.items() if made >= min_cards}
    return [Outlier(s, rate, mid, totals[s][0], totals[s][1])
            for s, rate in sorted(rates.items()) if rate > limit]


def station_stock_totals(
    session: Session, office_ids: list[int]
) -> dict[tuple[str, str], list[int]]:
    """Cards made and spoiled per (station, blank stock type) of the given offices."""
    from printsrv.ledger.models import Blank
    from printsrv.products import DEFAULT_STOCK_TYPE

    stock = func.coalesce(Blank.stock_type, DEFAULT_STOCK_TYPE)
    rows = session.execute(
        select(CardJob.station, stock, CardJob.outcome, func.count())
        .join(Station, Station.name == CardJob.station)
        .outerjoin(Blank, Blank.serial == CardJob.blank_serial)
        .where(Station.office_id.in_(office_ids), CardJob.outcome.is_not(None))
        .group_by(CardJob.station, stock, CardJob.outcome)
    ).all()
    totals: dict[tuple[str, str], list[int]] = {}
    for station, stock_type, outcome, n in rows:
        if outcome is None:  # never: the query keeps finished cards only
            continue
        made = totals.setdefault((station, stock_type), [0, 0])
        if CardOutcome(outcome) in (CardOutcome.ISSUED, CardOutcome.SPOILED):
            made[0] += n
        if CardOutcome(outcome) is CardOutcome.SPOILED:
            made[1] += n
    return totals


def station_totals(session: Session, office_ids: list[int]) -> dict[str, tuple[int, int]]:
    """Cards made and spoiled per station of the given offices (every stock type)."""
    totals: dict[str, tuple[int, int]] = {}
    for (station, _stock), (made, spoiled) in station_stock_totals(session, office_ids).items():
        old = totals.get(station, (0, 0))
        totals[station] = (old[0] + made, old[1] + spoiled)
    return totals
