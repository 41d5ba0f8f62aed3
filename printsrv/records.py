"""Records: the state machine, decrypting a record for the card, crypto-shredding its media."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from printsrv import audit, outbox
from printsrv.audit import AuditTag
from printsrv.cardinput import CardInput
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.errors import NotFound, StateError
from printsrv.keys import KeyStore, decrypt_media
from printsrv.localtime import local_date
from printsrv.models import MediaKind, Record, RecordKey, RecordMedia, RecordState
from printsrv.offices import office_code
from printsrv.products import PRODUCTS

S = RecordState
TRANSITIONS: dict[RecordState, frozenset[RecordState]] = {
    S.QUEUED: frozenset({S.PRINTING, S.HELD, S.CANCELLED}),
    S.HELD: frozenset({S.QUEUED, S.CANCELLED}),
    S.PRINTING: frozenset({S.ISSUED, S.QUEUED, S.FAILED, S.HELD}),
    S.FAILED: frozenset({S.QUEUED, S.CANCELLED}),
    S.ISSUED: frozenset({S.QUEUED, S.AT_DESK}),
    S.AT_DESK: frozenset({S.COLLECTED, S.ISSUED}),  # ISSUED: back to storage (or a reprint)
    S.COLLECTED: frozenset(),
    S.CANCELLED: frozenset(),
}

#: The reason of an approved reprint (dual control in the web app).
REPRINT = "reprint"
#: Edges only one reason may take: an issued record goes back to the queue only for a reprint.
REASON_ONLY: dict[tuple[RecordState, RecordState], str] = {(S.ISSUED, S.QUEUED): REPRINT}


def transition(
    session: Session, record: Record, new: RecordState, *, actor: str, reason: str | None = None
) -> None:
    """Move ``record`` to ``new`` (audited); raises :class:`StateError` if not allowed."""
    old = record.state
    if record.owner_node is not None:
        raise StateError(f"record {record.request_id} is held by kecamatan node "
                         f"{record.owner_node}: recall it first")
    if new not in TRANSITIONS[old]:
        raise StateError(f"record {record.request_id}: cannot go from {old} to {new}")
    only = REASON_ONLY.get((old, new))
    if only is not None and reason != only:
        raise StateError(f"record {record.request_id}: only a {only!r} may go from {old} to {new}")
    record.state = new
    record.updated_at = datetime.now(UTC)
    if new is S.HELD:
        record.hold_reason = reason
    elif new is S.QUEUED:
        record.hold_reason = None
    if new is S.ISSUED:
        record.issued_at = datetime.now(UTC)
    audit_state_change(session, record.office_id, record.request_id,
                       state_change_details(old, new, reason), actor=actor)
    code = office_code(session, record.office_id)
    outbox.publish(session, outbox.Topic.RECORD_STATE, office_code=code,
                   subject=record.request_id,
                   payload=outbox.record_state_payload(record.request_id, code, old, new, reason))
    if new is S.CANCELLED and record.media_purged_at is None:
        purge_media(session, record, actor=actor, reason="cancelled")  # it will never be printed


def state_change_details(
    old: RecordState, new: RecordState, reason: str | None
) -> dict[str, str | None]:
    """The details of a record's state-change audit event."""
    return {"from": old.value, "to": new.value, "reason": reason}


def audit_state_change(
    session: Session, office_id: int, request_id: str, details: dict[str, str | None], *,
    actor: str,
) -> None:
    """The audit event of a record's state change (``details`` from
    :func:`state_change_details`), on the session's audit chain."""
    audit.record(
        session,
        AuditTag.RECORD_STATE_CHANGE,
        actor=actor,
        office_code=office_code(session, office_id),
        subject=request_id,
        details=details,
    )


def get_record(session: Session, request_id: str) -> Record:
    record = session.scalar(select(Record).where(Record.request_id == request_id))
    if record is None:
        raise NotFound(f"no record with request_id {request_id!r}")
    return record


def decrypt_record_media(
    session: Session, keys: KeyStore, record: Record
) -> dict[MediaKind, bytes]:
    """The record's media, decrypted in memory; raises :class:`StateError` once purged."""
    key_row = session.get(RecordKey, record.id)
    if key_row is None:
        raise StateError(f"record {record.request_id}: biometric data was purged")
    data_key = keys.unwrap_data_key(key_row.wrapped_key, record.request_id.encode())
    media = session.scalars(select(RecordMedia).where(RecordMedia.record_id == record.id))
    return {
        m.kind: decrypt_media(data_key, record.request_id, m.kind, m.nonce, m.ciphertext)
        for m in media
    }


def new_card_access_number() -> str:
    """A random 6-digit CAN (ICAO 9303-11 §4.4 password for PACE)."""
    return f"{secrets.randbelow(1_000_000):06d}"


