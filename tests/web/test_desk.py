"""The handover desk through the web app: find a ready card, receive it, hand it over (owner or
family with a power of attorney), the receipt PDF, follow-up, and the two-person rule."""

from __future__ import annotations

import base64
import dataclasses
import io
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select, update

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.desk import service as desk
from printsrv.desk.models import CardCollection
from printsrv.models import AuditEvent, OutboxEvent, Record, RecordState
from printsrv.notify.models import Notification
from tests.web.conftest import World, sign_in

FAMILY_NIK = "3526014101800002"


def _issued(settings: Settings, world: World, key: str = "own_queued") -> Record:
    with unit_of_work(settings) as s:
        s.execute(update(Record).where(Record.id == world.records[key])
                  .values(state=RecordState.ISSUED, issued_at=datetime.now(UTC)))
        record = s.get(Record, world.records[key])
        assert record is not None
        s.expunge(record)
        return record


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(out, format="PNG")
    return out.getvalue()


def test_find_receive_and_hand_over_to_the_owner(app_nocsrf: Flask, settings: Settings,
                                                 world: World, tmp_path: Path) -> None:
    record = _issued(settings, world)
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    page = client.post("/desk/", data={"q": record.nik}).get_data(as_text=True)
    assert record.request_id in page and "Terima di loket" in page
    by_ref = client.post("/desk/", data={"q": record.request_id[-8:].lower()})
    assert record.request_id in by_ref.get_data(as_text=True)
    assert client.post(f"/desk/{record.id}/arrive").status_code == 302
    with unit_of_work(settings) as s:
        assert s.get(Record, record.id).state is RecordState.AT_DESK  # type: ignore[union-attr]
    # The owner with someone else's NIK is refused, naming the field; nothing changes.
    bad = client.post(f"/desk/{record.id}", data={
        "relation": "owner", "collector_name": record.nama, "collector_nik": FAMILY_NIK})
    assert bad.status_code == 422 and 'data-field="collector_nik"' in bad.get_data(as_text=True)
    signature = "data:image/png;base64," + base64.b64encode(_png()).decode()
    done = client.post(f"/desk/{record.id}", data={
        "relation": "owner", "collector_name": record.nama, "collector_nik": record.nik,
        "signature": signature})
    assert done.status_code == 302 and "/desk/receipts/" in done.headers["Location"]
    with unit_of_work(settings) as s:
        assert s.get(Record, record.id).state is RecordState.COLLECTED  # type: ignore[union-attr]
        [collection] = s.scalars(select(CardCollection)).all()
        assert collection.signature_png and collection.officer == "operator_own"
        moves = [(e.payload["from"], e.payload["to"]) for e in s.scalars(
            select(OutboxEvent).where(OutboxEvent.subject == record.request_id,
                                      OutboxEvent.topic == "record.state")
            .order_by(OutboxEvent.id))]
        assert moves[-2:] == [("issued", "at_desk"), ("at_desk", "collected")]
        handover = s.scalars(select(AuditEvent).where(AuditEvent.tag == desk.HANDOVER_TAG)).one()
        assert record.nik not in str(handover.details)  # the NIK stays off the audit log
        collection_id = collection.id
    pdf = client.get(f"/desk/receipts/{collection_id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    for words in ("TANDA TERIMA KTP-EL", "Yang menerima", "Petugas loket", record.nik,
                  "Pemilik KTP-el", "Tanda tangan penerima"):
        assert words in text, words
    # Handed over once: the desk finds it no more.
    again = client.post("/desk/", data={"q": record.nik}).get_data(as_text=True)
    assert "desk-results" not in again and "Tidak ada kartu siap ambil" in again


def test_a_family_member_needs_a_power_of_attorney(app_nocsrf: Flask, settings: Settings,
                                                   world: World) -> None:
    record = _issued(settings, world)
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    form = {"relation": "spouse", "collector_name": "SITI AMINAH", "collector_nik": FAMILY_NIK}
    refused = client.post(f"/desk/{record.id}", data=form)
    assert refused.status_code == 422
    assert 'data-field="authorization"' in refused.get_data(as_text=True)
    ok = client.post(f"/desk/{record.id}", data={**form, "authorization": "SK-12/2026"})
    assert ok.status_code == 302
    with unit_of_work(settings) as s:
        collection = s.scalars(select(CardCollection)).one()
        assert (collection.relation, collection.authorization) == ("spouse", "SK-12/2026")


