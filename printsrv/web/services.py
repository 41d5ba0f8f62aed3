"""Services behind the web views: office scoping, queue queries, holds, reprints, tokens.

Every function takes a session and does not commit; the request owns the transaction (save
:func:`import_uploaded_batch`, which ends it before the import's own). Which offices a user
may see is decided in :mod:`printsrv.offices` only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from printsrv import audit, offices, outbox
from printsrv.errors import NotFound, StateError
from printsrv.models import AuditEvent, Office, Record, RecordState, Role, User
from printsrv.offices import visible_office_ids, visible_offices
from printsrv.records import REPRINT, media_purged, transition
from printsrv.web.models import (
    ApiToken,
    ApprovalRequest,
    RequestKind,
    RequestStatus,
    TokenScope,
)
from printsrv.web.tags import WebTag

if TYPE_CHECKING:
    from printsrv.config import Settings
    from printsrv.intake.pipeline import ImportResult

PAGE_SIZE = 50
_NIK = re.compile(r"^\d{16}$")


class Forbidden(Exception):
    """The user's role does not allow the action."""


# --- permissions -------------------------------------------------------------------------

A, S, OP, U = Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR
PERMISSIONS: dict[str, frozenset[Role]] = {
    "queue.view": frozenset({A, S, OP}),
    "record.view": frozenset({A, S, OP, U}),
    "record.release": frozenset({A, S}),
    "reprint.request": frozenset({S, OP}),
    "reprint.approve": frozenset({S}),
    "audit.view": frozenset({A, S, U}),
    "ledger.view": frozenset({A, S, U}),
    "ledger.manage": frozenset({S}),
    "station.view": frozenset({A, S, OP}),
    "station.operate": frozenset({S, OP}),
    "stock.receive": frozenset({S}),
    "stock.transfer": frozenset({S}),
    "stock.spoil": frozenset({S, OP}),
    "stock.load": frozenset({S, OP}),
    "adjustment.request": frozenset({S, OP}),
    "adjustment.approve": frozenset({S}),
    "destruction.record": frozenset({S}),
    "anomaly.view": frozenset({A, S, U}),
    "desk.handover": frozenset({S, OP}),
    "ikd.enter": frozenset({S}),
    "suket.issue": frozenset({S}),
    "node.manage": frozenset({A}),
    "node.fates.view": frozenset({A, S, U}),  # unknown fates of a lost node (read-only)
    "node.fates.settle": frozenset({S}),  # as 'run.py nodes settle --actor SUPERVISOR'
}


def can(user: User, permission: str) -> bool:
    return user.role in PERMISSIONS[permission]


def require(user: User, permission: str) -> None:
    if not can(user, permission):
        raise Forbidden(permission)


# --- office scoping ----------------------------------------------------------------------


def get_visible_record(session: Session, office: Office, record_id: int) -> Record:
    """The record ``record_id`` if ``office`` may see it; otherwise :class:`NotFound` (the same
    answer as for a record that does not exist, so ids of other offices are not probed)."""
    record = session.get(Record, record_id, options=[joinedload(Record.office)])
    if record is None or record.office_id not in visible_office_ids(session, office):
        raise NotFound("record not found")
    return record


def get_visible_record_by_request_id(session: Session, office: Office, request_id: str) -> Record:
    record_id = session.scalar(select(Record.id).where(Record.request_id == request_id))
    if record_id is None:
        raise NotFound("record not found")
    return get_visible_record(session, office, record_id)


# --- queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    id: int
    request_id: str
    nik: str
    nama: str
    card_type: str
    office_code: str
    state: str
    hold_reason: str | None
    updated_at: datetime


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_after: int | None
    counts: dict[str, int]


def search_records(
    session: Session,
    office: Office,
    *,
    query: str = "",
    state: RecordState | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
    with_counts: bool = True,
    by_request_id: bool = False,
) -> QueuePage:
    """Records visible to ``office``: by NIK (16 digits), request id (the whole id or its
    start; ``by_request_id`` for an id without a dash) or name prefix, and state;
    keyset-paginated by id."""
    office_ids = visible_office_ids(session, office)
    stmt = (
        select(
            Record.id,
            Record.request_id,
            Record.nik,
            Record.nama,
            Record.card_type,
            Office.code,
            Record.state,
            Record.hold_reason,
            Record.updated_at,
        )
        .join(Office, Office.id == Record.office_id)
        .where(Record.office_id.in_(office_ids))
    )
    query = query.strip()
    if query:
        if _NIK.match(query):
            stmt = stmt.where(Record.nik == query)
        elif by_request_id or query.upper().startswith("PC-") or "-" in query:
            stmt = stmt.where(Record.request_id.startswith(query, autoescape=True))
        else:
            stmt = stmt.where(Record.nama.like(query.upper().replace("%", "") + "%"))
    if state is not None:
        stmt = stmt.where(Record.state == state)
    if after is not None:
        stmt = stmt.where(Record.id > after)
    rows = session.execute(stmt.order_by(Record.id).limit(limit + 1)).all()
    page = [
        QueueRow(r[0], r[1], r[2], r[3], r[4], r[5], RecordState(r[6]).value, r[7], r[8])
        for r in rows[:limit]
    ]
    counts: dict[str, int] = {}
    if with_counts:
        counts = state_counts(session, office_ids)
    return QueuePage(page, page[-1].id if len(rows) > limit else None, counts)


