"""Stock adjustments under dual control: one person requests, a different person approves.

A request changes nothing; approval applies it as ``adjust`` movements referencing it. Two kinds:

- ``write_off``: blanks not found at a stock count leave the stock as *spoiled, cause missing*
  (they count in the month's spoiled figures and can never be "destroyed");
- ``correct_state``: move on-hand blanks (in_stock, in_hopper, reserved) to in_stock or to a
  station's hopper, e.g. a blank the books put in a hopper found in the store room.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from printsrv import audit
from printsrv.ledger import blanks as ops
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    ON_HAND,
    Adjustment,
    AdjustmentKind,
    AdjustmentStatus,
    Blank,
    BlankState,
    MovementKind,
    SpoilCause,
    Station,
)
from printsrv.ledger.tags import LedgerTag
from printsrv.models import Office


def _validate(
    session: Session,
    office: Office,
    kind: AdjustmentKind,
    serials: Sequence[str],
    target_state: BlankState | None,
    station: Station | None,
) -> list[Blank]:
    if not serials:
        raise LedgerError("an adjustment names at least one blank")
    blanks = ops.blanks_by_serials(session, serials)
    for blank in blanks:
        if blank.office_id != office.id:
            raise LedgerError(
                f"blank {blank.serial} is not at office {office.code}", serial=blank.serial
            )
        if blank.state not in ON_HAND:
            raise LedgerError(
                f"blank {blank.serial} is {blank.state.value}; only blanks on hand can be adjusted",
                serial=blank.serial,
            )
    if kind is AdjustmentKind.CORRECT_STATE:
        if target_state not in (BlankState.IN_STOCK, BlankState.IN_HOPPER):
            raise LedgerError("correct_state needs a target state: in_stock or in_hopper")
        if target_state is BlankState.IN_HOPPER and station is None:
            raise LedgerError("correcting to in_hopper needs a station")
        if station is not None and station.office_id != office.id:
            raise LedgerError(f"station {station.name} is not at office {office.code}")
        for blank in blanks:
            station_id = station.id if station else None
            if blank.state is target_state and (
                target_state is BlankState.IN_STOCK or blank.station_id == station_id
            ):
                raise LedgerError(
                    f"blank {blank.serial} is already {target_state.value}", serial=blank.serial
                )
    return blanks


def request_adjustment(
    session: Session,
    *,
    office_code: str,
    kind: AdjustmentKind,
    serials: Sequence[str],
    reason: str,
    requested_by: str,
    target_state: BlankState | None = None,
    station: Station | None = None,
    at: datetime | None = None,
) -> Adjustment:
    """Record a pending adjustment (validated now and again on approval)."""
    if not reason.strip():
        raise LedgerError("an adjustment needs a reason")
    kind = AdjustmentKind(kind)
    office = ops.office_by_code(session, office_code)
    target = BlankState(target_state) if target_state else None
    blanks = _validate(session, office, kind, serials, target, station)
    adjustment = Adjustment(
        office_id=office.id,
        kind=kind,
        serials=[b.serial for b in blanks],
        target_state=target,
        station_id=station.id if station else None,
        reason=reason,
        status=AdjustmentStatus.PENDING,
        requested_by=requested_by,
        requested_at=ops.stamp(at),
    )
    session.add(adjustment)
    session.flush()
    audit.record(
        session,
        LedgerTag.ADJUSTMENT_REQUEST,
        actor=requested_by,
        office_code=office.code,
        subject=f"ADJ-{adjustment.id}",
        details={
            "kind": kind.value,
            "serials": adjustment.serials,
            "target_state": target.value if target else None,
            "station": station.name if station else None,
            "reason": reason,
        },
    )
    return adjustment


def _pending(session: Session, adjustment_id: int, person: str) -> Adjustment:
    adjustment = session.get(Adjustment, adjustment_id, with_for_update=True)
    if adjustment is None:
        raise LedgerError(f"no adjustment ADJ-{adjustment_id}")
    if adjustment.status is not AdjustmentStatus.PENDING:
        raise LedgerError(f"adjustment ADJ-{adjustment_id} is already {adjustment.status.value}")
    if person.strip().casefold() == adjustment.requested_by.strip().casefold():
        raise LedgerError(
            f"adjustment ADJ-{adjustment_id} was requested by {person}; "
            "a different person must decide it"
        )
    return adjustment


def approve_adjustment(
    session: Session,
    adjustment_id: int,
    *,
    approved_by: str,
    note: str | None = None,
    at: datetime | None = None,
) -> Adjustment:
    """Approve and apply a pending adjustment; the approver must not be the requester."""
    adjustment = _pending(session, adjustment_id, approved_by)
    office = session.get_one(Office, adjustment.office_id)
    station = session.get(Station, adjustment.station_id) if adjustment.station_id else None
    blanks = _validate(
        session, office, adjustment.kind, adjustment.serials, adjustment.target_state, station
    )
    at = ops.stamp(at)
    adjustment.status = AdjustmentStatus.APPROVED
    adjustment.decided_by = approved_by
    adjustment.decided_at = at
    adjustment.decision_note = note
    audit.record(
        session,
        LedgerTag.ADJUSTMENT_APPROVE,
        actor=approved_by,
        office_code=office.code,
        subject=f"ADJ-{adjustment.id}",
        details={"requested_by": adjustment.requested_by, "count": len(blanks), "note": note},
    )
    reference = f"ADJ-{adjustment.id}"
    for blank in blanks:
        if adjustment.kind is AdjustmentKind.WRITE_OFF:
            ops.move(
                session,
                blank,
                MovementKind.ADJUST,
                BlankState.SPOILED,
                actor=approved_by,
                cause=SpoilCause.MISSING,
                adjustment_id=adjustment.id,
                reference=reference,
                note=adjustment.reason,
                at=at,
            )
        else:
            target = adjustment.target_state
            assert target is not None
            ops.move(
                session,
                blank,
                MovementKind.ADJUST,
                target,
                actor=approved_by,
                station_id=station.id if station and target in ops.AT_STATION else None,
                adjustment_id=adjustment.id,
                reference=reference,
                note=adjustment.reason,
                at=at,
            )
            blank.record_id = None
    return adjustment


def reject_adjustment(
    session: Session,
    adjustment_id: int,
    *,
    rejected_by: str,
    note: str | None = None,
    at: datetime | None = None,
) -> Adjustment:
    """Reject a pending adjustment (by someone other than the requester)."""
    adjustment = _pending(session, adjustment_id, rejected_by)
    adjustment.status = AdjustmentStatus.REJECTED
    adjustment.decided_by = rejected_by
    adjustment.decided_at = ops.stamp(at)
    adjustment.decision_note = note
    office = session.get_one(Office, adjustment.office_id)
    audit.record(
        session,
        LedgerTag.ADJUSTMENT_REJECT,
        actor=rejected_by,
        office_code=office.code,
        subject=f"ADJ-{adjustment.id}",
        details={"requested_by": adjustment.requested_by, "note": note},
    )
    return adjustment
