"""Write-side services behind the supervisor and operator stock forms.

Thin wrappers over :mod:`printsrv.ledger`: each checks the user's permission and office scope
(objects of offices the user does not see are :class:`~printsrv.errors.NotFound`, the same
answer as for objects that do not exist), then calls the ledger function with the user's name
as the actor. The ledger writes the movements and its own audit events; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from printsrv.errors import NotFound
from printsrv.ledger import adjustments as adj
from printsrv.ledger import blanks as ops
from printsrv.ledger import ribbons
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    Adjustment,
    AdjustmentKind,
    AdjustmentStatus,
    Blank,
    BlankMovement,
    BlankState,
    Consumable,
    ConsumableKind,
    DestructionRecord,
    HandoverRecord,
    MovementKind,
    SpoilCause,
    Station,
)
from printsrv.ledger.serials import serial_range
from printsrv.models import Office, User
from printsrv.offices import visible_office as _visible_office
from printsrv.offices import visible_office_ids, visible_offices
from printsrv.paperwork import NIP_SEPARATOR, name_and_nip, same_person_key
from printsrv.products import DEFAULT_STOCK_TYPE
from printsrv.web.services import Forbidden, require

#: The most serials one form may name (a carton holds far fewer; larger moves use the CLI).
MAX_FORM_SERIALS = 5000
#: Causes an operator may give for a spoiled card ("missing" is only for approved write-offs,
#: "unknown_crash" only for the station's recovery).
#: Causes a person may give by hand: not those only the station or an adjustment records
#: (an outcome lost in a crash, a printer that vanished mid-card, a blank missing at a count).
MANUAL_CAUSES = tuple(
    c
    for c in SpoilCause
    if c not in (SpoilCause.MISSING, SpoilCause.UNKNOWN_CRASH, SpoilCause.PRINTER_GONE)
)


def parse_serials(text: str) -> list[str]:
    """Serials from a form field: one per line (or comma separated), ``FIRST..LAST`` for a
    range. :class:`LedgerError` for a bad serial or more than :data:`MAX_FORM_SERIALS`."""
    out: list[str] = []
    for part in text.replace(",", "\n").splitlines():
        part = part.strip().upper()
        if not part:
            continue
        if ".." in part:
            first, _, last = part.partition("..")
            out.extend(serial_range(first.strip(), last.strip()))
        else:
            out.extend(serial_range(part, part))
        if len(out) > MAX_FORM_SERIALS:
            raise LedgerError(f"more than {MAX_FORM_SERIALS} serials in one form")
    if len(set(out)) != len(out):
        raise LedgerError("a serial is named twice")
    return out


def visible_office(session: Session, user: User, code: str) -> Office:
    """Office ``code`` if the user sees it; otherwise :class:`NotFound`."""
    return _visible_office(session, user.office, code)


def transfer_targets(session: Session, user: User) -> list[Office]:
    """Offices a user may hand blanks to: those the user sees, and the parent regency of a
    kecamatan (returning stock)."""
    offices = visible_offices(session, user.office)
    if user.office.parent_id is not None:
        parent = session.get(Office, user.office.parent_id)
        if parent is not None:
            offices.append(parent)
    return offices


def _visible_station(session: Session, user: User, station_id: int) -> Station:
    station = session.get(Station, station_id)
    if station is None or station.office_id not in visible_office_ids(session, user.office):
        raise NotFound("station not found")
    return station


# ---------------------------------------------------------------------------- blanks


def load_hopper(
    session: Session, user: User, *, station_id: int, count: int, stock_type: str
) -> list[Blank]:
    """Load the ``count`` lowest in-stock blanks of ``stock_type`` of the station's office
    into its hopper (``run.py ledger load``; each blank's move is an audit event)."""
    require(user, "stock.load")
    station = _visible_station(session, user, station_id)
    return ops.load_blanks(session, station, actor=user.username, count=count,
                           stock_type=stock_type)


@dataclass(frozen=True)
class StockPlace:
    """Blanks of one stock type on hand at one place: an office's store or a hopper."""

    office: str
    place: str  # "" for the office's store, else the station's name
    stock_type: str
    in_stock: int
    in_hopper: int
    reserved: int

    @property
    def total(self) -> int:
        return self.in_stock + self.in_hopper + self.reserved


def stock_on_hand(session: Session, user: User) -> list[StockPlace]:
    """Blanks on hand in the user's offices per stock type and place (the store, each
    station's hopper with the blanks reserved there for a card in progress)."""
    rows = session.execute(
        select(Office.code, Station.name, Blank.stock_type, Blank.state, func.count())
        .select_from(Blank)
        .join(Office, Office.id == Blank.office_id)
        .outerjoin(Station, Station.id == Blank.station_id)
        .where(
            Blank.office_id.in_(visible_office_ids(session, user.office)),
            Blank.state.in_([BlankState.IN_STOCK, BlankState.IN_HOPPER, BlankState.RESERVED]),
        )
        .group_by(Office.code, Station.name, Blank.stock_type, Blank.state)
    ).all()
    counts: dict[tuple[str, str, str], dict[BlankState, int]] = {}
    for code, station, stock_type, state, n in rows:
        place = "" if state is BlankState.IN_STOCK else (station or "")
        counts.setdefault((code, place, stock_type), {})[state] = n
    return [
        StockPlace(code, place, stock_type, c.get(BlankState.IN_STOCK, 0),
                   c.get(BlankState.IN_HOPPER, 0), c.get(BlankState.RESERVED, 0))
        for (code, place, stock_type), c in sorted(counts.items())
    ]


def receive_blanks(
    session: Session,
    user: User,
    *,
    office_code: str,
    first: str,
    last: str,
    handover_number: str,
    from_party: str,
    carton: str | None,
    document_date: date | None,
    note: str | None,
    stock_type: str = DEFAULT_STOCK_TYPE,
    giver: Person | None = None,
    receiver: Person | None = None,
) -> HandoverRecord:
    """Receive a carton ``first..last`` of ``stock_type`` blanks at one of the user's offices
    under a *Berita Acara Serah Terima* number, signed by ``giver`` and ``receiver``."""
    require(user, "stock.receive")
    office = visible_office(session, user, office_code)
    return ops.receive_blanks(
        session,
        office_code=office.code,
        first=first.strip().upper(),
        last=last.strip().upper(),
        handover_number=handover_number.strip(),
        actor=user.username,
        carton=carton or None,
        from_party=from_party.strip(),
        document_date=document_date,
        note=note or None,
        stock_type=stock_type,
        giver=_signatory(giver),
        receiver=_signatory(receiver),
    )


def transfer_blanks(
    session: Session,
    user: User,
    *,
    from_office_code: str,
    to_office_code: str,
    serials: Sequence[str],
    handover_number: str,
    document_date: date | None,
    note: str | None,
    giver: Person | None = None,
    receiver: Person | None = None,
) -> HandoverRecord:
    """Hand in-stock blanks of one of the user's offices to another office, signed by
    ``giver`` and ``receiver``."""
    require(user, "stock.transfer")
    source = visible_office(session, user, from_office_code)
    if to_office_code not in {o.code for o in transfer_targets(session, user)}:
        raise NotFound("office not found")
    _require_visible_blanks(session, user, serials)
    return ops.transfer_blanks(
        session,
        from_office_code=source.code,
        to_office_code=to_office_code,
        serials=serials,
        handover_number=handover_number.strip(),
        actor=user.username,
        document_date=document_date,
        note=note or None,
        giver=_signatory(giver),
        receiver=_signatory(receiver),
    )


def _signatory(person: Person | None) -> str:
    """A signatory as the ledger stores it; empty when no name was given."""
    return person.ledger_name() if person is not None and person.name.strip() else ""


def _require_visible_blanks(session: Session, user: User, serials: Sequence[str]) -> list[Blank]:
    """The blanks ``serials``; :class:`NotFound` when one is unknown or of an office the user
    does not see (no probing of other offices' serials)."""
    blanks = list(session.scalars(select(Blank).where(Blank.serial.in_(list(serials)))))
    visible = set(visible_office_ids(session, user.office))
    found = {b.serial for b in blanks if b.office_id in visible}
    missing = [s for s in serials if s not in found]
    if missing:
        raise NotFound(f"blank {missing[0]} not found")
    return blanks


def spoil_card(
    session: Session, user: User, *, serial: str, cause: SpoilCause, note: str
) -> Blank:
    """An operator records a spoiled card: the blank (on hand at one of the user's offices)
    becomes *spoiled* with ``cause``, corner cut, awaiting destruction."""
    require(user, "stock.spoil")
    if cause not in MANUAL_CAUSES:
        raise LedgerError(f"cause {cause.value} cannot be given by hand")
    if not note.strip():
        raise LedgerError("describe what happened to the card")
    (blank,) = _require_visible_blanks(session, user, parse_serials(serial)[:1])
    ops.spoil_blank(
        session, blank, cause=cause, actor=user.username, record_id=blank.record_id,
        note=note.strip(),
    )
    return blank


# ---------------------------------------------------------------------------- ribbons


def receive_ribbon(
    session: Session,
    user: User,
    *,
    office_code: str,
    kind: ConsumableKind,
    serial: str,
    type_: str,
    capacity: int,
    reference: str | None,
) -> Consumable:
    """Receive a ribbon or film roll at one of the user's offices."""
    require(user, "stock.receive")
    office = visible_office(session, user, office_code)
    return ribbons.receive_consumable(
        session, kind=kind, office_code=office.code, serial=serial.strip().upper(), type_=type_,
        capacity=capacity, actor=user.username, reference=reference or None,
    )


def load_ribbon(
    session: Session, user: User, *, station_id: int, kind: ConsumableKind, serial: str
) -> Consumable:
    """Load a roll into a station of the user's offices (replacing the loaded one, if any)."""
    require(user, "stock.receive")
    station = _visible_station(session, user, station_id)
    return ribbons.replace_consumable(
        session, station, kind=kind, serial=serial.strip().upper(), actor=user.username
    )


def transfer_ribbon(
    session: Session,
    user: User,
    *,
    kind: ConsumableKind,
    serial: str,
    to_office_code: str,
    handover_number: str,
) -> Consumable:
    """Hand an in-stock roll of one of the user's offices to another office."""
    require(user, "stock.transfer")
    item = ribbons.consumable_by_serial(session, kind, serial.strip().upper())
    if item.office_id not in visible_office_ids(session, user.office):
        raise NotFound("roll not found")
    if to_office_code not in {o.code for o in transfer_targets(session, user)}:
        raise NotFound("office not found")
    return ribbons.transfer_consumable(
        session, kind=kind, serial=item.serial, to_office_code=to_office_code,
        reference=handover_number.strip(), actor=user.username,
    )  # fmt: skip


# ---------------------------------------------------------------------------- adjustments


def request_adjustment(
    session: Session,
    user: User,
    *,
    office_code: str,
    kind: AdjustmentKind,
    serials: Sequence[str],
    reason: str,
    target_state: BlankState | None,
    station_id: int | None,
) -> Adjustment:
    """Request a stock adjustment; it changes nothing until a different person approves."""
    require(user, "adjustment.request")
    office = visible_office(session, user, office_code)
    station = _visible_station(session, user, station_id) if station_id else None
    return adj.request_adjustment(
        session, office_code=office.code, kind=kind, serials=serials, reason=reason.strip(),
        requested_by=user.username, target_state=target_state, station=station,
    )


def pending_adjustments(session: Session, user: User) -> list[Adjustment]:
    return list(
        session.scalars(
            select(Adjustment)
            .where(
                Adjustment.office_id.in_(visible_office_ids(session, user.office)),
                Adjustment.status == AdjustmentStatus.PENDING,
            )
            .order_by(Adjustment.id)
        )
    )


def decide_adjustment(
    session: Session, user: User, adjustment_id: int, *, approve: bool, note: str
) -> Adjustment:
    """Approve (and apply) or reject a pending adjustment of the user's offices. Dual control:
    the requester cannot decide it (:class:`Forbidden`)."""
    require(user, "adjustment.approve")
    found = session.get(Adjustment, adjustment_id)
    if found is None or found.office_id not in visible_office_ids(session, user.office):
        raise NotFound("adjustment not found")
    if found.requested_by.strip().casefold() == user.username.strip().casefold():
        raise Forbidden("dual control: the requester cannot decide")
    if approve:
        return adj.approve_adjustment(
            session, adjustment_id, approved_by=user.username, note=note or None
        )
    return adj.reject_adjustment(session, adjustment_id, rejected_by=user.username,
                                 note=note or None)


# ---------------------------------------------------------------------------- destruction


@dataclass(frozen=True)
class Person:
    """A signatory: name and NIP (civil servant number) or another identity number."""

    name: str
    nip: str

    def ledger_name(self) -> str:
        return f"{self.name.strip().upper()}{NIP_SEPARATOR}{self.nip.strip()}"[:120]


def split_person(text: str) -> tuple[str, str]:
    """``(name, nip)`` from a name stored by :meth:`Person.ledger_name`."""
    return name_and_nip(text)


def destroy_spoiled(
    session: Session,
    user: User,
    *,
    office_code: str,
    number: str,
    officer_1: Person,
    officer_2: Person,
    witness: Person,
    witness_role: str,
    place: str,
    serials: Sequence[str] | None,
    document_date: date | None,
) -> DestructionRecord:
    """Destroy spoiled blanks of one of the user's offices under a *Berita Acara Pemusnahan*
    signed by two different officers and a witness who is neither (names and ids distinct)."""
    require(user, "destruction.record")
    office = visible_office(session, user, office_code)
    people = (officer_1, officer_2, witness)
    if any(not p.name.strip() or not p.nip.strip() for p in people):
        raise LedgerError("every signatory needs a name and a NIP or identity number")
    keys = [same_person_key(p.name, p.nip) for p in people]
    if len({name for name, _ in keys}) != 3 or len({nip for _, nip in keys}) != 3:
        raise LedgerError("a destruction needs two different officers and a separate witness "
                          "(names compared without case, spaces or punctuation; NIPs by digits)")
    if not serials:
        raise LedgerError("choose the serials of the spoiled blanks to destroy")
    _require_visible_blanks(session, user, serials)
    return ops.destroy_blanks(
        session,
        office_code=office.code,
        number=number.strip(),
        officers=(officer_1.ledger_name(), officer_2.ledger_name()),
        witness=witness.ledger_name(),
        witness_role=witness_role.strip(),
        place=place.strip(),
        actor=user.username,
        serials=list(serials),
        document_date=document_date,
    )


# ---------------------------------------------------------------------------- documents


def visible_documents(
    session: Session, user: User, limit: int = 50
) -> tuple[list[HandoverRecord], list[DestructionRecord]]:
    """Latest handover and destruction records of the user's offices."""
    ids = visible_office_ids(session, user.office)
    handovers = list(
        session.scalars(
            select(HandoverRecord)
            .where(
                or_(HandoverRecord.to_office_id.in_(ids), HandoverRecord.from_office_id.in_(ids))
            )
            .order_by(HandoverRecord.id.desc())
            .limit(limit)
        )
    )
    destructions = list(
        session.scalars(
            select(DestructionRecord)
            .where(DestructionRecord.office_id.in_(ids))
            .order_by(DestructionRecord.id.desc())
            .limit(limit)
        )
    )
    return handovers, destructions


def get_visible_destruction(session: Session, user: User, record_id: int) -> DestructionRecord:
    record = session.get(DestructionRecord, record_id)
    if record is None or record.office_id not in visible_office_ids(session, user.office):
        raise NotFound("document not found")
    return record


def get_visible_handover(session: Session, user: User, record_id: int) -> HandoverRecord:
    record = session.get(HandoverRecord, record_id)
    ids = visible_office_ids(session, user.office)
    if record is None or (record.to_office_id not in ids and record.from_office_id not in ids):
        raise NotFound("document not found")
    return record


def destruction_contents(session: Session, record: DestructionRecord) -> dict[str, Any]:
    """Serials destroyed under ``record`` and their counts by spoil cause."""
    rows = session.execute(
        select(BlankMovement.serial, Blank.spoil_cause)
        .join(Blank, Blank.id == BlankMovement.blank_id)
        .where(
            BlankMovement.destruction_id == record.id,
            BlankMovement.kind == MovementKind.DESTROY,
        )
        .order_by(Blank.prefix, Blank.number)
    ).all()
    causes: dict[str, int] = {}
    for _serial, cause in rows:
        key = SpoilCause(cause).value if cause else "unknown"
        causes[key] = causes.get(key, 0) + 1
    return {"serials": [r[0] for r in rows], "causes": dict(sorted(causes.items()))}


def handover_contents(session: Session, record: HandoverRecord) -> dict[str, Any]:
    """Serials handed over under ``record``."""
    serials = list(
        session.scalars(
            select(BlankMovement.serial)
            .join(Blank, Blank.id == BlankMovement.blank_id)
            .where(BlankMovement.handover_id == record.id)
            .order_by(Blank.prefix, Blank.number)
        )
    )
    return {"serials": serials}


def spoiled_on_hand(session: Session, user: User) -> dict[str, int]:
    """Spoiled blanks awaiting destruction per office code (the user's offices)."""
    rows = session.execute(
        select(Office.code, func.count())
        .join(Blank, Blank.office_id == Office.id)
        .where(
            Office.id.in_(visible_office_ids(session, user.office)),
            Blank.state == BlankState.SPOILED,
            Blank.spoil_cause != SpoilCause.MISSING,
        )
        .group_by(Office.code)
    ).all()
    return {code: int(n) for code, n in rows}
