"""Offices: the one place that creates a regency or kecamatan office from the region table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv import audit, regions
from printsrv.audit import AuditTag
from printsrv.errors import NotFound
from printsrv.models import Office, OfficeKind

_CODES: dict[tuple[str, int], str] = {}


def _key(session: Session, office_id: int) -> tuple[str, int]:
    return str(session.get_bind().engine.url), office_id


def office_code(session: Session, office_id: int) -> str:
    """An office's code, remembered per database: codes never change, and audit events on a
    station's hot path (several per card) should not each pay a round trip for it."""
    key = _key(session, office_id)
    code = _CODES.get(key)
    if code is None:
        code = _CODES[key] = session.get_one(Office, office_id).code
    return code


def forget_codes() -> None:
    """Forget every remembered code: only for a database whose offices were deleted (tests
    empty theirs between cases, and SQLite then hands out the same ids again)."""
    _CODES.clear()


def remember_code(session: Session, office_id: int, code: str) -> None:
    """Note an office's code already at hand (so that :func:`office_code` need not ask)."""
    _CODES[_key(session, office_id)] = code


def ensure_office(session: Session, code: str, *, actor: str) -> Office:
    """The office ``code`` (``PP.KK`` regency/city or ``PP.KK.CC`` kecamatan), created with its
    regency from the Kemendagri region table when missing (an audit event each).

    Raises :class:`NotFound` for a code the region table does not know.
    """
    office = session.scalar(select(Office).where(Office.code == code))
    if office is not None:
        return office
    region = regions.lookup(code)
    if region is None or len(code) not in (5, 8):
        raise NotFound(f"office code {code!r} is not a regency or kecamatan in the region table")
    if len(code) == 5:
        office = Office(code=code, name=f"DISDUKCAPIL {region.upper_name}", kind=OfficeKind.REGENCY)
    else:
        parent = ensure_office(session, code[:5], actor=actor)
        office = Office(
            code=code,
            name=f"KECAMATAN {region.upper_name}",
            kind=OfficeKind.KECAMATAN,
            parent_id=parent.id,
        )
    session.add(office)
    session.flush()
    audit.record(
        session,
        AuditTag.OFFICE_OFFICE_CREATE,
        actor=actor,
        office_code=code,
        subject=code,
        details={"name": office.name, "kind": office.kind.value},
    )
    return office
