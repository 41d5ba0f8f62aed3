"""``ledger check``: prove the blank ledger balances.

1. Every blank's journal replays cleanly: each movement starts from the state (and office) the
   previous one left, follows :data:`~printsrv.ledger.blanks.TRANSITIONS`, and the last one
   leaves exactly the blank's current state, office and station — so every serial is in exactly
   one state, and that state is the one the journal proves.
2. Every office balances over its whole history, each blank stock type apart (KTP-el chip
   blanks and KIA blanks are different stock): received + transferred in = issued + spoiled +
   transferred out + on hand. Monthly reports are cuts of the same journal, so every month then
   balances too (each month's opening is the previous month's closing).
3. Documents agree with the journal: each handover and destruction record's count equals the
   movements referencing it; only approved adjustments have movements.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from printsrv.ledger.blanks import AT_STATION, TRANSITIONS
from printsrv.ledger.models import (
    ON_HAND,
    Adjustment,
    AdjustmentStatus,
    Blank,
    BlankMovement,
    BlankState,
    DestructionRecord,
    HandoverRecord,
    MovementKind,
)
from printsrv.models import Office
from printsrv.products import DEFAULT_STOCK_TYPE


@dataclass(frozen=True)
class Problem:
    """One reason the ledger does not balance."""

    message: str
    serial: str | None = None
    office: str | None = None

    def __str__(self) -> str:
        where = " ".join(x for x in (self.office and f"office {self.office}", self.serial) if x)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class OfficeBalance:
    office: str
    stock_type: str = DEFAULT_STOCK_TYPE
    received: int = 0
    transferred_in: int = 0
    issued: int = 0
    spoiled: int = 0
    transferred_out: int = 0
    on_hand: int = 0

    @property
    def expected_on_hand(self) -> int:
        return (
            self.received + self.transferred_in - self.issued - self.spoiled - self.transferred_out
        )

    @property
    def ok(self) -> bool:
        return self.expected_on_hand == self.on_hand


@dataclass
class CheckResult:
    blanks: int = 0
    movements: int = 0
    offices: list[OfficeBalance] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blanks": self.blanks,
            "movements": self.movements,
            "offices": [
                {
                    "office": b.office,
                    "stock_type": b.stock_type,
                    "received": b.received,
                    "transferred_in": b.transferred_in,
                    "issued": b.issued,
                    "spoiled": b.spoiled,
                    "transferred_out": b.transferred_out,
                    "on_hand": b.on_hand,
                    "balanced": b.ok,
                }
                for b in self.offices
            ],
            "problems": [
                {"serial": p.serial, "office": p.office, "message": p.message}
                for p in self.problems
            ],
        }


def _state(value: str | None) -> BlankState | None:
    if value is None:
        return None
    try:
        return BlankState(value)
    except ValueError:
        return None


def check_ledger(session: Session, *, max_problems: int = 1000) -> CheckResult:
    """Check the whole ledger; problems name the serial and/or office concerned."""
    result = CheckResult()
    codes = dict(session.execute(select(Office.id, Office.code)).all())
    problems = result.problems

    def add(message: str, serial: str | None = None, office_id: int | None = None) -> None:
        if len(problems) < max_problems:
            problems.append(Problem(message, serial, codes.get(office_id) if office_id else None))

    # Read states as plain strings so a tampered, invalid value is reported, not a crash.
    b = Blank.__table__.c
    blanks = {
        row.id: row
        for row in session.execute(
            select(
                b.id,
                b.serial,
                type_coerce(b.state, String()).label("state"),
                b.office_id,
                b.station_id,
                b.record_id,
                b.stock_type,
            )
        )
    }
    result.blanks = len(blanks)
    balances: dict[tuple[int, str], OfficeBalance] = {}

    def balance(office_id: int, stock_type: str) -> OfficeBalance:
        key = (office_id, stock_type)
        if key not in balances:
            balances[key] = OfficeBalance(codes.get(office_id, f"#{office_id}"), stock_type)
        return balances[key]

    m = BlankMovement.__table__.c
    replay: dict[int, tuple[BlankState | None, int | None, int | None]] = {}
    rows = session.execute(
        select(
            m.blank_id,
            m.serial,
            type_coerce(m.kind, String()).label("kind"),
            type_coerce(m.from_state, String()).label("from_state"),
            type_coerce(m.to_state, String()).label("to_state"),
            m.office_id,
            m.to_office_id,
            m.station_id,
        ).order_by(m.blank_id, m.id)
    ).yield_per(5000)
    for mv in rows:
        result.movements += 1
        blank = blanks.get(mv.blank_id)
        serial = blank.serial if blank else mv.serial
        if blank is not None and mv.serial != blank.serial:
            add(f"journal row names {mv.serial} for blank {blank.serial}", serial, mv.office_id)
        state, office_id, _station = replay.get(mv.blank_id, (None, None, None))
        try:
            kind = MovementKind(mv.kind)
        except ValueError:
            add(f"journal row of unknown kind {mv.kind!r}", serial, mv.office_id)
            continue
        from_state, to_state = _state(mv.from_state), _state(mv.to_state)
        if to_state is None:
            add(f"journal row with invalid state {mv.to_state!r}", serial, mv.office_id)
            continue
        first = mv.blank_id not in replay
        if not first and from_state is not state:
            add(
                f"journal broken: {kind.value} from {mv.from_state} but the blank was "
                f"{state.value if state else 'nothing'}",
                serial,
                mv.office_id,
            )
        if first and kind is not MovementKind.RECEIVE:
            add(f"journal starts with {kind.value}, not receive", serial, mv.office_id)
        if (from_state, to_state) not in TRANSITIONS[kind]:
            add(f"illegal {kind.value} from {mv.from_state} to {mv.to_state}", serial, mv.office_id)
        if office_id is not None and mv.office_id != office_id:
            add(
                f"journal broken: {kind.value} at office {codes.get(mv.office_id)} but the blank "
                f"was at {codes.get(office_id)}",
                serial,
                mv.office_id,
            )
        if (kind is MovementKind.TRANSFER) != (mv.to_office_id is not None):
            add(f"{kind.value} row with a wrong destination office", serial, mv.office_id)
        stock_type = blank.stock_type if blank else DEFAULT_STOCK_TYPE
        bal = balance(mv.office_id, stock_type)
        if kind is MovementKind.RECEIVE:
            bal.received += 1
        elif kind is MovementKind.TRANSFER and mv.to_office_id is not None:
            bal.transferred_out += 1
            balance(mv.to_office_id, stock_type).transferred_in += 1
        elif to_state is BlankState.ISSUED and from_state in ON_HAND:
            bal.issued += 1
        elif to_state is BlankState.SPOILED and from_state in ON_HAND:
            bal.spoiled += 1
        replay[mv.blank_id] = (
            to_state,
            mv.to_office_id or mv.office_id,
            mv.station_id if to_state in AT_STATION else None,
        )

    for blank_id, blank in sorted(blanks.items(), key=lambda kv: kv[1].serial):
        state = _state(blank.state)
        if state is None:
            add(f"invalid state {blank.state!r}", blank.serial, blank.office_id)
            continue
        if state in ON_HAND:
            balance(blank.office_id, blank.stock_type).on_hand += 1
        if blank_id not in replay:
            add(f"{state.value} but has no journal (never received)", blank.serial, blank.office_id)
            continue
        j_state, j_office, j_station = replay[blank_id]
        if state is not j_state:
            add(
                f"is {state.value} but its journal ends {j_state.value if j_state else '?'}",
                blank.serial,
                blank.office_id,
            )
        if blank.office_id != j_office:
            add(
                f"is at office {codes.get(blank.office_id)} but its journal puts it at "
                f"{codes.get(j_office) if j_office else '?'}",
                blank.serial,
                blank.office_id,
            )
        if state in AT_STATION and (blank.station_id is None or blank.station_id != j_station):
            add(f"{state.value} at the wrong station or none", blank.serial, blank.office_id)
        if state not in AT_STATION and blank.station_id is not None:
            add(f"{state.value} but still assigned to a station", blank.serial, blank.office_id)
        if state in (BlankState.RESERVED, BlankState.ISSUED) and blank.record_id is None:
            add(f"{state.value} without a record", blank.serial, blank.office_id)

    for (office_id, _stock), bal in sorted(
        balances.items(), key=lambda kv: (kv[1].office, kv[1].stock_type)
    ):
        if not bal.ok:
            add(
                f"does not balance ({bal.stock_type} blanks): received {bal.received} + "
                f"transferred in {bal.transferred_in} - issued {bal.issued} - spoiled "
                f"{bal.spoiled} - transferred out {bal.transferred_out} = {bal.expected_on_hand}, "
                f"but {bal.on_hand} blanks are on hand",
                None,
                office_id,
            )
    result.offices = sorted(balances.values(), key=lambda x: (x.office, x.stock_type))
    _check_documents(session, add)
    return result


def _check_documents(session: Session, add: Any) -> None:
    per_handover = Counter(
        dict(
            session.execute(
                select(BlankMovement.handover_id, func.count())
                .where(BlankMovement.handover_id.is_not(None))
                .group_by(BlankMovement.handover_id)
            ).all()
        )
    )
    for doc in session.scalars(select(HandoverRecord)):
        if per_handover[doc.id] != doc.count:
            add(
                f"handover record {doc.number} states {doc.count} blanks, "
                f"the journal has {per_handover[doc.id]}",
                None,
                doc.to_office_id,
            )
    per_destruction = Counter(
        dict(
            session.execute(
                select(BlankMovement.destruction_id, func.count())
                .where(BlankMovement.destruction_id.is_not(None))
                .group_by(BlankMovement.destruction_id)
            ).all()
        )
    )
    for destruction in session.scalars(select(DestructionRecord)):
        if per_destruction[destruction.id] != destruction.count:
            add(
                f"destruction record {destruction.number} states {destruction.count} blanks, "
                f"the journal has {per_destruction[destruction.id]}",
                None,
                destruction.office_id,
            )
    per_adjustment: dict[int | None, int] = defaultdict(int)
    for adj_id, n in session.execute(
        select(BlankMovement.adjustment_id, func.count())
        .where(BlankMovement.adjustment_id.is_not(None))
        .group_by(BlankMovement.adjustment_id)
    ):
        per_adjustment[adj_id] = n
    for adj in session.scalars(select(Adjustment)):
        expected = len(adj.serials) if adj.status is AdjustmentStatus.APPROVED else 0
        if per_adjustment[adj.id] != expected:
            add(
                f"adjustment ADJ-{adj.id} ({adj.status.value}) has {per_adjustment[adj.id]} "
                f"movements, expected {expected}",
                None,
                adj.office_id,
            )
        if adj.status is not AdjustmentStatus.PENDING and adj.decided_by == adj.requested_by:
            add(f"adjustment ADJ-{adj.id} decided by its requester", None, adj.office_id)
