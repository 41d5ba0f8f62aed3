"""IKD on the web: a supervisor enters a day or uploads a CSV (bad lines named, offices outside
the user's scope refused); the month page and the auditors' anomaly flag."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from flask import Flask

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger.blanks import receive_blanks
from printsrv.localtime import local_date
from tests.web.conftest import World, sign_in

HEADER = "date,office_code,activations\n"


def test_the_web_page_and_the_anomaly_flag(app_nocsrf: Flask, settings: Settings,
                                           world: World) -> None:
    last_month = local_date("35.26.01").replace(day=1) - timedelta(days=3)
    with unit_of_work(settings) as session:
        receive_blanks(session, office_code="35.26.01", first="KTP-000001", last="KTP-000010",
                       handover_number="BAST-IKD-3", actor="t",
                       at=datetime.combine(last_month, datetime.min.time(), UTC)
                       + timedelta(hours=5))  # fmt: skip
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    ok = client.post(f"/desk/ikd?month={last_month:%Y-%m}",
                     data={"day": last_month.isoformat(), "office": "35.26.01",
                           "activations": "3"})
    assert ok.status_code == 302
    outside = client.post("/desk/ikd", data={"day": last_month.isoformat(),
                                             "office": "35.27.01", "activations": "3"})
    assert outside.status_code == 422 and "35.27.01" in outside.get_data(as_text=True)
    upload = client.post("/desk/ikd", data={"csv": (io.BytesIO(
        (HEADER + "2026-01-02,35.26.01,x\n").encode()), "day.csv")},
        content_type="multipart/form-data")
    assert upload.status_code == 422 and "line 2: activations" in upload.get_data(as_text=True)
    page = client.get(f"/desk/ikd?month={last_month:%Y-%m}").get_data(as_text=True)
    assert "30%" in page and "di bawah target" in page
    sign_in(client, settings, "auditor_reg")
    flags = client.get("/anomalies").get_data(as_text=True)
    section = flags.split('id="flags-ikd_below_target"')[1].split("</section>")[0]
    assert "35.26.01" in section and "30%" in section
