"""Accounts: argon2 password hashes, lockout after repeated failures, TOTP."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from printsrv import audit
from printsrv.config import Settings
from printsrv.errors import InvalidValue
from printsrv.models import Office, Role, User
from printsrv.web.models import WebSession
from printsrv.web.tags import WebTag

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
TOTP_REQUIRED = frozenset({Role.ADMIN, Role.SUPERVISOR})
ISSUER = "ktp-printsrv"

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("dummy password for timing")


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise InvalidValue("password must have at least 10 characters")
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
    user = user_by_name(session, username, active=True)
    now = datetime.now(UTC)
    if user is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        audit.record(session, WebTag.LOGIN_FAIL, actor="anonymous", details={"reason": "user"})
        return LoginResult(LoginOutcome.BAD)
    if is_locked(user, now):
        audit.record(session, WebTag.LOGIN_FAIL, actor=user.username,
                     office_code=user.office.code, details={"reason": "locked"})
        return LoginResult(LoginOutcome.LOCKED)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return LoginResult(record_failure(session, user, "password", now))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return LoginResult(LoginOutcome.OK, user)


def user_by_name(session: Session, username: str, *, active: bool | None = None) -> User | None:
    """The user named ``username``, whatever its case (names are unique without case)."""
    stmt = select(User).where(func.lower(User.username) == username.strip().lower())
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    return session.scalar(stmt)


def is_locked(user: User, now: datetime | None = None) -> bool:
    """Whether the account is locked after too many failed passwords or codes."""
    locked = _aware(user.locked_until)
    return locked is not None and locked > (now or datetime.now(UTC))


def record_failure(session: Session, user: User, reason: str, now: datetime) -> LoginOutcome:
    """Count a failed password or TOTP code in the database (a replayed cookie cannot reset
    the count) and lock the account at :data:`MAX_FAILURES`."""
    user.failed_logins += 1
    audit.record(session, WebTag.LOGIN_FAIL, actor=user.username, office_code=user.office.code,
                 details={"reason": reason, "failures": user.failed_logins})
    if user.failed_logins >= MAX_FAILURES:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0
        audit.record(session, WebTag.LOCKED, actor=user.username, office_code=user.office.code,
                     details={"minutes": int(LOCKOUT.total_seconds() // 60)})
        return LoginOutcome.LOCKED
    return LoginOutcome.BAD


def complete_login(session: Session, user: User) -> str:
    """The password (and TOTP) checked: start a server-side session, return its token."""
    user.failed_logins = 0
    user.locked_until = None
    audit.record(session, WebTag.LOGIN_OK, actor=user.username, office_code=user.office.code)
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_token_hash(token), user_id=user.id))
    session.flush()
    return token


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_user(session: Session, token: str) -> User | None:
    """The user of a live session ``token`` (``None`` once it ended or the user is inactive)."""
    row = session.scalar(
        select(WebSession)
        .where(WebSession.token_hash == _token_hash(token), WebSession.ended_at.is_(None))
        .options(joinedload(WebSession.user).joinedload(User.office))
    )
    if row is None or not row.user.active:
        return None
    return row.user


def end_session(session: Session, token: str, *, reason: str = "logout") -> None:
    """End one session (sign-out)."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
    if row is not None and row.ended_at is None:
        row.ended_at, row.end_reason = datetime.now(UTC), reason


def end_all_sessions(session: Session, user: User, *, reason: str, actor: str) -> int:
    """End every live session of ``user`` (password or role change, "sign out everywhere");
    audited; return how many ended."""
    rows = session.scalars(
        select(WebSession).where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))
    ).all()
    now = datetime.now(UTC)
    for row in rows:
        row.ended_at, row.end_reason = now, reason
    audit.record(session, WebTag.SESSIONS_END, actor=actor, office_code=user.office.code,
                 subject=user.username, details={"reason": reason, "sessions": len(rows)})
    return len(rows)


def needs_totp_enrolment(user: User) -> bool:
    return user.totp_secret is None and user.role in TOTP_REQUIRED


TOTP_STEP = 30


