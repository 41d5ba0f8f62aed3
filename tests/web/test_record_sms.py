"""The record page shows the pickup SMS: its day, number, state and report, in id and en."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from flask import Flask

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import Record
from printsrv.notify.models import Notification, NotificationState
from tests.web.conftest import World, sign_in


def test_the_record_page_shows_the_pickup_sms(app_nocsrf: Flask, settings: Settings,
                                             world: World) -> None:
    record_id = world.records["own_queued"]
    with unit_of_work(settings) as s:
        record = s.get(Record, record_id)
        assert record is not None
        now = datetime.now(UTC)
        s.add(Notification(
            message_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), kind="ready",
            request_id=record.request_id, office_code=record.office.code,
            phone="+6281234567890", text="KTP-el Anda sudah jadi. Ref X",
            state=NotificationState.DELIVERED, attempts=1, next_attempt_at=now,
            pickup_day=date(2026, 12, 7), report="delivered", created_at=now, sent_at=now))
        s.add(Notification(
            message_id=str(uuid.uuid4()), event_id=str(uuid.uuid4()), kind="ready",
            request_id=record.request_id, office_code=record.office.code, phone=None,
            text="…", state=NotificationState.INVALID, attempts=0, next_attempt_at=now,
            error="no phone number on the record", created_at=now))  # fmt: skip
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    page = client.get(f"/records/{record_id}").get_data(as_text=True)
    assert "Pemberitahuan SMS" in page and "07-12-2026" in page and "+6281234567890" in page
    assert "diterima ponsel" in page and "nomor tidak dapat dipakai" in page
    client.post("/lang", data={"lang": "en", "next": "/"})
    page = client.get(f"/records/{record_id}").get_data(as_text=True)
    assert "SMS notifications" in page and "delivered to the phone" in page
