"""Read-side queries over the ledger and the stations for the web app (scoped by office)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from printsrv.station.journal import CardJob, StationRuntime
from printsrv.web.services import visible_office_ids

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
    mode: str | None
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
    runtime = session.get(StationRuntime, station.name)
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
        mode=runtime.mode.value if runtime else None,
        on_request=bool((runtime.details or {}).get("on_request")) if runtime else None,
        issued=runtime.cards_issued if runtime else 0,
        spoiled=runtime.cards_spoiled if runtime else 0,
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
    """Cards issued and spoiled per day over the last ``days`` days (visible offices)."""
    since = datetime.now(UTC) - timedelta(days=days)
    day = func.date(CardJob.finished_at)
    rows = session.execute(
        select(day, CardJob.outcome, func.count())
        .join(Record, Record.id == CardJob.record_id)
        .where(
            Record.office_id.in_(visible_office_ids(session, office)),
            CardJob.finished_at >= since,
        )
        .group_by(day, CardJob.outcome)
        .order_by(day)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for d, outcome, n in rows:
        entry = out.setdefault(str(d), {"day": str(d), "issued": 0, "spoiled": 0})
        if outcome is not None and str(getattr(outcome, "value", outcome)) in entry:
            entry[str(getattr(outcome, "value", outcome))] += n
    return list(out.values())


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
    from printsrv.station.daemon import add_batch_request

    return add_batch_request(session, station.name, count, actor=actor)


def request_station_resume(session: Session, station: Station) -> bool:
    """Ask the running station to resume (an operator cleared the printer), in the request's
    transaction: the same flag ``run.py station resume`` sets
    (:func:`printsrv.station.daemon.request_resume`), which the daemon reads while paused.
    ``False`` when the station has never run."""
    row = session.get(StationRuntime, station.name)
    if row is None:
        return False
    row.details = {**(row.details or {}), "resume": True}
    return True