def card_input_for(
    session: Session, keys: KeyStore, record: Record, *, actor: str, purpose: str
) -> CardInput:
    """Build the card input of ``record``; the decryption is an audit event."""
    media = decrypt_record_media(session, keys, record)
    code = office_code(session, record.office_id)
    audit.record(
        session,
        AuditTag.RECORD_MEDIA_DECRYPT,
        actor=actor,
        office_code=code,
        subject=record.request_id,
        details={"purpose": purpose, "media": sorted(k.value for k in media)},
    )
    if record.card_access_number is None and record.card_type in PRODUCTS and (
            PRODUCTS[record.card_type].has_chip):
        record.card_access_number = new_card_access_number()  # kept for the card's life
    return CardInput(
        request_id=record.request_id,
        fields={k: v for k, v in record.data.items() if isinstance(v, str)},
        photo_jpeg=media.get(MediaKind.PHOTO, b""),
        signature_png=media.get(MediaKind.SIGNATURE, b""),
        finger_right_index_fmr=media.get(MediaKind.FINGER_RIGHT_INDEX),
        finger_left_index_fmr=media.get(MediaKind.FINGER_LEFT_INDEX),
        issue_date=local_date(code),  # the office's date, not the server's or UTC's
        card_access_number=record.card_access_number,
    )


def load_card_input(
    settings: Settings, request_id: str, *, actor: str = "cli", purpose: str = "render"
) -> CardInput:
    """Decrypt one record for the card face or chip (a CLI convenience around
    :func:`card_input_for`)."""
    with KeyStore.open(settings) as keys, unit_of_work(settings) as session:
        record = get_record(session, request_id)
        return card_input_for(session, keys, record, actor=actor, purpose=purpose)


def purge_media(session: Session, record: Record, *, actor: str, reason: str | None = None) -> None:
    """Crypto-shred the record's biometrics: delete its wrapped data key and ciphertexts."""
    # Marked first: the record's pending changes and these go out in one UPDATE when the
    # deletes flush the session.
    record.media_purged_at = now = datetime.now(UTC)
    record.media_purge_due = None
    media = session.scalars(
        delete(RecordMedia).where(RecordMedia.record_id == record.id).returning(RecordMedia.kind)
    ).all()
    keys = session.scalars(
        delete(RecordKey).where(RecordKey.record_id == record.id).returning(RecordKey.record_id)
    ).all()
    code = office_code(session, record.office_id)
    audit.record(
        session,
        AuditTag.RECORD_MEDIA_PURGE,
        actor=actor,
        office_code=code,
        subject=record.request_id,
        details={"reason": reason} if reason else None,
    )
    # the confirmation others learn of (a node sends it up to its server): what was destroyed
    outbox.publish(session, outbox.Topic.MEDIA_SHRED, office_code=code, subject=record.request_id,
                   payload={"request_id": record.request_id, "office": code, "reason": reason,
                            "at": now.isoformat(), "data_key": bool(keys),
                            "media": sorted(MediaKind(k).value for k in media)})


def media_purged(session: Session, record: Record) -> bool:
    """Whether the record's biometrics are gone (shredded, or never kept): no card can be
    made from it any more."""
    return record.media_purged_at is not None or session.get(RecordKey, record.id) is None


def after_issue(
    session: Session, record: Record, *, actor: str, window_days: int, now: datetime | None = None
) -> datetime | None:
    """The biometrics of a just-issued record: shredded at once when ``window_days`` is 0,
    else kept (encrypted) until the reprint window ends; returns that due time or ``None``."""
    if window_days <= 0:
        purge_media(session, record, actor=actor, reason="issued")
        return None
    due = (now or datetime.now(UTC)).astimezone(UTC) + timedelta(days=window_days)
    record.media_purge_due = due
    return due


def purge_expired_media(
    session: Session,
    *,
    now: datetime,
    actor: str,
    office_ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> int:
    """Crypto-shred (audited, one event each) the biometrics of every issued record whose
    reprint window has ended (``media_purge_due <= now``); returns how many were shredded.

    A record queued or printing again for an approved reprint is left alone (its due time was
    cleared by the approval; the new issue sets it again). ``office_ids`` limits the sweep to
    those offices (a station sweeps its own), ``None`` sweeps all. Cheap when nothing is due:
    one probe of ``ix_record_media_purge_due``.
    """
    if office_ids is not None and not office_ids:
        return 0
    query = (
        select(Record)
        .where(
            Record.media_purge_due <= now.astimezone(UTC),
            Record.media_purged_at.is_(None),
            Record.state == RecordState.ISSUED,
        )
        .order_by(Record.media_purge_due, Record.id)
    )
    if office_ids is not None:
        query = query.where(Record.office_id.in_(list(office_ids)))
    if limit is not None:
        query = query.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Two sweepers (stations of overlapping offices, the CLI) never shred a record twice.
        query = query.with_for_update(skip_locked=True)
    shredded = 0
    for record in session.scalars(query).all():
        due = record.media_purge_due
        purge_media(
            session,
            record,
            actor=actor,
            reason=f"reprint window ended ({due.isoformat() if due else '?'})",
        )
        shredded += 1
    return shredded