_COUNTS: dict[tuple[object, ...], tuple[float, dict[str, int]]] = {}
COUNTS_TTL = 5.0


def state_counts(
    session: Session, office_ids: list[int], *, max_age: float = COUNTS_TTL
) -> dict[str, int]:
    """Records per state over ``office_ids``; cached for ``max_age`` seconds (a display
    figure: counting 100,000 rows on every page view costs more than the page itself)."""
    key = (str(session.get_bind().engine.url), *sorted(office_ids))
    hit = _COUNTS.get(key)
    if hit is not None and time.monotonic() - hit[0] < max_age:
        return dict(hit[1])
    counts = _count_states(session, office_ids)
    if len(_COUNTS) > 1000:
        _COUNTS.clear()
    _COUNTS[key] = (time.monotonic(), counts)
    return dict(counts)


def _count_states(session: Session, office_ids: list[int]) -> dict[str, int]:
    rows = session.execute(
        select(Record.state, func.count())
        .where(Record.office_id.in_(office_ids))
        .group_by(Record.state)
    ).all()
    counts = {s.value: 0 for s in RecordState}
    for state, n in rows:
        counts[RecordState(state).value] = n
    return counts


def audit_view(
    session: Session,
    user: User,
    tag: WebTag,
    *,
    subject: str | None = None,
    office_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record that ``user`` saw or exported personal data, or approved something (on the
    user's own audit chain: the busiest pages do not queue behind each other)."""
    audit.record(
        session,
        tag,
        actor=user.username,
        office_code=office_code or user.office.code,
        subject=subject,
        details=details or {},
        chain=audit.user_chain(user.username),
    )


# --- holds -------------------------------------------------------------------------------


def release_record(session: Session, user: User, record: Record, note: str) -> None:
    """A supervisor releases a held record to the queue."""
    require(user, "record.release")
    if record.state is not RecordState.HELD:
        raise StateError("record is not held")
    transition(session, record, RecordState.QUEUED, actor=user.username, reason=note or None)
    audit_view(
        session,
        user,
        WebTag.RECORD_RELEASE,
        subject=record.request_id,
        office_code=record.office.code,
        details={"note": note},
    )


def reject_record(session: Session, user: User, record: Record, note: str) -> None:
    """A supervisor rejects a held record: it is cancelled, never printed."""
    require(user, "record.release")
    if record.state is not RecordState.HELD:
        raise StateError("record is not held")
    if not note.strip():
        raise StateError("a reason is required")
    transition(session, record, RecordState.CANCELLED, actor=user.username, reason=note)
    audit_view(
        session,
        user,
        WebTag.RECORD_REJECT,
        subject=record.request_id,
        office_code=record.office.code,
        details={"note": note},
    )


# --- record history ----------------------------------------------------------------------


def record_history(session: Session, record: Record) -> list[AuditEvent]:
    """Every audit event about the record, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject == record.request_id)
            .order_by(AuditEvent.seq)
        )
    )


# --- reprints (dual control) -------------------------------------------------------------


class ReprintNeedsNewRequest(StateError):
    """The issued record's biometrics were deleted after the reprint window: no card can be
    made from it; the registry must send a new print request (*permohonan cetak*)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"record {request_id}: its biometric data was deleted after the reprint window; "
            "a reprint needs a new print request (permohonan cetak) from the registry"
        )
        self.request_id = request_id


def reprint_blocked(session: Session, record: Record) -> bool:
    """An issued record whose biometrics are gone cannot be reprinted from this server."""
    return record.state is RecordState.ISSUED and media_purged(session, record)


def request_reprint(session: Session, user: User, record: Record, reason: str) -> ApprovalRequest:
    """Ask for a reprint of an issued or failed record; a supervisor must approve it. An
    issued record can be reprinted only while its biometrics are kept (reprint window)."""
    require(user, "reprint.request")
    if record.state not in (RecordState.ISSUED, RecordState.FAILED):
        raise StateError("only an issued or failed record can be reprinted")
    if reprint_blocked(session, record):
        raise ReprintNeedsNewRequest(record.request_id)
    if not reason.strip():
        raise StateError("a reason is required")
    pending = session.scalar(
        select(ApprovalRequest.id).where(
            ApprovalRequest.record_id == record.id,
            ApprovalRequest.status == RequestStatus.PENDING,
        )
    )
    if pending is not None:
        raise StateError("a reprint request is already pending")
    req = ApprovalRequest(
        kind=RequestKind.REPRINT,
        status=RequestStatus.PENDING,
        office_id=record.office_id,
        record_id=record.id,
        reason=reason.strip(),
        payload={},
        requested_by_id=user.id,
    )
    session.add(req)
    session.flush()
    audit_view(
        session,
        user,
        WebTag.REPRINT_REQUEST,
        subject=record.request_id,
        office_code=record.office.code,
        details={"request": req.id, "reason": req.reason},
    )
    return req


def previous_card(session: Session, record: Record) -> dict[str, Any]:
    """The card a reprint of issued ``record`` makes invalid: the latest issued blank's serial
    and chip UID as the ledger knows them (``None`` when it does not)."""
    from printsrv.ledger.blanks import last_issued_blank

    blank = last_issued_blank(session, record.id)
    return {
        "blank_serial": blank.serial if blank is not None else None,
        "chip_uid": blank.chip_uid if blank is not None else None,
        "issued_at": record.issued_at.isoformat() if record.issued_at else None,
        "status": "invalid",
        "note": "the previous card is invalid once reprinted: recover it from the resident "
        "and record it for destruction (Berita Acara Pemusnahan)",
    }


def pending_requests(session: Session, office: Office) -> list[ApprovalRequest]:
    return list(
        session.scalars(
            select(ApprovalRequest)
            .options(joinedload(ApprovalRequest.record), joinedload(ApprovalRequest.requested_by))
            .where(
                ApprovalRequest.office_id.in_(visible_office_ids(session, office)),
                ApprovalRequest.status == RequestStatus.PENDING,
            )
            .order_by(ApprovalRequest.id)
        )
    )


def get_visible_request(session: Session, office: Office, request_id: int) -> ApprovalRequest:
    req = session.get(ApprovalRequest, request_id)
    if req is None or req.office_id not in visible_office_ids(session, office):
        raise NotFound("request not found")
    return req


def decide_reprint(
    session: Session, user: User, req: ApprovalRequest, *, approve: bool, note: str = ""
) -> None:
    """Approve or reject a reprint; the approver must not be the requester.

    An approved reprint puts the record back into the queue: a failed one as before, an issued
    one (issued → queued, reason "reprint") only while its biometrics are kept; its purge due
    time is cleared (the new issue sets it again) and the previous card is recorded in the
    approval's audit event as invalid, to be recorded for destruction."""
    require(user, "reprint.approve")
    if req.status is not RequestStatus.PENDING:
        raise StateError("request already decided")
    if req.requested_by_id == user.id:
        raise Forbidden("dual control: the requester cannot approve")
    record = req.record
    details: dict[str, Any] = {
        "request": req.id,
        "requested_by": req.requested_by.username,
        "note": note,
    }
    if approve and record is not None:
        if record.state not in (RecordState.ISSUED, RecordState.FAILED):
            raise StateError(
                f"record {record.request_id} is {record.state.value} now: only an issued or "
                "failed record can be reprinted; reject the request"
            )
        if reprint_blocked(session, record):
            raise ReprintNeedsNewRequest(record.request_id)
        details["from_state"] = record.state.value
        if record.state is RecordState.ISSUED:
            details["previous_card"] = previous_card(session, record)
            req.payload = {**(req.payload or {}), "previous_card": details["previous_card"]}
            record.media_purge_due = None
        transition(session, record, RecordState.QUEUED, actor=user.username, reason=REPRINT)
    req.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
    req.decided_by_id = user.id
    req.decided_at = datetime.now(UTC)
    req.decision_note = note or None
    if record is not None:
        outbox.publish(
            session, outbox.Topic.REPRINT_DECISION, office_code=req.office.code,
            subject=record.request_id,
            payload={"request_id": record.request_id, "office": req.office.code,
                     "approved": approve, "by": user.username, **details},
        )  # fmt: skip
    audit_view(
        session,
        user,
        WebTag.REPRINT_APPROVE if approve else WebTag.REPRINT_REJECT,
        subject=record.request_id if record else None,
        office_code=req.office.code,
        details=details,
    )


# --- audit log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page shows: a range of local dates at the reader's office (both ends
    inclusive), and optionally one actor, one event type and a subject (or its prefix)."""

    first: date
    last: date
    actor: str = ""
    tag: str = ""
    subject: str = ""


def audit_events(
    session: Session,
    office: Office,
    *,
    before: int | None = None,
    limit: int = 100,
    where: AuditFilter | None = None,
) -> list[AuditEvent]:
    """Audit events of the offices ``office`` sees, newest first, filtered by ``where``."""
    codes = [o.code for o in visible_offices(session, office)]
    stmt = select(AuditEvent).where(AuditEvent.office_code.in_(codes))
    if where is not None:
        from printsrv.localtime import office_zone

        tz, midnight = office_zone(office.code).tz, datetime.min.time()
        start = datetime.combine(where.first, midnight, tz).astimezone(UTC)
        end = datetime.combine(where.last + timedelta(days=1), midnight, tz).astimezone(UTC)
        stmt = stmt.where(AuditEvent.at >= start, AuditEvent.at < end)
        if where.actor:
            stmt = stmt.where(func.lower(AuditEvent.actor) == where.actor.lower())
        if where.tag:
            stmt = stmt.where(AuditEvent.tag == where.tag)
        if where.subject:
            stmt = stmt.where(AuditEvent.subject.startswith(where.subject, autoescape=True))
    if before is not None:
        stmt = stmt.where(AuditEvent.seq < before)
    return list(session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(limit)))


def audit_tags(session: Session, office: Office) -> list[str]:
    """The event types found in the log of the offices ``office`` sees (the filter's list)."""
    codes = [o.code for o in visible_offices(session, office)]
    return list(session.scalars(
        select(AuditEvent.tag).where(AuditEvent.office_code.in_(codes)).distinct()
        .order_by(AuditEvent.tag)
    ))


# --- users and tokens --------------------------------------------------------------------


def ensure_office(session: Session, code: str) -> Office:
    """Office ``code`` (``PP.KK`` regency or ``PP.KK.CC`` kecamatan), created from the region
    table when it does not exist yet (:func:`printsrv.offices.ensure_office`)."""
    return offices.ensure_office(session, code, actor="web")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, name: str, scope: TokenScope, office: Office, *, actor: str,
    expires_at: datetime | None = None,
) -> str:
    """Create an API token; returns the secret (shown once, only its hash is kept). A name in
    use is a :class:`StateError` that says so."""
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise StateError(f"a token named {name!r} exists: choose another name, or revoke it")
    secret = "kps_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            name=name,
            prefix=secret[:12],
            token_hash=hash_token(secret),
            scope=scope,
            office_id=office.id,
            expires_at=expires_at,
        )
    )
    session.flush()
    audit.record(
        session,
        WebTag.TOKEN_CREATE,
        actor=actor,
        office_code=office.code,
        subject=name,
        details={"scope": scope.value,
                 "expires": expires_at.isoformat() if expires_at else None},
    )
    return secret


