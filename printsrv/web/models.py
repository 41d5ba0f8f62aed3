"""Tables of the web app: API tokens and dual-control requests (reprints, stock adjustments)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from printsrv.models import Base, Office, Record, User, _enum, utcnow


class TokenScope(enum.StrEnum):
    """A station token (a print station reporting in) or an integration client token."""

    STATION = "station"
    CLIENT = "client"


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[TokenScope] = mapped_column(_enum(TokenScope, "token_scope"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"))
    office: Mapped[Office] = relationship()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    #: After this moment the token no longer works (``None``: until revoked).
    expires_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser session, held on the server: the cookie carries a random token,
    the table its SHA-256. Sign-out ends the row; a password or role change and an admin's
    "sign out everywhere" end every row of the user, so a saved cookie opens nothing."""

    __tablename__ = "web_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    user: Mapped[User] = relationship()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))


class RequestKind(enum.StrEnum):
    REPRINT = "reprint"
    ADJUSTMENT = "adjustment"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ApprovalRequest(Base):
    """A sensitive act requested by one person and approved or rejected by another (dual
    control): a reprint of a record, or a stock adjustment."""

    __tablename__ = "approval_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RequestKind] = mapped_column(_enum(RequestKind, "request_kind"))
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus, "request_status"))
    office_id: Mapped[int] = mapped_column(ForeignKey("office.id"), index=True)
    office: Mapped[Office] = relationship()
    record_id: Mapped[int | None] = mapped_column(ForeignKey("record.id"))
    record: Mapped[Record | None] = relationship()
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)


#: The queue page lists an office's records in id order (keyset pagination).
Index("ix_record_office_id_id", Record.office_id, Record.id)
