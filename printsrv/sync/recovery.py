"""A kecamatan node whose disk died: what it held becomes *unknown fates* for the server's
supervisor to settle.

* :func:`declare_lost` revokes the node's credential and reports, once each, every record it
  owns whose fate never reached the server (queued, held or failed as far as the server knows:
  it may have been printed offline), and every blank its ledger last reported on hand there
  (in stock, in a hopper, reserved). The office enrols a fresh node (new key, new node id).
* :func:`settle` is the supervisor's decision on one of them, with who and why:
  ``recovered`` (the card was found issued at the office; the blank was found unused),
  ``spoiled`` (found damaged) or ``lost`` (not found). A record is released from the lost node:
  issued when recovered, otherwise back to the queue (or held, if it was held) to be printed
  again by whoever takes it next. A blank's decision is recorded here; the server's blank
  table does not hold a node's blanks (blank transfers down are not built yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from printsrv import audit, outbox
from printsrv.audit_tags import SyncTag
from printsrv.errors import InvalidValue, NotFound, StateError
from printsrv.models import Record, RecordState
from printsrv.offices import office_code
from printsrv.records import audit_state_change, state_change_details
from printsrv.sync.models import FateDecision, UnknownFate
from printsrv.sync.server import node_ledger, revoke

#: Record states at the server that mean the node's fate for it never arrived.
OPEN_RECORD = (RecordState.QUEUED, RecordState.PRINTING, RecordState.HELD, RecordState.FAILED)
#: Blank states (as the node last reported them) that mean the blank was still on hand there.
OPEN_BLANK = frozenset({"in_stock", "in_hopper", "reserved"})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LostNode:
    node_id: str
    records: int  # unknown fates reported now
    blanks: int


def open_blanks(session: Session, node_id: str) -> dict[str, str]:
    """Serial → state of the blanks the node's ledger (as applied at the server) last left on
    hand at the node, in its order."""
    last: dict[str, str] = {}
    for movement in node_ledger(session, node_id):
        last[str(movement.get("serial"))] = str(movement.get("to"))
    return {serial: state for serial, state in last.items() if state in OPEN_BLANK}


def declare_lost(session: Session, node_id: str, *, actor: str, reason: str) -> LostNode:
    """Revoke the node and report what it held as unknown fates (once each: declaring the same
    node lost again reports only what is new)."""
    if not reason.strip():
        raise InvalidValue("say why the node is lost (its disk died, stolen, ...)")
    node = revoke(session, node_id, actor=actor)
    known = {(f.kind, f.subject) for f in session.scalars(
        select(UnknownFate).where(UnknownFate.node_id == node_id))}
    records = blanks = 0
    for record in session.scalars(
        select(Record).where(Record.owner_node == node_id, Record.state.in_(OPEN_RECORD))
        .order_by(Record.id).with_for_update()
    ):
        if ("record", record.request_id) in known:
            continue
        session.add(UnknownFate(
            node_id=node_id, kind="record", subject=record.request_id,
            office_code=office_code(session, record.office_id), last_known=record.state.value,
            reported_at=_now(), reported_by=actor[:64]))
        records += 1
    for serial, state in open_blanks(session, node_id).items():
        if ("blank", serial) in known:
            continue
        session.add(UnknownFate(node_id=node_id, kind="blank", subject=serial[:64],
                                office_code=node.office_code, last_known=state,
                                reported_at=_now(), reported_by=actor[:64]))
        blanks += 1
    session.flush()
    audit.record(session, SyncTag.NODE_LOST, actor=actor, office_code=node.office_code,
                 subject=node_id, details={"reason": reason, "records": records,
                                           "blanks": blanks})
    return LostNode(node_id, records, blanks)


def _within(scope: str) -> ColumnElement[bool]:
    """Fates of office ``scope`` or its kecamatan offices (a regency sees its kecamatan)."""
    return or_(UnknownFate.office_code == scope, UnknownFate.office_code.startswith(scope + "."))


def unknown_fates(session: Session, *, node_id: str | None = None, open_only: bool = True,
                  within: str | None = None) -> list[UnknownFate]:
    """Unknown fates in reporting order; ``within``: only those of that office's scope."""
    stmt = select(UnknownFate).order_by(UnknownFate.id)
    if node_id:
        stmt = stmt.where(UnknownFate.node_id == node_id)
    if within:
        stmt = stmt.where(_within(within))
    if open_only:
        stmt = stmt.where(UnknownFate.decision.is_(None))
    return list(session.scalars(stmt))


def settle(session: Session, fate_id: int, decision: FateDecision | str, *, actor: str,
           reason: str, within: str | None = None) -> UnknownFate:
    """A supervisor's decision on one unknown fate (see the module's text); ``within``: the
    decider's office scope (a fate outside it is :class:`NotFound`, as one that does not
    exist)."""
    decision = FateDecision(decision)
    if not reason.strip():
        raise InvalidValue("a decision on an unknown fate needs a reason")
    stmt = select(UnknownFate).where(UnknownFate.id == fate_id)
    if within:
        stmt = stmt.where(_within(within))
    fate = session.scalar(stmt.with_for_update())
    if fate is None:
        raise NotFound(f"no unknown fate {fate_id}")
    if fate.decision is not None:
        raise StateError(f"unknown fate {fate_id} was settled by {fate.settled_by}: "
                         f"{fate.decision}")
    if fate.kind == "record":
        _settle_record(session, fate, decision, actor=actor, reason=reason)
    fate.decision = decision
    fate.settled_at = _now()
    fate.settled_by = actor[:64]
    fate.reason = reason
    audit.record(session, SyncTag.FATE_SETTLE, actor=actor, office_code=fate.office_code,
                 subject=fate.subject, details={"node": fate.node_id, "kind": fate.kind,
                                                "decision": decision.value, "reason": reason})
    return fate


def _settle_record(session: Session, fate: UnknownFate, decision: FateDecision, *, actor: str,
                   reason: str) -> None:
    record = session.scalar(select(Record).where(Record.request_id == fate.subject)
                            .with_for_update())
    if record is None:
        raise NotFound(f"no record {fate.subject}")
    if record.owner_node != fate.node_id:
        raise StateError(f"record {fate.subject} is no longer held by node {fate.node_id}")
    if decision is FateDecision.RECOVERED:
        new = RecordState.ISSUED
    else:  # printed again: held records go back to review
        new = RecordState.HELD if record.state is RecordState.HELD else RecordState.QUEUED
    old = record.state
    record.owner_node = None
    record.state = new
    record.updated_at = _now()
    if new is RecordState.ISSUED and record.issued_at is None:
        record.issued_at = _now()
    if new is RecordState.QUEUED:
        record.hold_reason = None
    why = f"unknown fate (node {fate.node_id} lost): {decision.value}: {reason}"
    audit_state_change(session, record.office_id, record.request_id,
                       state_change_details(old, new, why), actor=actor)
    code = office_code(session, record.office_id)
    outbox.publish(session, outbox.Topic.RECORD_STATE, office_code=code,
                   subject=record.request_id,
                   payload=outbox.record_state_payload(record.request_id, code, old, new, why))
