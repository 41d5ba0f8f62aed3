"""The audit log reads as sentences in the reader's language, with the raw event behind a
toggle, and filters by actor, event type, date range and subject, a date range per page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from printsrv import audit
from printsrv.db import unit_of_work
from printsrv.models import AuditEvent
from tests.web.conftest import sign_in


def _events(settings: Any) -> None:
    rows = [
        ("station:card:issue", "st1", "PC-1", {"blank_serial": "KTP-000007"},
         datetime(2026, 12, 4, 23, 50, tzinfo=UTC)),   # 5 Dec 06:50 WIB
        ("station:card:spoil", "st1", "PC-2", {"cause": "chip_failure"},
         datetime(2026, 12, 3, 2, 0, tzinfo=UTC)),     # 3 Dec 09:00 WIB
        ("record:record:state_change", "supervisor1", "PC-3", {"from": "held", "to": "queued"},
         datetime(2026, 12, 4, 23, 55, tzinfo=UTC)),
    ]
    with unit_of_work(settings) as session:
        for tag, actor, subject, details, _at in rows:
            audit.record(session, tag, actor=actor, office_code="35.26.01", subject=subject,
                         details=details)
    with unit_of_work(settings) as session:
        for tag, _actor, subject, _details, at in rows:
            session.execute(update(AuditEvent).where(AuditEvent.tag == tag,
                                                     AuditEvent.subject == subject).values(at=at))


def _page(client: Any, lang: str, **query: str) -> str:
    """GET with dates and type; POST (the form) when it names an actor or a subject."""
    with client.session_transaction() as sess:
        sess["lang"] = lang
    if "actor" in query or "subject" in query:
        form = client.get("/audit").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
        assert token is not None
        response = client.post("/audit", data={**query, "csrf_token": token[1]})
    else:
        response = client.get("/audit", query_string=query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_sentences_in_both_languages(settings: Any, world: Any, client: Any) -> None:
    _events(settings)
    sign_in(client, settings, "auditor_own")
    page = _page(client, "id", **{"from": "2026-12-05"})
    assert "st1 menerbitkan kartu PC-1 pada blangko KTP-000007" in page
    assert "supervisor1 mengubah status rekaman PC-3 (ditahan → antre)" in page
    assert "<details>" in page and "station:card:issue" in page  # the raw event, folded
    assert "PC-2" not in page  # 3 December is outside the day shown
    page = _page(client, "en", **{"from": "2026-12-05"})
    assert "st1 issued card PC-1 on blank KTP-000007" in page
    assert "supervisor1 changed the state of record PC-3 (held → queued)" in page


def test_filters_and_date_pages(settings: Any, world: Any, client: Any) -> None:
    _events(settings)
    sign_in(client, settings, "auditor_own")
    page = _page(client, "id", **{"from": "2026-12-01", "to": "2026-12-05"})
    assert "PC-1" in page and "PC-2" in page and "PC-3" in page
    assert "(Gagal tulis chip)" in page
    only = _page(client, "id", **{"from": "2026-12-01", "to": "2026-12-05", "actor": "ST1",
                                  "tag": "station:card:spoil"})
    assert "PC-2" in only and "PC-1" not in only and "PC-3" not in only
    by_subject = _page(client, "id", **{"from": "2026-12-01", "to": "2026-12-05",
                                        "subject": "PC-3"})
    assert "PC-3" in by_subject and "PC-1" not in by_subject
    day = _page(client, "id", **{"from": "2026-12-04", "to": "2026-12-04"})
    assert "PC-1" not in day  # 23:50 UTC on the 4th is the 5th in WIB
    assert "from=2026-12-03" in day and "from=2026-12-05" in day  # earlier / later days
    assert client.get("/audit?from=yesterday").status_code == 400
