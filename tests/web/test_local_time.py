"""Pages show times in the office's zone with its name, never bare UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from printsrv import audit
from printsrv.db import unit_of_work
from printsrv.models import AuditEvent
from tests.web.conftest import sign_in


def test_audit_and_record_pages_show_local_time(settings: Any, world: Any, client: Any) -> None:
    with unit_of_work(settings) as session:
        audit.record(session, "test:record:touch", actor="tester", office_code="35.26.01",
                     subject="PC-352601-000001", details={})
        session.execute(update(AuditEvent).where(AuditEvent.tag == "test:record:touch")
                        .values(at=datetime(2026, 12, 4, 23, 50, 5, tzinfo=UTC)))
    sign_in(client, settings, "auditor_own")
    # the event's local day (the page shows today's by default, and today moves)
    page = client.get("/audit?from=2026-12-05").get_data(as_text=True)
    assert "2026-12-05 06:50:05 WIB" in page
    assert "2026-12-04 23:50:05" not in page
    for stamp in re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?! W)", page):
        raise AssertionError(f"a time without its zone on the audit page: {stamp}")
