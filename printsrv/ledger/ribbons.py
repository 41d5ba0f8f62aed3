"""Ribbons and retransfer film: receive, load, replace, and the panels spent on every card.

Capacity and consumption are counted in panels. Our count (sum of :class:`RibbonUsage`) is kept
beside the level the printer reports; neither overwrites the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv import audit, offices, outbox
from printsrv.ledger import blanks as ops
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    Consumable,
    ConsumableKind,
    ConsumableState,
    Film,
    Ribbon,
    RibbonUsage,
    Station,
)
from printsrv.ledger.tags import LedgerTag
from printsrv.models import Office, Record

_CLASSES: dict[ConsumableKind, type[Consumable]] = {
    ConsumableKind.RIBBON: Ribbon,
    ConsumableKind.FILM: Film,
}


def set_panels_for(kind: ConsumableKind, type_: str) -> int:
    """Panels in one set: one per letter of a ribbon type (YMCKO = 5, YMCKOK = 6, KO = 2);
    a retransfer film spends one panel per side."""
    if kind is ConsumableKind.FILM:
        return 1
    letters = [c for c in type_.upper() if c in "YMCKOIFUH"]
    if not letters:
        raise LedgerError(f"ribbon type {type_!r} is not a panel sequence like YMCKO")
    return len(letters)


def consumable_by_serial(session: Session, kind: ConsumableKind, serial: str) -> Consumable:
    item = session.scalar(
        select(Consumable).where(Consumable.kind == kind, Consumable.serial == serial)
    )
    if item is None:
        raise LedgerError(f"{kind.value} {serial} is not in the ledger")
    return item


def receive_consumable(
    session: Session,
    *,
    kind: ConsumableKind,
    office_code: str,
    serial: str,
    type_: str,
    capacity: int,
    actor: str,
    reference: str | None = None,
    set_panels: int | None = None,
    at: datetime | None = None,
    in_transit: bool = False,
) -> Consumable:
    """Receive a roll at an office. ``capacity`` is in prints (panel sets), as on the box.
    ``in_transit``: a node receives a roll its server handed over, in transit until it
    accepts the handover (:func:`accept_consumable`)."""
    kind = ConsumableKind(kind)
    if capacity < 1:
        raise LedgerError("capacity must be positive")
    if session.scalar(
        select(Consumable.id).where(Consumable.kind == kind, Consumable.serial == serial)
    ):
        raise LedgerError(f"{kind.value} {serial} is already in the ledger")
    office = ops.ensure_office(session, office_code, actor=actor)
    per_set = set_panels or set_panels_for(kind, type_)
    at = ops.stamp(at)
    item = _CLASSES[kind](
        serial=serial,
        type=type_.upper(),
        set_panels=per_set,
        capacity_panels=capacity * per_set,
        panels_used=0,
        state=ConsumableState.IN_TRANSIT if in_transit else ConsumableState.IN_STOCK,
        office_id=office.id,
        reference=reference,
        received_at=at,
        actor=actor,
    )
    session.add(item)
    session.flush()
    _journal(
        session,
        LedgerTag.RIBBON_RECEIVE,
        actor=actor,
        office_code=office.code,
        subject=f"{kind.value}:{serial}",
        details={
            "type": item.type,
            "capacity_panels": item.capacity_panels,
            "set_panels": per_set,
            "reference": reference,
        },
    )
    return item


def transfer_consumable(
    session: Session,
    *,
    kind: ConsumableKind,
    serial: str,
    to_office_code: str,
    reference: str,
    actor: str,
    in_transit: bool = False,
) -> Consumable:
    """Hand an in-stock roll to another office under a handover document (``reference``);
    ``in_transit``: to a kecamatan node, in transit until it accepts the handover."""
    kind = ConsumableKind(kind)
    if not reference.strip():
        raise LedgerError("a handover record (Berita Acara Serah Terima) number is required")
    item = consumable_by_serial(session, kind, serial)
    if item.state is not ConsumableState.IN_STOCK:
        raise LedgerError(f"{kind.value} {serial} is {item.state.value}; only stock moves")
    source = session.get_one(Office, item.office_id)
    target = ops.ensure_office(session, to_office_code, actor=actor)
    if target.id == source.id:
        raise LedgerError("a transfer needs two different offices")
    item.office_id = target.id
    item.reference = reference
    if in_transit:
        item.state = ConsumableState.IN_TRANSIT
    _journal(
        session,
        LedgerTag.RIBBON_TRANSFER,
        actor=actor,
        office_code=source.code,
        subject=f"{kind.value}:{serial}",
        details={"from": source.code, "to": target.code, "reference": reference,
                 "in_transit": in_transit},
    )
    return item


def accept_consumable(
    session: Session, *, kind: ConsumableKind, serial: str, actor: str
) -> Consumable:
    """A roll in transit to its office is accepted into its store room (no-op when it was)."""
    item = consumable_by_serial(session, ConsumableKind(kind), serial)
    if item.state is ConsumableState.IN_TRANSIT:
        item.state = ConsumableState.IN_STOCK
        _journal(
            session,
            LedgerTag.RIBBON_ACCEPT,
            actor=actor,
            office_code=session.get_one(Office, item.office_id).code,
            subject=f"{item.kind.value}:{serial}",
            details={"reference": item.reference},
        )
    return item


def loaded_consumable(
    session: Session, station: Station, kind: ConsumableKind
) -> Consumable | None:
    """The roll of ``kind`` loaded in ``station``, if any."""
    return session.scalar(
        select(Consumable).where(
            Consumable.kind == kind,
            Consumable.station_id == station.id,
            Consumable.state == ConsumableState.LOADED,
        )
    )


def load_consumable(
    session: Session,
    station: Station,
    *,
    kind: ConsumableKind,
    serial: str,
    actor: str,
    at: datetime | None = None,
) -> Consumable:
    """Load an in-stock roll of the station's office; a station holds one roll of each kind
    (use :func:`replace_consumable` when one is loaded)."""
    kind = ConsumableKind(kind)
    item = consumable_by_serial(session, kind, serial)
    if item.state is not ConsumableState.IN_STOCK:
        raise LedgerError(f"{kind.value} {serial} is {item.state.value}; cannot load it")
    if item.office_id != station.office_id:
        raise LedgerError(f"{kind.value} {serial} is not at the office of station {station.name}")
    current = loaded_consumable(session, station, kind)
    if current is not None:
        raise LedgerError(
            f"station {station.name} already has {kind.value} {current.serial}; replace it"
        )
    at = ops.stamp(at)
    item.state = ConsumableState.LOADED
    item.station_id = station.id
    item.loaded_at = at
    _journal(
        session,
        LedgerTag.RIBBON_LOAD,
        actor=actor,
        office_code=offices.office_code(session, station.office_id),
        subject=f"{kind.value}:{serial}",
        details={"station": station.name},
    )
    return item


def finish_consumable(
    session: Session,
    item: Consumable,
    *,
    actor: str,
    printer_level: int | None = None,
    at: datetime | None = None,
) -> None:
    """Take a loaded roll out as finished (spent or faulty), recording both counts."""
    if item.state is not ConsumableState.LOADED:
        raise LedgerError(f"{item.kind.value} {item.serial} is {item.state.value}, not loaded")
    at = ops.stamp(at)
    if printer_level is not None:
        item.printer_level, item.printer_level_at = printer_level, at
    station = item.station
    item.state = ConsumableState.FINISHED
    item.finished_at = at
    item.station_id = None
    _journal(
        session,
        LedgerTag.RIBBON_FINISH,
        actor=actor,
        office_code=offices.office_code(session, item.office_id),
        subject=f"{item.kind.value}:{item.serial}",
        details={
            "station": station.name if station else None,
            "panels_used": item.panels_used,
            "capacity_panels": item.capacity_panels,
            "printer_level": item.printer_level,
        },
    )


def replace_consumable(
    session: Session,
    station: Station,
    *,
    kind: ConsumableKind,
    serial: str,
    actor: str,
    printer_level: int | None = None,
    at: datetime | None = None,
) -> Consumable:
    """Finish the loaded roll of ``kind`` (if any; ``printer_level`` is its last reported level)
    and load ``serial`` in its place."""
    kind = ConsumableKind(kind)
    current = loaded_consumable(session, station, kind)
    if current is not None:
        if current.serial == serial:
            raise LedgerError(f"{kind.value} {serial} is the one loaded")
        finish_consumable(session, current, actor=actor, printer_level=printer_level, at=at)
        session.flush()
    return load_consumable(session, station, kind=kind, serial=serial, actor=actor, at=at)


def record_ribbon_usage(
    session: Session,
    station: Station,
    *,
    record_id: int | None,
    blank_serial: str,
    panels: int,
    film_panels: int = 0,
    printer_level: int | None,
    actor: str,
    at: datetime | None = None,
) -> RibbonUsage:
    """Record the panels one card spent on the station's loaded ribbon (and film).

    The card exists whatever our books say, so a missing roll does not raise: the usage is kept
    without a roll and the audit event says so, for the supervisor to reconcile.
    """
    if panels < 0 or film_panels < 0:
        raise LedgerError("panel counts cannot be negative", serial=blank_serial)
    at = ops.stamp(at)
    ribbon = loaded_consumable(session, station, ConsumableKind.RIBBON)
    film = loaded_consumable(session, station, ConsumableKind.FILM) if film_panels else None
    if ribbon is not None:
        ribbon.panels_used += panels
        if printer_level is not None:
            ribbon.printer_level, ribbon.printer_level_at = printer_level, at
    if film is not None:
        film.panels_used += film_panels
    usage = RibbonUsage(
        station_id=station.id,
        office_id=station.office_id,
        record_id=record_id,
        blank_serial=blank_serial,
        ribbon_id=ribbon.id if ribbon else None,
        panels=panels,
        film_id=film.id if film else None,
        film_panels=film_panels,
        printer_level=printer_level,
        actor=actor,
        at=at,
    )
    session.add(usage)
    details: dict[str, object] = {
        "station": station.name,
        "record_id": record_id,
        "ribbon": ribbon.serial if ribbon else None,
        "panels": panels,
        "printer_level": printer_level,
        "our_remaining": ribbon.panels_remaining if ribbon else None,
    }
    if film_panels:
        details["film"] = film.serial if film else None
        details["film_panels"] = film_panels
    if ribbon is None or (film_panels and film is None):
        details["problem"] = "no roll loaded in our books"
    record = session.get(Record, record_id) if record_id is not None else None
    _journal(
        session,
        LedgerTag.RIBBON_USAGE,
        actor=actor,
        office_code=offices.office_code(session, station.office_id),
        subject=blank_serial,
        details=details,
        # the card's request id travels with the event (a node's server has its own record ids)
        extra={"request_id": record.request_id if record is not None else None,
               "film_panels": film_panels},
    )
    return usage


def _journal(
    session: Session,
    tag: LedgerTag,
    *,
    actor: str,
    office_code: str,
    subject: str,
    details: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """A roll's movement: its audit event and its outbox event (``details`` and ``extra``), in
    the caller's transaction."""
    audit.record(session, tag, actor=actor, office_code=office_code, subject=subject,
                 details=details)
    outbox.publish(session, outbox.Topic.RIBBON_MOVEMENT, office_code=office_code,
                   subject=subject,
                   payload={"action": str(tag), "item": subject, **details, **(extra or {})})
