"""The pickup notifications: one row per message; a ready card's pickup day is on its row."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.models import Base, _enum, utcnow


class NotificationState(enum.StrEnum):
    PENDING = "pending"  # waiting to be sent (or for the morning, or for a retry)
    SENDING = "sending"  # handed to the gateway; the outcome is not known yet
    SENT = "sent"  # the gateway (or the SMSC) accepted it
    DELIVERED = "delivered"  # the handset's delivery report came back
    FAILED = "failed"  # the SMSC or the handset refused it, or every attempt failed
    INVALID = "invalid"  # no usable phone number on the record: nothing is sent


class Notification(Base):
    """One SMS to a resident. ``message_id`` is stable across attempts: the gateway's delivery
    reports name it, so a message handed over just before the sender died is never sent twice."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)  # the outbox event it answers
    kind: Mapped[str] = mapped_column(String(20))  # ready, reminder
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    office_code: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[NotificationState] = mapped_column(
        _enum(NotificationState, "notification_state")
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    pickup_day: Mapped[date | None] = mapped_column(Date)  # booked against the daily capacity
    gateway: Mapped[str | None] = mapped_column(String(20))
    gateway_reply: Mapped[str | None] = mapped_column(Text)
    report: Mapped[str | None] = mapped_column(String(40))  # the last delivery report
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempted_at: Mapped[datetime | None]  # the last time it was handed to the gateway
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    __table_args__ = (
        Index("ix_notification_state_next", "state", "next_attempt_at"),
        Index("ix_notification_office_day", "office_code", "pickup_day"),
    )