def test_two_person_rule_and_its_anomaly(app_nocsrf: Flask, settings: Settings,
                                         world: World) -> None:
    record = _issued(settings, world)
    two = dataclasses.replace(settings, pickup={"default": {"two_person_handover": True}})
    with unit_of_work(settings) as s:
        rec = s.get(Record, record.id)
        assert rec is not None
        collector = desk.Collector(name=rec.nama, relation="owner", nik=rec.nik)
        try:
            desk.hand_over(s, two, rec, collector, officer="operator_own")
        except desk.InvalidCollection as exc:
            assert exc.field == "witness"
        else:
            raise AssertionError("handed over without the second officer")
        try:
            desk.hand_over(s, two, rec, collector, officer="operator_own",
                           witness="OPERATOR_OWN")
        except desk.InvalidCollection as exc:
            assert exc.field == "witness"
        else:
            raise AssertionError("the officer was their own witness")
        collection = desk.hand_over(s, settings, rec, collector, officer="op1")
        collection.printed_by = "op1"  # the same person printed it
    with unit_of_work(settings) as s:
        flagged = desk.self_handovers(s, ["35.26.01"])
        assert [c.request_id for c in flagged] == [record.request_id]
    client = app_nocsrf.test_client()
    sign_in(client, settings, "auditor_reg")
    page = client.get("/anomalies").get_data(as_text=True)
    section = page.split('id="flags-self_handover"')[1].split("</section>")[0]
    assert record.request_id in section and "op1" in section


def test_follow_up_reminds_and_returns_to_storage(app_nocsrf: Flask, settings: Settings,
                                                  world: World) -> None:
    record = _issued(settings, world)
    with unit_of_work(settings) as s:
        s.execute(update(Record).where(Record.id == record.id).values(
            state=RecordState.AT_DESK, issued_at=datetime.now(UTC) - timedelta(days=95),
            data={**record.data, "phone": "0812-3456-7890"}))
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    page = client.get("/desk/follow-up").get_data(as_text=True)
    assert record.request_id in page and re.search(r"<td>9[5-6]</td>", page)
    assert client.post(f"/desk/{record.id}/remind").status_code == 302
    with unit_of_work(settings) as s:
        note = s.scalars(select(Notification).where(Notification.kind == "reminder")).one()
        assert note.phone == "+6281234567890" and "Pengingat" in note.text
        assert record.nik not in note.text
    assert client.post(f"/desk/{record.id}/return", data={"reason": ""}).status_code == 400
    assert client.post(f"/desk/{record.id}/return",
                       data={"reason": "tidak diambil 90 hari"}).status_code == 302
    with unit_of_work(settings) as s:
        assert s.get(Record, record.id).state is RecordState.ISSUED  # type: ignore[union-attr]


def test_an_auditor_has_no_desk(app_nocsrf: Flask, settings: Settings, world: World) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "auditor_reg")
    assert client.get("/desk/").status_code == 403


def test_the_monthly_report_counts_handovers_suket_and_ikd(settings: Settings,
                                                          world: World) -> None:
    from printsrv.desk.models import IkdActivation
    from printsrv.ledger.reports import render_csv, stock_report
    from printsrv.localtime import local_date

    handed, waiting = _issued(settings, world), _issued(settings, world, "other_queued")
    with unit_of_work(settings) as s:
        rec = s.get(Record, handed.id)
        assert rec is not None
        desk.hand_over(s, settings, rec, desk.Collector(name=rec.nama, relation="owner",
                                                        nik=rec.nik), officer="op1")
        today = local_date("35.26.01")
        s.add(IkdActivation(office_code="35.26.01", day=today, activations=7, source="t",
                            entered_by="t", at=datetime.now(UTC)))
    month = local_date("35.26.01").strftime("%Y-%m")
    with unit_of_work(settings) as s:
        own = stock_report(s, "35.26.01", month)
        regency = stock_report(s, "35.26", month)
        other = stock_report(s, "35.27", month)
    assert own["pickup"]["handed_over"] == 1 and own["pickup"]["ikd_activations"] == 7
    assert regency["pickup"]["handed_over"] == 1  # the roll-up includes its kecamatan
    assert other["pickup"]["not_collected"] >= 1 and waiting.request_id
    csv_text = render_csv(own, "id")
    assert "Diserahkan" in csv_text and "Aktivasi IKD" in csv_text
    assert "Handed over" in render_csv(own, "en")
