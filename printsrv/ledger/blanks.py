"""Blank movements: receive, transfer, load/unload, reserve/issue/release, spoil, destroy.

Every function takes the caller's session and does not commit. Every state or office change of
a blank is exactly one :class:`BlankMovement` row plus one audit event, written by
:func:`move`; illegal moves raise :class:`LedgerError` naming the serial.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import exists, literal, select, union_all
from sqlalchemy.orm import Session

from printsrv import audit, offices, outbox
from printsrv.errors import NotFound
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    Blank,
    BlankMovement,
    BlankState,
    DestructionRecord,
    HandoverKind,
    HandoverRecord,
    MovementKind,
    SpoilCause,
    Station,
    StationState,
)
from printsrv.ledger.serials import parse_serial, serial_range
from printsrv.ledger.tags import MOVEMENT_TAGS, LedgerTag
from printsrv.models import Office, Record
from printsrv.paperwork import name_and_nip, same_person_key
from printsrv.products import DEFAULT_STOCK_TYPE, STOCK_TYPES

S = BlankState
#: The legal ``(from_state, to_state)`` pairs of each movement kind. ``ledger check`` replays the
#: journal against this table too.
#: On-hand states a blank can be spoiled or adjusted from (not in transit: the node holds it).
HELD = frozenset({S.IN_STOCK, S.IN_HOPPER, S.RESERVED})
TRANSITIONS: dict[MovementKind, frozenset[tuple[BlankState | None, BlankState]]] = {
    # a node receives the blanks of a BAST in transit, as the server sent them
    MovementKind.RECEIVE: frozenset({(None, S.IN_STOCK), (None, S.IN_TRANSIT)}),
    MovementKind.TRANSFER: frozenset({(S.IN_STOCK, S.IN_STOCK), (S.IN_STOCK, S.IN_TRANSIT)}),
    MovementKind.ACCEPT: frozenset({(S.IN_TRANSIT, S.IN_STOCK)}),
    MovementKind.LOAD: frozenset({(S.IN_STOCK, S.IN_HOPPER)}),
    MovementKind.UNLOAD: frozenset({(S.IN_HOPPER, S.IN_STOCK)}),
    MovementKind.RESERVE: frozenset({(S.IN_HOPPER, S.RESERVED)}),
    MovementKind.RELEASE: frozenset({(S.RESERVED, S.IN_HOPPER)}),
    MovementKind.ISSUE: frozenset({(S.RESERVED, S.ISSUED)}),
    MovementKind.SPOIL: frozenset({(s, S.SPOILED) for s in HELD}),
    MovementKind.DESTROY: frozenset({(S.SPOILED, S.DESTROYED)}),
    MovementKind.ADJUST: frozenset(
        {(a, b) for a in HELD for b in (S.IN_STOCK, S.IN_HOPPER)}
        | {(a, S.SPOILED) for a in HELD}
    ),
}
#: States in which a blank sits at a station.
AT_STATION = frozenset({S.IN_HOPPER, S.RESERVED})


def now() -> datetime:
    """The ledger's clock (UTC); tests may patch it."""
    return datetime.now(UTC)


def stamp(at: datetime | None) -> datetime:
    """``at`` (default: now) in UTC. SQLite keeps no offset, so every stored time is UTC;
    a naive ``at`` is taken as UTC."""
    if at is None:
        return now()
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# ---------------------------------------------------------------------------- offices, stations


def office_by_code(session: Session, code: str) -> Office:
    """The office with ``code`` (:func:`printsrv.offices.find_office`); :class:`LedgerError`
    when there is none."""
    office = offices.find_office(session, code)
    if office is None:
        raise LedgerError(f"unknown office {code}")
    return office


