"""Pickup days: the first day an office is open and has room, and the message that says so."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printsrv.errors import ConfigError
from printsrv.notify.models import Notification
from printsrv.notify.rules import HARI, PickupRules

#: How far ahead a pickup day is looked for before giving up (a misconfigured office).
HORIZON_DAYS = 366


def first_free_day(session: Session, office_code: str, rules: PickupRules, ready: date) -> date:
    """The first day from ``ready`` + ``first_day_after`` on which the office is open, not
    closed, and has fewer than ``per_day`` cards booked. The caller holds the sender's lock
    (one sender process books at a time)."""
    start = ready + timedelta(days=rules.first_day_after)
    booked = dict(
        session.execute(
            select(Notification.pickup_day, func.count())
            .where(Notification.office_code == office_code,
                   Notification.pickup_day >= start,
                   Notification.pickup_day < start + timedelta(days=HORIZON_DAYS))
            .group_by(Notification.pickup_day)
        ).all()
    )  # fmt: skip
    for offset in range(HORIZON_DAYS):
        day = start + timedelta(days=offset)
        open_day = day.weekday() in rules.days and day not in rules.closed
        if open_day and booked.get(day, 0) < rules.per_day:
            return day
    raise ConfigError(f"office {office_code}: no pickup day with room in {HORIZON_DAYS} days "
                      "(check the [pickup] days, closed dates and per_day)")


def ready_text(
    *, office_name: str, rules: PickupRules, day: date, zone: str, request_id: str
) -> str:
    """The SMS (Bahasa Indonesia): ready, where, from which day and hours, what to bring, and a
    short reference. No NIK, name or other personal data."""
    where = office_name + (f", {rules.address}" if rules.address else "")
    return (
        f"KTP-el Anda sudah jadi. Ambil di {where} mulai {HARI[day.weekday()]} "
        f"{day:%d-%m-%Y}, pukul {rules.hours} {zone}. Bawa {rules.bring}. "
        f"Ref {short_reference(request_id)}"
    )


def short_reference(request_id: str) -> str:
    """The last 8 characters of the request id: enough for the desk to find the card."""
    return request_id[-8:].upper()
