"""Read-side queries over the ledger and the stations for the web app (scoped by office)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printsrv.ledger import analytics
from printsrv.ledger.blanks import blanks_at_station
from printsrv.ledger.models import ConsumableKind, Station
from printsrv.ledger.reports import (
    office_text,
    period_text,
    render_csv,
    render_pdf,
    report_filename,
    report_sections,
    report_title,
    stock_report,
)
from printsrv.ledger.ribbons import loaded_consumable
from printsrv.localtime import office_zone
from printsrv.models import Office, Record
from printsrv.offices import visible_office_ids
from printsrv.station.journal import CardJob

__all__ = [
    "office_text",
    "period_text",
    "render_csv",
    "render_pdf",
    "report_filename",
    "report_sections",
    "report_title",
    "stock_report",
]


def visible_stations(session: Session, office: Office) -> list[Station]:
    return list(
        session.scalars(
            select(Station)
            .where(Station.office_id.in_(visible_office_ids(session, office)))
            .order_by(Station.name)
        )
    )


def get_visible_station(session: Session, office: Office, station_id: int) -> Station:
    from printsrv.errors import NotFound

    station = session.get(Station, station_id)
    if station is None or station.office_id not in visible_office_ids(session, office):
        raise NotFound("station not found")
    return station


@dataclass(frozen=True)
class StationView:
    id: int
    name: str
    office: str
    state: str
    pause_reason: str | None
    heartbeat_at: str | None
    stale: bool
    printer_reasons: list[str]
    printer_status: dict[str, Any]
    #: The printer's state as the daemon last read it (``idle``, ``processing``, ``stopped``,
    #: ``gone``), ``""`` before the first reading.
    printer_state: str
    #: The ribbon's level as the printer reports it, in percent (``None``: not reported).
    ribbon_level: int | None
    #: Records waiting in the queue of the station's office(s).
    queue_length: int
    blanks_in_hopper: int
    ribbon: str
    ribbon_remaining: int | None
    reader: str
    #: The daemon runs ``--on-request`` (makes cards only as operators ask for a batch);
    #: ``None`` before it ever started.
    on_request: bool | None
    issued: int
    spoiled: int
    jobs: list[dict[str, Any]]


def _ribbon_level(status: dict[str, Any]) -> int | None:
    """The ribbon's level in percent from the printer's supplies (the first known one)."""
    levels = [int(m["level"]) for m in status.get("markers", [])
              if isinstance(m, dict) and int(m.get("level", -1)) >= 0]
    return levels[0] if levels else None


def _queue_length(session: Session, station: Station) -> int:
    """Records queued for the station's office and, for a regency, its kecamatan."""
    from printsrv.models import RecordState
    from printsrv.station.claim import office_ids

    ids = office_ids(session, station.office.code) or [station.office_id]
    return session.scalar(select(func.count()).select_from(Record).where(
        Record.office_id.in_(ids), Record.state == RecordState.QUEUED)) or 0


def station_view(session: Session, station: Station, *, jobs: int = 20) -> StationView:
    """What the station daemon last reported, the hopper and ribbon by the ledger's count, and
    the latest card jobs (for the live progress view)."""
    ribbon = loaded_consumable(session, station, ConsumableKind.RIBBON)
    status = station.printer_status or {}
    beat = station.heartbeat_at
    if beat is not None and beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    rows = session.execute(
        select(CardJob, Record.request_id)
        .join(Record, Record.id == CardJob.record_id)
        .where(CardJob.station == station.name)
        .order_by(CardJob.id.desc())
        .limit(jobs)
    ).all()
    return StationView(
        id=station.id,
        name=station.name,
        office=station.office.code,
        state=station.state.value,
        pause_reason=station.pause_reason,
        heartbeat_at=office_zone(station.office.code).format(beat, seconds=True) or None,
        stale=beat is None or datetime.now(UTC) - beat > timedelta(minutes=2),
        printer_reasons=[str(r) for r in status.get("reasons", status.get("state_reasons", []))],
        printer_status=status,
        printer_state=str(status.get("state", "")),
        ribbon_level=_ribbon_level(status),
        queue_length=_queue_length(session, station),
        blanks_in_hopper=len(blanks_at_station(session, station)),
        ribbon=ribbon.serial if ribbon else "",
        ribbon_remaining=ribbon.panels_remaining if ribbon else None,
        reader=station.reader,
        on_request=bool((station.details or {}).get("on_request")) if station.has_run else None,
        issued=station.cards_issued,
        spoiled=station.cards_spoiled,
        jobs=[
            {
                "id": job.id,
                "request_id": request_id,
                "phase": job.phase.value,
                "outcome": job.outcome.value if job.outcome else None,
                "cause": job.cause,
                "blank": job.blank_serial,
                "chip_uid": job.chip_uid,
                "operator": job.operator,
            }
            for job, request_id in rows
        ],
    )


def card_history(session: Session, record: Record) -> list[CardJob]:
    """Blank serial → record → chip UID → station → operator → outcome, for every attempt at
    the card."""
    return list(
        session.scalars(select(CardJob).where(CardJob.record_id == record.id).order_by(CardJob.id))
    )