def list_tokens(session: Session) -> list[ApiToken]:
    """Every API token, newest first (the secret is never kept, only its prefix)."""
    return list(session.scalars(
        select(ApiToken).options(joinedload(ApiToken.office)).order_by(ApiToken.id.desc())
    ))


def revoke_token(session: Session, name: str, *, actor: str) -> ApiToken:
    """Revoke token ``name`` (it stops working at once); audited."""
    token = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise NotFound(f"no token named {name!r}")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        audit.record(session, WebTag.TOKEN_REVOKE, actor=actor, office_code=token.office.code,
                     subject=name)
    return token


def token_for(session: Session, secret: str) -> ApiToken | None:
    if not secret.startswith("kps_"):
        return None
    token = session.scalar(
        select(ApiToken)
        .options(joinedload(ApiToken.office))
        .where(ApiToken.token_hash == hash_token(secret), ApiToken.revoked_at.is_(None))
    )
    now = datetime.now(UTC)
    if token is not None and token.expires_at is not None:
        expires = token.expires_at if token.expires_at.tzinfo else token.expires_at.replace(
            tzinfo=UTC)
        if expires <= now:
            return None
    if token is not None:
        token.last_used_at = now
    return token


# --- batch upload ------------------------------------------------------------------------


def import_uploaded_batch(
    session: Session, settings: Settings, data: bytes, *, accept_valid: bool, actor: str,
    office_scope: str,
) -> ImportResult:
    """Import a batch uploaded as zip bytes. The request's own unit of work ends first: the
    import runs its own transaction (and takes the database's write lock itself)."""
    from printsrv.intake.pipeline import import_batch

    session.commit()
    with tempfile.TemporaryDirectory(prefix="printsrv-api-") as tmp:
        path = Path(tmp) / "batch.zip"
        path.write_bytes(data)
        return import_batch(
            settings, path, accept_valid=accept_valid, actor=actor, office_scope=office_scope
        )
