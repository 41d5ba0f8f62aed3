"""The station's side of the blank and ribbon ledger (:mod:`printsrv.ledger`).

Thin adapter: the daemon speaks in serials and cause names; the ledger owns the rules.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.orm import Session

from printers.api import PrintOutcome
from printsrv.models import Record
from printsrv.station.devices import StationConfig


@functools.lru_cache(maxsize=16)
def _profile(name: str) -> Any:
    """A printer profile, loaded once per process (reading it costs ~1 ms; it is per card)."""
    from printers.profiles import get_profile

    return get_profile(name)


_STATIONS = "stock.stations"


def station_row(session: Session, config: StationConfig) -> Any:
    """The station's one row (:class:`printsrv.ledger.models.Station`): its ledger identity
    and what the daemon is doing, looked up once per unit of work (the session's identity map
    holds unchanged rows only weakly, and a lookup by name is a query every time)."""
    from printsrv.ledger.blanks import station_by_name

    held: dict[str, Any] = session.info.setdefault(_STATIONS, {})
    if config.name not in held:
        held[config.name] = station_by_name(session, config.name)
    return held[config.name]


def ensure_station(session: Session, config: StationConfig) -> Any:
    """The ledger's station row for ``config`` (created or updated)."""
    from printsrv.ledger.blanks import get_or_create_station

    return get_or_create_station(
        session,
        config.name,
        office_code=config.office,
        cups_queue=config.cups_queue or "",
        reader=config.reader or "",
        profile=config.profile,
        actor=config.actor,
    )


def next_blank(session: Session, config: StationConfig, stock_type: str | None = None) -> Any:
    """The next blank (of ``stock_type``, if given) in the station's hopper (locked on
    PostgreSQL), or ``None``."""
    from printsrv.ledger.blanks import next_blank_for_station

    return next_blank_for_station(session, station_row(session, config), stock_type)


def loaded_stock_types(session: Session, config: StationConfig) -> set[str]:
    """The blank stock types in the station's hopper."""
    from printsrv.ledger.blanks import hopper_stock_types

    return hopper_stock_types(session, station_row(session, config))


def missing_stock(session: Session, offices: list[int], loaded: set[str]) -> list[str]:
    """The stock types that queued records of ``offices`` need and the hopper lacks (they stay
    queued; the station says so)."""
    from sqlalchemy import select

    from printsrv.models import RecordState
    from printsrv.products import CARD_TYPES, PRODUCTS, card_types_for_stock

    served = card_types_for_stock(loaded)
    unserved = [t for t in CARD_TYPES if t not in served]
    if not unserved:
        return []
    waiting = session.scalars(
        select(Record.card_type)
        .where(
            Record.office_id.in_(offices),
            Record.state == RecordState.QUEUED,
            Record.card_type.in_(unserved),
        )
        .distinct()
    )
    return sorted({PRODUCTS[t].blank_stock for t in waiting})


def reserve(session: Session, config: StationConfig, blank: Any, record_id: int) -> None:
    """Reserve ``blank`` (from :func:`next_blank`, same transaction) for the record."""
    from printsrv.ledger.blanks import reserve_blank

    reserve_blank(session, blank, record_id=record_id, actor=config.actor)


def blank_state(session: Session, serial: str) -> str:
    from printsrv.ledger.blanks import blank_by_serial

    return blank_by_serial(session, serial).state.value


def issue(
    session: Session, config: StationConfig, serial: str, record: Record, *,
    chip_uid: str | None, actor: str,
) -> None:
    from printsrv.ledger.blanks import blank_by_serial, issue_blank

    issue_blank(session, blank_by_serial(session, serial, lock=True), record_id=record.id,
                chip_uid=chip_uid or None, actor=actor)


def spoil(
    session: Session, config: StationConfig, serial: str, record: Record, cause: str, *,
    note: str, actor: str,
) -> None:
    from printsrv.ledger.blanks import blank_by_serial, spoil_blank
    from printsrv.ledger.models import SpoilCause

    spoil_blank(session, blank_by_serial(session, serial, lock=True), cause=SpoilCause(cause),
                actor=actor, record_id=record.id, note=note[:500])


def release(session: Session, config: StationConfig, serial: str, *, actor: str) -> None:
    from printsrv.ledger.blanks import blank_by_serial, release_blank

    release_blank(session, blank_by_serial(session, serial, lock=True), actor=actor,
                  reason="nothing happened to the blank")


def ribbon_used(
    session: Session,
    config: StationConfig,
    outcome: PrintOutcome,
    *,
    record_id: int | None,
    blank_serial: str,
    actor: str,
) -> None:
    """Count the ribbon (and film) panels one fed card spent, with the printer's level."""
    from printsrv.ledger.ribbons import record_ribbon_usage

    profile = _profile(config.profile)
    ribbon, duplex = profile.ribbon, profile.duplex
    level = next((m.level for m in outcome.markers_after if m.known), None)
    record_ribbon_usage(
        session,
        station_row(session, config),
        record_id=record_id,
        blank_serial=blank_serial,
        panels=ribbon.panels_per_card(duplex),
        film_panels=ribbon.film_per_card(duplex),
        printer_level=level,
        actor=actor,
    )