def daily_usage(session: Session, office: Office, days: int = 30) -> list[dict[str, Any]]:
    """Cards issued and spoiled per day (the office's local days) over the last ``days``
    days in the user's offices, every day listed (zero when nothing was made)."""
    zone = office_zone(office.code)
    today = zone.local(datetime.now(UTC)).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone.tz).astimezone(UTC)
    rows = session.execute(
        select(CardJob.finished_at, CardJob.outcome)
        .join(Record, Record.id == CardJob.record_id)
        .where(
            Record.office_id.in_(visible_office_ids(session, office)),
            CardJob.finished_at >= since,
            CardJob.outcome.is_not(None),
        )
    ).all()
    out: dict[date, dict[str, Any]] = {
        first + timedelta(days=k): {"day": first + timedelta(days=k), "issued": 0, "spoiled": 0}
        for k in range(days)
    }
    for finished, outcome in rows:
        if finished is None:
            continue
        entry = out.get(zone.local(finished).date())
        key = str(getattr(outcome, "value", outcome))
        if entry is not None and key in ("issued", "spoiled"):
            entry[key] += 1
    return list(out.values())


@dataclass(frozen=True)
class RateChart:
    """Spoilage rates of one kind of subject on one blank stock type, with the threshold
    above which :func:`printsrv.ledger.analytics.outliers` flags a subject."""

    stock_type: str
    bars: list[tuple[str, float, int, int, bool]]  # label, rate, cards, spoiled, flagged
    median: float | None
    threshold: float | None


def rate_charts(totals: dict[tuple[str, str], list[int]], *, factor: float = 2.0,
                min_cards: int = 10, floor: float = 0.05) -> list[RateChart]:
    """Per blank stock type: every subject's rate and the outlier threshold (the same rule
    as the anomaly flags; subjects with fewer than ``min_cards`` cards are shown, never
    flagged)."""
    charts = []
    for stock_type in sorted({t for _, t in totals}):
        part = {s: (v[0], v[1]) for (s, t), v in totals.items() if t == stock_type}
        limit = analytics.threshold(part, factor=factor, min_cards=min_cards, floor=floor)
        flagged = {o.subject for o in analytics.outliers(part, factor=factor,
                                                         min_cards=min_cards, floor=floor)}
        bars = [(s, sp / made if made else 0.0, made, sp, s in flagged)
                for s, (made, sp) in sorted(part.items())]
        charts.append(RateChart(stock_type, bars, limit[0] if limit else None,
                                limit[1] if limit else None))
    return charts


def ribbon_history(session: Session, station: Station) -> dict[str, Any] | None:
    """The loaded ribbon's panels left after each card (the ledger's count) and a forecast:
    the average panels per day of the last week carried on to zero. ``None`` without a
    loaded ribbon."""
    ribbon = loaded_consumable(session, station, ConsumableKind.RIBBON)
    if ribbon is None:
        return None
    from printsrv.ledger.models import RibbonUsage

    rows = session.execute(
        select(RibbonUsage.at, RibbonUsage.panels)
        .where(RibbonUsage.ribbon_id == ribbon.id)
        .order_by(RibbonUsage.id)
    ).all()
    zone = office_zone(station.office.code)
    start = zone.local(ribbon.loaded_at or ribbon.received_at)
    left = ribbon.capacity_panels
    points = [(0.0, float(left))]
    for at, panels in rows:
        left -= panels
        points.append(((zone.local(at) - start).total_seconds() / 86400, float(max(left, 0))))
    now_x = (zone.local(datetime.now(UTC)) - start).total_seconds() / 86400
    recent = [(x, y) for x, y in points if x >= now_x - 7]
    forecast: list[tuple[float, float]] = []
    empty_on = None
    if len(recent) >= 2 and recent[-1][0] > recent[0][0] and recent[0][1] > recent[-1][1]:
        per_day = (recent[0][1] - recent[-1][1]) / max(recent[-1][0] - recent[0][0], 1 / 24)
        x_end = points[-1][0] + points[-1][1] / per_day
        forecast = [points[-1], (x_end, 0.0)]
        empty_on = (start + timedelta(days=x_end)).date()
    return {
        "serial": ribbon.serial,
        "capacity": ribbon.capacity_panels,
        "points": points,
        "forecast": forecast,
        "empty_on": empty_on,
        "start": start,
    }


def spoilage_flags(session: Session, office: Office, factor: float = 2.0) -> list[str]:
    """Stations whose spoilage rate is far above their peers' (the one computation,
    :func:`printsrv.ledger.analytics.outliers`), as the stations page lists them."""
    totals = analytics.station_totals(session, visible_office_ids(session, office))
    return [f"{o.subject}: {o.rate:.0%}" for o in analytics.outliers(totals, factor=factor)]


def request_station_batch(
    session: Session, station: Station, count: int, *, actor: str
) -> int | None:
    """Ask the station for ``count`` more cards (it makes them when running ``--on-request``),
    in the request's transaction; ``None`` when the station has never run."""
    from printsrv.station.requests import add_batch_request

    return add_batch_request(session, station.name, count, actor=actor)


def request_station_resume(session: Session, station: Station) -> bool:
    """Ask the running station to resume (an operator cleared the printer), in the request's
    transaction (:func:`printsrv.station.requests.request_resume`, as ``run.py station
    resume``); ``False`` when the station has never run."""
    from printsrv.station.requests import request_resume

    return request_resume(session, station.name)