def totp_step(code: str, secret: str, now: datetime | None = None) -> int | None:
    """The time step (current, or one either side for clock drift) whose code is ``code``."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int((now or datetime.now(UTC)).timestamp()) // TOTP_STEP
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            return step
    return None


SEALED = "enc1:"


class TotpSecrets:
    """TOTP secrets sealed under the token's storage key (AES-GCM inside the token, the user
    id as associated data): the database holds ``enc1:`` and ciphertext, never the secret."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @staticmethod
    def _ref(user_id: int) -> bytes:
        return f"totp-secret:{user_id}".encode()

    def seal(self, user_id: int, secret: str) -> str:
        from printsrv.keys import KeyStore

        with KeyStore.open(self.settings) as keys:
            sealed = keys.wrap_data_key(secret.encode(), self._ref(user_id))
        return SEALED + base64.b64encode(sealed).decode()

    def open(self, user_id: int, stored: str) -> str:
        """The secret of ``stored``; a secret stored in clear (before sealing) as it is."""
        if not stored.startswith(SEALED):
            return stored
        from printsrv.keys import KeyStore

        with KeyStore.open(self.settings) as keys:
            return keys.unwrap_data_key(base64.b64decode(stored[len(SEALED):]),
                                        self._ref(user_id)).decode()

    def seal_clear_secrets(self, session: Session) -> int:
        """Seal every secret still stored in clear (``init`` after an upgrade)."""
        users = session.scalars(select(User).where(User.totp_secret.is_not(None))).all()
        clear = [u for u in users if u.totp_secret and not u.totp_secret.startswith(SEALED)]
        for user in clear:
            user.totp_secret = self.seal(user.id, user.totp_secret or "")
        return len(clear)


def accept_totp(
    user: User, code: str, vault: TotpSecrets, now: datetime | None = None
) -> bool:
    """Check ``code`` against the user's secret; a code (its time step) is accepted once:
    a step at or before the last accepted one is refused. A secret found in clear is sealed."""
    if user.totp_secret is None:
        return False
    secret = vault.open(user.id, user.totp_secret)
    step = totp_step(code, secret, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    if not user.totp_secret.startswith(SEALED):
        user.totp_secret = vault.seal(user.id, secret)
    return True


def verify_totp(secret: str, code: str) -> bool:
    """Whether ``code`` is a current code of ``secret`` (enrolment's first code)."""
    return totp_step(code, secret) is not None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def enrol_totp(
    session: Session, user: User, secret: str, code: str, vault: TotpSecrets
) -> bool:
    """Enrol ``secret`` when ``code`` proves the authenticator has it. Refused once the user
    has a secret: a stale enrolment page or cookie can never replace an enrolled secret (an
    admin resets it with :func:`reset_totp`)."""
    step = totp_step(code, secret)
    if user.totp_secret is not None or step is None:
        return False
    user.totp_secret, user.totp_last_step = vault.seal(user.id, secret), step
    audit.record(session, WebTag.TOTP_ENROL, actor=user.username, office_code=user.office.code)
    return True


def reset_totp(session: Session, user: User, *, actor: str) -> None:
    """An admin clears a user's TOTP secret (a lost phone): the user enrols again at the next
    sign-in; every session of the user ends. Audited."""
    user.totp_secret, user.totp_last_step = None, None
    audit.record(session, WebTag.TOTP_RESET, actor=actor, office_code=user.office.code,
                 subject=user.username)
    end_all_sessions(session, user, reason="totp_reset", actor=actor)


def set_password(session: Session, user: User, password: str, *, actor: str) -> None:
    """A new password; every session of the user ends."""
    user.password_hash = hash_password(password)
    end_all_sessions(session, user, reason="password_change", actor=actor)


def set_role(session: Session, user: User, role: Role, *, actor: str) -> None:
    """A new role; every session of the user ends (its rights changed)."""
    old, user.role = user.role, role
    audit.record(session, WebTag.ROLE_CHANGE, actor=actor, office_code=user.office.code,
                 subject=user.username, details={"from": old.value, "to": role.value})
    end_all_sessions(session, user, reason="role_change", actor=actor)


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
    if user_by_name(session, username) is not None:
        raise InvalidValue(f"user {username!r} exists (names are compared without case)")
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