def ensure_office(session: Session, code: str, *, actor: str) -> Office:
    """The office with ``code`` (``PP.KK`` regency or ``PP.KK.CC`` kecamatan), created from the
    region table when missing; :class:`LedgerError` for a code the table does not know."""
    try:
        return offices.ensure_office(session, code, actor=actor)
    except NotFound as exc:
        raise LedgerError(str(exc)) from exc


def get_or_create_station(
    session: Session,
    name: str,
    *,
    office_code: str,
    cups_queue: str,
    reader: str,
    profile: str,
    actor: str = "system",
) -> Station:
    """The station ``name``, created at ``office_code`` when new; changed queue, reader or
    profile are updated (and audited). Moving a station to another office needs its hopper
    empty (:class:`LedgerError`)."""
    office = ensure_office(session, office_code, actor=actor)
    station = session.scalar(select(Station).where(Station.name == name))
    if station is None:
        station = Station(
            name=name,
            office_id=office.id,
            cups_queue=cups_queue,
            reader=reader,
            profile=profile,
            state=StationState.OFFLINE,
            printer_status={},
        )
        session.add(station)
        session.flush()
        audit.record(
            session,
            LedgerTag.STATION_CREATE,
            actor=actor,
            office_code=office.code,
            subject=name,
            details={"cups_queue": cups_queue, "reader": reader, "profile": profile},
        )
        return station
    changes: dict[str, list[object]] = {}
    if station.office_id != office.id:
        if blanks_at_station(session, station):
            raise LedgerError(f"station {name} still holds blanks; unload it before moving it")
        changes["office"] = [station.office.code, office.code]
        station.office_id = office.id
    for field, value in (("cups_queue", cups_queue), ("reader", reader), ("profile", profile)):
        if getattr(station, field) != value:
            changes[field] = [getattr(station, field), value]
            setattr(station, field, value)
    if changes:
        session.flush()
        audit.record(
            session,
            LedgerTag.STATION_UPDATE,
            actor=actor,
            office_code=office.code,
            subject=name,
            details={"changes": changes},
        )
    return station


def station_by_name(session: Session, name: str) -> Station:
    """The station ``name``; :class:`LedgerError` when unknown."""
    station = session.scalar(select(Station).where(Station.name == name))
    if station is None:
        raise LedgerError(f"unknown station {name}")
    return station


# ---------------------------------------------------------------------------- lookups


def blank_by_serial(session: Session, serial: str, *, lock: bool = False) -> Blank:
    """The blank ``serial``; :class:`LedgerError` when unknown."""
    query = select(Blank).where(Blank.serial == str(parse_serial(serial)))
    if lock:
        query = query.with_for_update()
    blank = session.scalar(query)
    if blank is None:
        raise LedgerError(f"blank {serial} is not in the ledger", serial=serial)
    return blank


def blanks_by_serials(session: Session, serials: Iterable[str]) -> list[Blank]:
    """The blanks named, in serial order; :class:`LedgerError` naming the first unknown one."""
    wanted = [str(parse_serial(s)) for s in serials]
    found: dict[str, Blank] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for blank in session.scalars(
            select(Blank).where(Blank.serial.in_(chunk)).with_for_update()
        ):
            found[blank.serial] = blank
    for serial in wanted:
        if serial not in found:
            raise LedgerError(f"blank {serial} is not in the ledger", serial=serial)
    return sorted(found.values(), key=lambda b: (b.prefix, b.number))


def blanks_at_station(session: Session, station: Station) -> list[Blank]:
    """Blanks in the station's hopper or reserved there, in serial order."""
    return list(
        session.scalars(
            select(Blank)
            .where(Blank.station_id == station.id, Blank.state.in_(AT_STATION))
            .order_by(Blank.prefix, Blank.number)
        )
    )


def next_blank_for_station(
    session: Session, station: Station, stock_type: str | None = None
) -> Blank | None:
    """The lowest-serial blank in the station's hopper (of ``stock_type``, if given; locked on
    PostgreSQL), or ``None``."""
    query = select(Blank).where(Blank.station_id == station.id, Blank.state == BlankState.IN_HOPPER)
    if stock_type is not None:
        query = query.where(Blank.stock_type == stock_type)
    return session.scalar(query.order_by(Blank.prefix, Blank.number).limit(1).with_for_update())


