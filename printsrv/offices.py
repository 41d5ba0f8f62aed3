"""Offices: the one home of finding an office by its code, creating a regency or kecamatan
office from the region table, and deciding which offices a member of an office (a user, an API
token, a station) sees: a regency sees itself and its kecamatan offices, a kecamatan itself."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
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


def find_office(session: Session, code: str) -> Office | None:
    """The office with ``code``, or None."""
    return session.scalar(select(Office).where(Office.code == code))


def office_by_code(session: Session, code: str) -> Office:
    """The office with ``code``; :class:`NotFound` when there is none."""
    office = find_office(session, code)
    if office is None:
        raise NotFound(f"no office {code!r}")
    return office


def ensure_office(session: Session, code: str, *, actor: str) -> Office:
    """The office ``code`` (``PP.KK`` regency/city or ``PP.KK.CC`` kecamatan), created with its
    regency from the Kemendagri region table when missing (an audit event each).

    Raises :class:`NotFound` for a code the region table does not know.
    """
    office = find_office(session, code)
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


# --- who sees what --------------------------------------------------------------------------


def visible_office_ids(session: Session, office: Office) -> list[int]:
    """The offices a member of ``office`` sees: a regency sees itself and its kecamatan
    offices, a kecamatan sees itself. The only scoping rule of the web app, the API and the
    station's claim (their codes are remembered for audit events, see :func:`office_code`)."""
    remember_code(session, office.id, office.code)
    if office.kind is not OfficeKind.REGENCY:
        return [office.id]
    children = session.execute(
        select(Office.id, Office.code).where(Office.parent_id == office.id)
    ).all()
    for office_id, code in children:
        remember_code(session, office_id, code)
    return [office.id, *(office_id for office_id, _ in children)]


def visible_offices(session: Session, office: Office) -> list[Office]:
    """The offices a member of ``office`` sees (:func:`visible_office_ids`), by code."""
    ids = visible_office_ids(session, office)
    return list(session.scalars(select(Office).where(Office.id.in_(ids)).order_by(Office.code)))


def visible_office(session: Session, viewer: Office, code: str) -> Office:
    """Office ``code`` if a member of ``viewer`` sees it; otherwise :class:`NotFound` (the same
    answer as for an office that does not exist)."""
    for office in visible_offices(session, viewer):
        if office.code == code:
            return office
    raise NotFound("office not found")


def code_within(code: str, scope: str) -> bool:
    """Whether office ``code`` is office ``scope`` or one of its kecamatan offices, by code
    alone (for records whose offices may not exist yet: an API client's batch)."""
    return code == scope or code.startswith(scope + ".")


def code_within_clause(scope: str) -> ColumnElement[bool]:
    """:func:`code_within` as a condition on :class:`Office` rows."""
    return or_(Office.code == scope, Office.code.startswith(scope + "."))


def scope_office_ids(session: Session, code: str) -> list[int]:
    """The offices a member of office ``code`` sees; empty for an unknown code."""
    office = find_office(session, code)
    return [] if office is None else visible_office_ids(session, office)
