"""Accounts: argon2 password hashes, lockout after repeated failures, TOTP."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv import audit
from printsrv.models import Office, Role, User
from printsrv.web.tags import WebTag

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
TOTP_REQUIRED = frozenset({Role.ADMIN, Role.SUPERVISOR})
ISSUER = "ktp-printsrv"

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("dummy password for timing")


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("password must have at least 10 characters")
    return _hasher.hash(password)


class LoginOutcome(StrEnum):
    OK = "ok"
    BAD = "bad"
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None


def _aware(at: datetime | None) -> datetime | None:
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at


def check_password(session: Session, username: str, password: str) -> LoginResult:
    """Verify a password; count failures and lock the account after :data:`MAX_FAILURES`.
    A locked account is refused even with the right password until the lock expires."""
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    now = datetime.now(UTC)
    if user is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        audit.record(session, WebTag.LOGIN_FAIL, actor="anonymous", details={"reason": "user"})
        return LoginResult(LoginOutcome.BAD)
    locked = _aware(user.locked_until)
    if locked is not None and locked > now:
        audit.record(session, WebTag.LOGIN_FAIL, actor=user.username,
                     office_code=user.office.code, details={"reason": "locked"})
        return LoginResult(LoginOutcome.LOCKED)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        user.failed_logins += 1
        details = {"reason": "password", "failures": user.failed_logins}
        audit.record(session, WebTag.LOGIN_FAIL, actor=user.username,
                     office_code=user.office.code, details=details)
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            audit.record(session, WebTag.LOCKED, actor=user.username,
                         office_code=user.office.code, details={"minutes": 15})
            return LoginResult(LoginOutcome.LOCKED)
        return LoginResult(LoginOutcome.BAD)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return LoginResult(LoginOutcome.OK, user)


def complete_login(session: Session, user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None
    audit.record(session, WebTag.LOGIN_OK, actor=user.username, office_code=user.office.code)


def needs_totp_enrolment(user: User) -> bool:
    return user.totp_secret is None and user.role in TOTP_REQUIRED


def verify_totp(secret: str, code: str) -> bool:
    code = code.strip().replace(" ", "")
    return code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def enrol_totp(session: Session, user: User, secret: str) -> None:
    user.totp_secret = secret
    audit.record(session, WebTag.TOTP_ENROL, actor=user.username, office_code=user.office.code)


def create_user(
    session: Session,
    username: str,
    role: Role,
    office: Office,
    password: str,
    *,
    full_name: str = "",
    actor: str = "cli",
) -> User:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} exists")
    user = User(
        username=username,
        full_name=full_name,
        role=role,
        office_id=office.id,
        password_hash=hash_password(password),
        failed_logins=0,
        active=True,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        WebTag.USER_CREATE,
        actor=actor,
        office_code=office.code,
        subject=username,
        details={"role": role.value},
    )
    return user