def hopper_stock_types(session: Session, station: Station) -> set[str]:
    """The stock types of the blanks in the station's hopper (one statement, one index probe
    per stock type: the station asks this for every card)."""
    probes = [
        select(literal(stock_type)).where(
            exists().where(
                Blank.station_id == station.id,
                Blank.state == BlankState.IN_HOPPER,
                Blank.stock_type == stock_type,
            )
        )
        for stock_type in STOCK_TYPES
    ]
    return set(session.scalars(union_all(*probes)))


# ---------------------------------------------------------------------------- the one mover


def move(
    session: Session,
    blank: Blank,
    kind: MovementKind,
    to_state: BlankState,
    *,
    actor: str,
    station_id: int | None = None,
    to_office_id: int | None = None,
    record_id: int | None = None,
    cause: SpoilCause | None = None,
    handover_id: int | None = None,
    destruction_id: int | None = None,
    adjustment_id: int | None = None,
    reference: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> BlankMovement:
    """Apply one movement to ``blank``: check it, journal it, audit it, update the blank.

    ``station_id`` is the station the blank ends up at (for load/reserve/release) or the one it
    was at (for unload/issue/spoil; then it is left off the blank).
    """
    from_state = None if kind is MovementKind.RECEIVE else blank.state
    if (from_state, to_state) not in TRANSITIONS[kind]:
        raise LedgerError(
            f"blank {blank.serial}: cannot {kind.value} from {from_state or 'nothing'} "
            f"to {to_state.value}",
            serial=blank.serial,
        )
    at = stamp(at)
    office_id = blank.office_id
    if to_state in AT_STATION and station_id is None:
        raise LedgerError(
            f"blank {blank.serial}: {to_state.value} needs a station", serial=blank.serial
        )
    movement = BlankMovement(
        blank_id=blank.id,
        serial=blank.serial,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        office_id=office_id,
        to_office_id=to_office_id,
        station_id=station_id if station_id is not None else blank.station_id,
        record_id=record_id,
        cause=cause,
        handover_id=handover_id,
        destruction_id=destruction_id,
        adjustment_id=adjustment_id,
        reference=reference,
        note=note,
        actor=actor,
        at=at,
    )
    session.add(movement)
    blank.state = to_state
    blank.station_id = station_id if to_state in AT_STATION else None
    if to_office_id is not None:
        blank.office_id = to_office_id
    if record_id is not None:
        blank.record_id = record_id
    if cause is not None:
        blank.spoil_cause = cause
    if destruction_id is not None:
        blank.destruction_id = destruction_id
    blank.updated_at = at
    details: dict[str, object] = {
        "from": from_state.value if from_state else None,
        "to": to_state.value,
    }
    for key, value in (
        ("station_id", movement.station_id),
        ("to_office", offices.office_code(session, to_office_id) if to_office_id else None),
        ("record_id", record_id),
        ("cause", cause.value if cause else None),
        ("reference", reference),
        ("note", note),
    ):
        if value is not None:
            details[key] = value
    code = offices.office_code(session, office_id)
    audit.record(
        session, MOVEMENT_TAGS[kind.value], actor=actor, office_code=code, subject=blank.serial,
        details=details,
    )  # fmt: skip
    _publish_movement(session, movement, blank, code, at)
    return movement


def _publish_movement(
    session: Session, movement: BlankMovement, blank: Blank, office_code: str, at: datetime
) -> None:
    """The movement as an outbox event, in names a peer understands (codes, not row ids)."""
    station = session.get(Station, movement.station_id) if movement.station_id else None
    record = session.get(Record, movement.record_id) if movement.record_id else None
    outbox.publish(
        session,
        outbox.Topic.BLANK_MOVEMENT,
        office_code=office_code,
        subject=blank.serial,
        at=at,
        payload={
            "serial": blank.serial,
            "stock_type": blank.stock_type,
            "kind": movement.kind.value,
            "from": movement.from_state.value if movement.from_state else None,
            "to": movement.to_state.value,
            "office": office_code,
            "to_office": (offices.office_code(session, movement.to_office_id)
                          if movement.to_office_id else None),
            "station": station.name if station else None,
            "request_id": record.request_id if record else None,
            "cause": movement.cause.value if movement.cause else None,
            "reference": movement.reference,
            "note": movement.note,
            "actor": movement.actor,
        },
    )  # fmt: skip


# ---------------------------------------------------------------------------- stock in and out


def _check_handover_number(session: Session, number: str) -> None:
    if not number.strip():
        raise LedgerError("a handover record (Berita Acara Serah Terima) number is required")
    if session.scalar(select(HandoverRecord.id).where(HandoverRecord.number == number)):
        raise LedgerError(f"handover record {number} is already in the ledger")


def _record_handover(
    session: Session, *, audit_office: str, audit_details: dict[str, object], **fields: Any
) -> HandoverRecord:
    """Add a handover record (Berita Acara Serah Terima) and its audit event."""
    handover = HandoverRecord(**fields)
    session.add(handover)
    session.flush()
    audit.record(
        session,
        LedgerTag.HANDOVER_CREATE,
        actor=fields["actor"],
        office_code=audit_office,
        subject=handover.number,
        details={
            "kind": handover.kind.value,
            **audit_details,
            "first": handover.first_serial,
            "last": handover.last_serial,
            "count": handover.count,
        },
    )
    return handover


def receive_blanks(
    session: Session,
    *,
    office_code: str,
    first: str,
    last: str,
    handover_number: str,
    actor: str,
    carton: str | None = None,
    from_party: str = "",
    document_date: date | None = None,
    note: str | None = None,
    at: datetime | None = None,
    stock_type: str = DEFAULT_STOCK_TYPE,
    giver: str = "",
    receiver: str = "",
) -> HandoverRecord:
    """Receive the carton ``first..last`` of ``stock_type`` blanks at ``office_code`` (created
    from the region table if new) under the handover record ``handover_number``; ``giver``
    and ``receiver`` are the people who sign it (``NAME / NIP 1234``). A serial already in
    the ledger or a reused handover number raises :class:`LedgerError`."""
    _stock_type(stock_type)
    serials = serial_range(first, last)
    _check_handover_number(session, handover_number)
    for i in range(0, len(serials), 500):
        existing = session.scalar(
            select(Blank.serial).where(Blank.serial.in_(serials[i : i + 500])).limit(1)
        )
        if existing:
            raise LedgerError(f"blank {existing} is already in the ledger", serial=existing)
    office = ensure_office(session, office_code, actor=actor)
    at = stamp(at)
    handover = _record_handover(
        session,
        audit_office=office.code,
        audit_details={"from": from_party, "carton": carton, "stock_type": stock_type,
                       "giver": giver, "receiver": receiver},
        number=handover_number,
        kind=HandoverKind.RECEIPT,
        from_party=from_party,
        giver=giver[:120],
        receiver=receiver[:120],
        to_office_id=office.id,
        carton=carton,
        first_serial=serials[0],
        last_serial=serials[-1],
        count=len(serials),
        document_date=document_date,
        note=note,
        actor=actor,
        created_at=at,
    )
    blanks = []
    for serial in serials:
        parsed = parse_serial(serial)
        blank = Blank(
            serial=serial,
            prefix=parsed.prefix,
            number=parsed.number,
            office_id=office.id,
            state=BlankState.IN_STOCK,
            handover_id=handover.id,
            carton=carton,
            stock_type=stock_type,
            updated_at=at,
        )
        blanks.append(blank)
    session.add_all(blanks)
    session.flush()
    for blank in blanks:
        move(
            session,
            blank,
            MovementKind.RECEIVE,
            BlankState.IN_STOCK,
            actor=actor,
            handover_id=handover.id,
            reference=handover_number,
            at=at,
        )
    return handover


def transfer_blanks(
    session: Session,
    *,
    from_office_code: str,
    to_office_code: str,
    serials: Sequence[str],
    handover_number: str,
    actor: str,
    document_date: date | None = None,
    note: str | None = None,
    at: datetime | None = None,
    giver: str = "",
    receiver: str = "",
    in_transit: bool = False,
) -> HandoverRecord:
    """Hand the in-stock blanks ``serials`` of one office to another under a handover record
    signed by ``giver`` and ``receiver`` (``NAME / NIP 1234``, empty when not given).
    ``in_transit``: the other office is a kecamatan node's; the blanks stay in transit there
    until the node accepts the handover (:func:`accept_blanks`)."""
    if not serials:
        raise LedgerError("no blanks to transfer")
    _check_handover_number(session, handover_number)
    source = office_by_code(session, from_office_code)
    target = ensure_office(session, to_office_code, actor=actor)
    if source.id == target.id:
        raise LedgerError("a transfer needs two different offices")
    blanks = blanks_by_serials(session, serials)
    for blank in blanks:
        _require(blank, office=source, states={BlankState.IN_STOCK}, action="transfer")
    at = stamp(at)
    handover = _record_handover(
        session,
        audit_office=source.code,
        audit_details={"from": source.code, "to": target.code, "giver": giver,
                       "receiver": receiver},
        number=handover_number,
        kind=HandoverKind.TRANSFER,
        giver=giver[:120],
        receiver=receiver[:120],
        from_office_id=source.id,
        to_office_id=target.id,
        first_serial=blanks[0].serial,
        last_serial=blanks[-1].serial,
        count=len(blanks),
        document_date=document_date,
        note=note,
        actor=actor,
        created_at=at,
    )
    for blank in blanks:
        move(
            session,
            blank,
            MovementKind.TRANSFER,
            BlankState.IN_TRANSIT if in_transit else BlankState.IN_STOCK,
            actor=actor,
            to_office_id=target.id,
            handover_id=handover.id,
            reference=handover_number,
            at=at,
        )
    return handover


def receive_listed(
    session: Session,
    *,
    office_code: str,
    handover_number: str,
    blanks: Sequence[tuple[str, str, str | None]],
    actor: str,
    from_party: str = "",
    giver: str = "",
    receiver: str = "",
    note: str | None = None,
    in_transit: bool = False,
    at: datetime | None = None,
) -> HandoverRecord:
    """Receive the listed blanks (``serial, stock_type, carton``) at ``office_code`` under the
    receipt ``handover_number``, created when new (else the blanks are added to it). A node
    receives a BAST from its server this way, ``in_transit`` until it accepts it."""
    if not blanks:
        raise LedgerError("no blanks to receive")
    for _serial, stock_type, _carton in blanks:
        _stock_type(stock_type)
    serials = [str(parse_serial(serial)) for serial, _s, _c in blanks]
    existing = session.scalar(select(Blank.serial).where(Blank.serial.in_(serials)).limit(1))
    if existing:
        raise LedgerError(f"blank {existing} is already in the ledger", serial=existing)
    office = ensure_office(session, office_code, actor=actor)
    at = stamp(at)
    handover = session.scalar(
        select(HandoverRecord).where(HandoverRecord.number == handover_number))
    if handover is None:
        handover = _record_handover(
            session, audit_office=office.code,
            audit_details={"from": from_party, "giver": giver, "receiver": receiver},
            number=handover_number, kind=HandoverKind.RECEIPT, from_party=from_party[:200],
            giver=giver[:120], receiver=receiver[:120], to_office_id=office.id,
            first_serial=serials[0], last_serial=serials[-1], count=len(serials), note=note,
            actor=actor, created_at=at)
    elif handover.kind is not HandoverKind.RECEIPT or handover.to_office_id != office.id:
        raise LedgerError(f"handover record {handover_number} is not a receipt at {office.code}")
    else:
        handover.count += len(serials)
        handover.last_serial = max(handover.last_serial, serials[-1])
    made = []
    for serial, (_s, stock_type, carton) in zip(serials, blanks, strict=True):
        parsed = parse_serial(serial)
        made.append(Blank(serial=serial, prefix=parsed.prefix, number=parsed.number,
                          office_id=office.id, state=BlankState.IN_STOCK,
                          handover_id=handover.id, carton=carton, stock_type=stock_type,
                          updated_at=at))
    session.add_all(made)
    session.flush()
    for blank in made:
        move(session, blank, MovementKind.RECEIVE,
             BlankState.IN_TRANSIT if in_transit else BlankState.IN_STOCK, actor=actor,
             handover_id=handover.id, reference=handover_number, at=at)
    return handover


def accept_blanks(
    session: Session,
    serials: Sequence[str],
    *,
    actor: str,
    reference: str | None = None,
    at: datetime | None = None,
) -> list[Blank]:
    """The blanks ``serials``, in transit to their office, are accepted into its store room
    (a node acknowledged the handover ``reference``); the ones already accepted are left."""
    moved = []
    for blank in blanks_by_serials(session, serials):
        if blank.state is BlankState.IN_STOCK:
            continue
        move(session, blank, MovementKind.ACCEPT, BlankState.IN_STOCK, actor=actor,
             reference=reference, at=at)
        moved.append(blank)
    return moved


def _stock_type(stock_type: str) -> None:
    if stock_type not in STOCK_TYPES:
        raise LedgerError(
            f"unknown blank stock type {stock_type!r}: expected one of {', '.join(STOCK_TYPES)}"
        )


def _require(blank: Blank, *, office: Office, states: set[BlankState], action: str) -> None:
    if blank.office_id != office.id:
        raise LedgerError(
            f"blank {blank.serial} is not at office {office.code}; cannot {action}",
            serial=blank.serial,
        )
    if blank.state not in states:
        raise LedgerError(
            f"blank {blank.serial} is {blank.state.value}; cannot {action}", serial=blank.serial
        )


# ---------------------------------------------------------------------------- hopper


def load_blanks(
    session: Session,
    station: Station,
    *,
    actor: str,
    count: int | None = None,
    serials: Sequence[str] | None = None,
    at: datetime | None = None,
    stock_type: str | None = None,
) -> list[Blank]:
    """Load blanks of the station's office into its hopper, in serial order: the ``count``
    lowest in-stock serials of ``stock_type`` (default: KTP-el), or exactly ``serials`` (which
    must all be of ``stock_type`` when it is given). On a kabupaten server the blanks of a
    kecamatan node's office are the node's: no station here loads them."""
    from printsrv.sync.models import NodeState, SyncNode

    office = session.get_one(Office, station.office_id)
    node = session.scalar(select(SyncNode.node_id).where(
        SyncNode.office_code == office.code, SyncNode.state != NodeState.REVOKED).limit(1))
    if node is not None:
        raise LedgerError(f"the blanks of office {office.code} belong to kecamatan node {node};"
                          " only its own stations load them")
    if stock_type is not None:
        _stock_type(stock_type)
    if serials:
        blanks = blanks_by_serials(session, serials)
        for blank in blanks:
            _require(blank, office=office, states={BlankState.IN_STOCK}, action="load")
            if stock_type is not None and blank.stock_type != stock_type:
                raise LedgerError(
                    f"blank {blank.serial} is {blank.stock_type} stock, not {stock_type};"
                    " cannot load",
                    serial=blank.serial,
                )
    else:
        stock_type = stock_type or DEFAULT_STOCK_TYPE
        if not count or count < 1:
            raise LedgerError("give a positive count or the serials to load")
        blanks = list(
            session.scalars(
                select(Blank)
                .where(
                    Blank.office_id == office.id,
                    Blank.state == BlankState.IN_STOCK,
                    Blank.stock_type == stock_type,
                )
                .order_by(Blank.prefix, Blank.number)
                .limit(count)
                .with_for_update()
            )
        )
        if len(blanks) < count:
            raise LedgerError(
                f"office {office.code} has {len(blanks)} {stock_type} blanks in stock,"
                f" {count} requested"
            )
    for blank in blanks:
        move(
            session,
            blank,
            MovementKind.LOAD,
            BlankState.IN_HOPPER,
            actor=actor,
            station_id=station.id,
            reference=station.name,
            at=at,
        )
    return blanks


def unload_blanks(
    session: Session,
    station: Station,
    *,
    actor: str,
    serials: Sequence[str] | None = None,
    at: datetime | None = None,
) -> list[Blank]:
    """Take blanks out of the station's hopper back to stock: ``serials``, or all of them.
    Reserved blanks are not unloaded (release or spoil them first)."""
    if serials:
        blanks = blanks_by_serials(session, serials)
        for blank in blanks:
            if blank.station_id != station.id or blank.state is not BlankState.IN_HOPPER:
                raise LedgerError(
                    f"blank {blank.serial} is not in the hopper of {station.name}",
                    serial=blank.serial,
                )
    else:
        blanks = [b for b in blanks_at_station(session, station) if b.state is S.IN_HOPPER]
    for blank in blanks:
        move(
            session,
            blank,
            MovementKind.UNLOAD,
            BlankState.IN_STOCK,
            actor=actor,
            station_id=station.id,
            reference=station.name,
            at=at,
        )
    return blanks


# ---------------------------------------------------------------------------- the station daemon


def reserve_blank(
    session: Session, blank: Blank, *, record_id: int, actor: str, at: datetime | None = None
) -> None:
    """in_hopper → reserved for ``record_id``: the intent, recorded before any device action."""
    if blank.state is not BlankState.IN_HOPPER:
        raise LedgerError(
            f"blank {blank.serial} is {blank.state.value}; only a hopper blank can be reserved",
            serial=blank.serial,
        )
    move(
        session,
        blank,
        MovementKind.RESERVE,
        BlankState.RESERVED,
        actor=actor,
        station_id=blank.station_id,
        record_id=record_id,
        at=at,
    )


def last_issued_blank(session: Session, record_id: int) -> Blank | None:
    """The blank of the latest good card made for ``record_id`` (its latest ``issue``
    movement), or ``None``. After a reprint this is the card the new one makes invalid."""
    return session.scalar(
        select(Blank)
        .join(BlankMovement, BlankMovement.blank_id == Blank.id)
        .where(BlankMovement.kind == MovementKind.ISSUE, BlankMovement.record_id == record_id)
        .order_by(BlankMovement.id.desc())
        .limit(1)
    )


def issue_blank(
    session: Session,
    blank: Blank,
    *,
    record_id: int,
    chip_uid: str | None,
    actor: str,
    at: datetime | None = None,
) -> None:
    """reserved → issued: a good card for ``record_id`` came out; ``chip_uid`` is recorded."""
    if blank.state is BlankState.RESERVED and blank.record_id != record_id:
        raise LedgerError(
            f"blank {blank.serial} is reserved for record {blank.record_id}, not {record_id}",
            serial=blank.serial,
        )
    if chip_uid is not None:
        blank.chip_uid = chip_uid
    move(
        session,
        blank,
        MovementKind.ISSUE,
        BlankState.ISSUED,
        actor=actor,
        record_id=record_id,
        note=f"chip {chip_uid}" if chip_uid else None,
        at=at,
    )


def spoil_blank(
    session: Session,
    blank: Blank,
    *,
    cause: SpoilCause,
    actor: str,
    record_id: int | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> None:
    """reserved / in_hopper / in_stock → spoiled with ``cause`` (corner cut, to be destroyed)."""
    move(
        session,
        blank,
        MovementKind.SPOIL,
        BlankState.SPOILED,
        actor=actor,
        record_id=record_id,
        cause=SpoilCause(cause),
        note=note,
        at=at,
    )


def release_blank(
    session: Session, blank: Blank, *, actor: str, reason: str, at: datetime | None = None
) -> None:
    """reserved → in_hopper, when nothing physically happened to the blank."""
    move(
        session,
        blank,
        MovementKind.RELEASE,
        BlankState.IN_HOPPER,
        actor=actor,
        station_id=blank.station_id,
        note=reason,
        at=at,
    )
    blank.record_id = None


# ---------------------------------------------------------------------------- destruction


def destroy_blanks(
    session: Session,
    *,
    office_code: str,
    number: str,
    officers: tuple[str, str],
    witness: str,
    actor: str,
    witness_role: str = "",
    place: str = "",
    serials: Sequence[str] | None = None,
    document_date: date | None = None,
    at: datetime | None = None,
) -> DestructionRecord:
    """Destroy spoiled blanks of an office (``serials``, or every spoiled one that is physically
    there — written-off *missing* blanks are not) under a *Berita Acara Pemusnahan* signed by two
    different officers and a witness who is neither."""
    people = [p.strip() for p in (*officers, witness)]
    keys = [same_person_key(*name_and_nip(p)) for p in people]
    if not all(people) or len({name for name, _ in keys}) != 3 or (
        all(nip for _, nip in keys) and len({nip for _, nip in keys}) != 3
    ):
        raise LedgerError("a destruction needs two different officers and a separate witness")
    if not number.strip():
        raise LedgerError("a destruction record (Berita Acara Pemusnahan) number is required")
    if session.scalar(select(DestructionRecord.id).where(DestructionRecord.number == number)):
        raise LedgerError(f"destruction record {number} is already in the ledger")
    office = office_by_code(session, office_code)
    if serials:
        blanks = blanks_by_serials(session, serials)
        for blank in blanks:
            _require(blank, office=office, states={BlankState.SPOILED}, action="destroy")
            if blank.spoil_cause is SpoilCause.MISSING:
                raise LedgerError(
                    f"blank {blank.serial} was written off as missing; it cannot be destroyed",
                    serial=blank.serial,
                )
    else:
        blanks = list(
            session.scalars(
                select(Blank)
                .where(
                    Blank.office_id == office.id,
                    Blank.state == BlankState.SPOILED,
                    Blank.spoil_cause != SpoilCause.MISSING,
                )
                .order_by(Blank.prefix, Blank.number)
                .with_for_update()
            )
        )
    if not blanks:
        raise LedgerError(f"office {office.code} has no spoiled blanks to destroy")
    at = stamp(at)
    record = DestructionRecord(
        number=number,
        office_id=office.id,
        officer_1=people[0],
        officer_2=people[1],
        witness=people[2],
        witness_role=witness_role,
        place=place,
        count=len(blanks),
        document_date=document_date,
        actor=actor,
        created_at=at,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        LedgerTag.DESTRUCTION_CREATE,
        actor=actor,
        office_code=office.code,
        subject=number,
        details={
            "officers": people[:2],
            "witness": people[2],
            "witness_role": witness_role,
            "count": len(blanks),
            "serials": [b.serial for b in blanks] if len(blanks) <= 200 else None,
        },
    )
    for blank in blanks:
        move(
            session,
            blank,
            MovementKind.DESTROY,
            BlankState.DESTROYED,
            actor=actor,
            destruction_id=record.id,
            reference=number,
            at=at,
        )
    return record
