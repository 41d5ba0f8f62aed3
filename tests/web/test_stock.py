"""Stock forms through the web app: what each one changes in the ledger, refusals that change
nothing, dual control of adjustments, destruction with two officers and a witness, the Berita
Acara PDFs, CSRF on every new form, and the English catalogue."""

from __future__ import annotations

import base64
import re
import subprocess
import zlib

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger.models import (
    Adjustment,
    AdjustmentStatus,
    Blank,
    BlankState,
    Consumable,
    DestructionRecord,
    HandoverRecord,
    SpoilCause,
)
from printsrv.models import AuditEvent
from tests.web.conftest import World, sign_in
from tests.web.stockdata import make_stock, serial
from tests.web.test_security import _csrf


def _blank(settings: Settings, s: str) -> Blank:
    with unit_of_work(settings) as session:
        blank = session.scalar(select(Blank).where(Blank.serial == s))
        assert blank is not None
        session.expunge(blank)
        return blank


def _flash(client: FlaskClient, resp) -> str:  # type: ignore[no-untyped-def]
    assert resp.status_code == 303, resp.status_code
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    m = re.search(r'<p class="flash (\w+)">([^<]*)</p>', page)
    assert m, "no message shown"
    return f"{m.group(1)}: {m.group(2)}"


def _tags(settings: Settings) -> list[tuple[str, str]]:
    with unit_of_work(settings) as s:
        return [(e.tag, e.actor) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


@pytest.fixture
def stock(settings: Settings, world: World) -> dict[str, dict[str, str]]:
    return make_stock(settings)


def test_operator_records_a_spoiled_card(app_nocsrf: Flask, settings: Settings,
                                         stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    resp = client.post("/stock/spoil", data={"serial": serial("A", 22), "cause": "jam_misfeed",
                                             "note": "kartu macet di printer"})
    assert _flash(client, resp).startswith("ok")
    blank = _blank(settings, serial("A", 22))
    assert blank.state is BlankState.SPOILED and blank.spoil_cause is SpoilCause.JAM_MISFEED
    assert ("ledger:blank:spoil", "operator_own") in _tags(settings)
    # a cause reserved for write-offs is refused, nothing changes
    resp = client.post("/stock/spoil", data={"serial": serial("A", 23), "cause": "missing",
                                             "note": "x"})
    assert _flash(client, resp).startswith("error")
    assert _blank(settings, serial("A", 23)).state is BlankState.IN_HOPPER
    # an already spoiled blank: refused by the ledger, shown as a message
    resp = client.post("/stock/spoil", data={"serial": serial("A", 22), "cause": "jam_misfeed",
                                             "note": "lagi"})
    assert _flash(client, resp).startswith("error")
    # another office's blank is not found
    resp = client.post("/stock/spoil", data={"serial": serial("B", 22), "cause": "jam_misfeed",
                                             "note": "x"})
    assert resp.status_code == 404
    assert _blank(settings, serial("B", 22)).state is BlankState.IN_HOPPER


def test_receive_and_refusal_rolls_back(app_nocsrf: Flask, settings: Settings,
                                        stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_reg")  # regency supervisor receives for a kecamatan
    form = {"office": "35.26.01", "first": serial("C", 1), "last": serial("C", 50),
            "handover_number": "BAST/470/2026/07", "from_party": "Ditjen Dukcapil",
            "carton": "CTN-C1", "document_date": "2026-07-01"}
    assert _flash(client, client.post("/stock/receive", data=form)).startswith("ok")
    with unit_of_work(settings) as s:
        handover = s.scalar(select(HandoverRecord).where(HandoverRecord.number == form[
            "handover_number"]))
        assert handover is not None and handover.count == 50 and handover.actor == "supervisor_reg"
        assert str(handover.document_date) == "2026-07-01"
    # overlapping range under a new number: refused, and nothing of it is written
    form2 = dict(form, first=serial("C", 40), last=serial("C", 60), handover_number="BAST-2")
    assert _flash(client, client.post("/stock/receive", data=form2)).startswith("error")
    with unit_of_work(settings) as s:
        assert s.scalar(select(HandoverRecord).where(HandoverRecord.number == "BAST-2")) is None
        assert s.scalar(select(Blank).where(Blank.serial == serial("C", 55))) is None


def test_transfer_to_the_regency_and_ribbons(app_nocsrf: Flask, settings: Settings,
                                             stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    resp = client.post("/stock/transfer", data={
        "from_office": "35.26.01", "to_office": "35.26",
        "serials": f"{serial('A', 11)}..{serial('A', 13)}\n{serial('A', 16)}",
        "handover_number": "BAST-RETUR-1"})
    assert _flash(client, resp).startswith("ok")
    with unit_of_work(settings) as s:
        offices = {b.office.code for b in s.scalars(select(Blank).where(Blank.serial.in_(
            [serial("A", n) for n in (11, 12, 13, 16)])))}
    assert offices == {"35.26"}
    # another regency is not a transfer target
    resp = client.post("/stock/transfer", data={
        "from_office": "35.26.01", "to_office": "35.27", "serials": serial("A", 17),
        "handover_number": "BAST-X"})
    assert resp.status_code == 404
    resp = client.post("/stock/ribbons/receive", data={
        "office": "35.26.01", "kind": "ribbon", "serial": "RIB-A2", "type": "YMCKO",
        "capacity": "500"})
    assert _flash(client, resp).startswith("ok")
    st = stock["own"]["station"]
    assert _flash(client, client.post("/stock/ribbons/load", data={
        "station": st, "kind": "ribbon", "serial": "RIB-A1"})).startswith("ok")
    assert _flash(client, client.post("/stock/ribbons/load", data={
        "station": st, "kind": "ribbon", "serial": "RIB-A2"})).startswith("ok")  # replaces
    with unit_of_work(settings) as s:
        states = {c.serial: c.state.value for c in s.scalars(select(Consumable))}
    assert states["RIB-A1"] == "finished" and states["RIB-A2"] == "loaded"


def test_adjustment_needs_a_second_person(app_nocsrf: Flask, settings: Settings,
                                          stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    resp = client.post("/stock/adjustments", data={
        "office": "35.26.01", "kind": "write_off", "serials": serial("A", 18),
        "target_state": "", "reason": "tidak ditemukan saat opname"})
    assert _flash(client, resp).startswith("ok")
    with unit_of_work(settings) as s:
        adj = s.scalar(select(Adjustment).where(Adjustment.requested_by == "supervisor_own"))
        assert adj is not None
        adj_id = adj.id
    # the requester cannot approve; nothing changes
    assert client.post(f"/stock/adjustments/{adj_id}/approve", data={"note": ""}).status_code \
        == 403
    assert _blank(settings, serial("A", 18)).state is BlankState.IN_STOCK
    # an operator cannot approve at all
    sign_in(client, settings, "operator_own")
    assert client.post(f"/stock/adjustments/{adj_id}/approve", data={}).status_code == 403
    # the regency's supervisor approves: the blank is written off as missing
    sign_in(client, settings, "supervisor_reg")
    page = client.get("/stock/adjustments").get_data(as_text=True)
    assert f"ADJ-{adj_id}" in page and "tidak ditemukan saat opname" in page
    resp = client.post(f"/stock/adjustments/{adj_id}/approve", data={"note": "dicek"})
    assert _flash(client, resp).startswith("ok")
    blank = _blank(settings, serial("A", 18))
    assert blank.state is BlankState.SPOILED and blank.spoil_cause is SpoilCause.MISSING
    with unit_of_work(settings) as s:
        adj = s.get_one(Adjustment, adj_id)
        assert adj.status is AdjustmentStatus.APPROVED and adj.decided_by == "supervisor_reg"
    # deciding twice is refused
    resp = client.post(f"/stock/adjustments/{adj_id}/reject", data={"note": ""})
    assert _flash(client, resp).startswith("error")


def _pdf_text(data: bytes) -> str:
    """The text drawing operators of a reportlab PDF (its content streams are compressed)."""
    assert data.startswith(b"%PDF")
    out = []
    for m in re.finditer(rb"(?<!end)stream\r?\n(.*?)endstream", data, re.S):
        raw = m.group(1).strip()
        if raw.endswith(b"~>"):  # /ASCII85Decode first
            raw = base64.a85decode(raw.removeprefix(b"<~").removesuffix(b"~>"))
        try:
            out.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            out.append(raw.decode("latin-1"))
    return "\n".join(out)


def test_destruction_and_berita_acara_pdf(app_nocsrf: Flask, settings: Settings,
                                          stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    form = {"office": "35.26.01", "number": "BAP/470/2026/08", "officer_1": "Budi Santoso",
            "officer_1_nip": "198001012005011001", "officer_2": "Siti Aminah",
            "officer_2_nip": "198202022006022002", "witness": "Andi Wijaya",
            "witness_nip": "198303032007031003", "witness_role": "Inspektorat",
            "place": "Halaman kantor", "document_date": "2026-08-05", "serials": ""}
    # the same person twice (same NIP under another spelling of the name): refused
    bad = dict(form, officer_2="Budi S.", officer_2_nip=form["officer_1_nip"])
    assert _flash(client, client.post("/stock/destruction", data=bad)).startswith("error")
    with unit_of_work(settings) as s:
        assert s.scalar(select(DestructionRecord).where(
            DestructionRecord.number == form["number"])) is None
    # an empty serial field no longer means "every spoiled blank": the serials are named
    assert _flash(client, client.post("/stock/destruction", data=form)).startswith("error")
    # the spoiled blanks of the office, named (serials 2..4; 1 was destroyed before)
    form["serials"] = f"{serial('A', 2)}..{serial('A', 4)}"
    assert _flash(client, client.post("/stock/destruction", data=form)).startswith("ok")
    with unit_of_work(settings) as s:
        record = s.scalar(select(DestructionRecord).where(
            DestructionRecord.number == form["number"]))
        assert record is not None and record.count == 3
        assert record.officer_1 == "BUDI SANTOSO / NIP 198001012005011001"
        rid = record.id
    for n in (2, 3, 4):
        assert _blank(settings, serial("A", n)).state is BlankState.DESTROYED
    page = client.get("/ledger/documents").get_data(as_text=True)
    assert form["number"] in page
    resp = client.get(f"/ledger/documents/destruction/{rid}.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    text = _pdf_text(resp.data)
    for needle in ("BERITA ACARA PEMUSNAHAN", "BAP/470/2026/08", serial("A", 2),
                   serial("A", 4), "Cacat cetak", "BUDI SANTOSO", "198303032007031003",
                   "Saksi \\(Inspektorat\\)", "05-08-2026"):
        assert needle in text, needle
    assert serial("A", 1) not in text  # destroyed under the earlier record
    assert ("web:document:download", "supervisor_own") in _tags(settings)
    # an auditor of the office can download it too; another regency cannot see it
    sign_in(client, settings, "auditor_own")
    assert client.get(f"/ledger/documents/destruction/{rid}.pdf").status_code == 200
    sign_in(client, settings, "auditor_other")
    assert client.get(f"/ledger/documents/destruction/{rid}.pdf").status_code == 404
    # nothing left to destroy: refused
    sign_in(client, settings, "supervisor_own")
    again = dict(form, number="BAP-2")
    assert _flash(client, client.post("/stock/destruction", data=again)).startswith("error")


def test_handover_pdf_lists_the_serials(app_nocsrf: Flask, settings: Settings,
                                        stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "auditor_own")
    resp = client.get(f"/ledger/documents/handover/{stock['own']['handover']}.pdf")
    assert resp.status_code == 200
    text = _pdf_text(resp.data)
    for needle in ("BERITA ACARA SERAH TERIMA", "BAST-OWN-1", serial("A", 1), serial("A", 30),
                   "30 keping", "Ditjen Dukcapil"):
        assert needle in text, needle


def test_handover_pdf_has_the_giver_and_the_receiver(app_nocsrf: Flask, settings: Settings,
                                                     stock: dict[str, dict[str, str]]) -> None:
    """The transfer form's *Yang menyerahkan* / *Yang menerima* go onto the BAST with NIPs."""
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    resp = client.post("/stock/transfer", data={
        "from_office": "35.26.01", "to_office": "35.26", "serials": serial("A", 11),
        "handover_number": "BAST-SIGN-1", "giver_name": "Siti Aminah",
        "giver_nip": "198001012005012001", "receiver_name": "Budi Santoso",
        "receiver_nip": "197505052000031003"})
    assert _flash(client, resp).startswith("ok")
    with unit_of_work(settings) as s:
        record = s.scalar(select(HandoverRecord).where(HandoverRecord.number == "BAST-SIGN-1"))
        assert record is not None
        rid = record.id
        assert record.giver == "SITI AMINAH / NIP 198001012005012001"
    pdf = settings.instance_dir / "bast.pdf"
    pdf.write_bytes(client.get(f"/ledger/documents/handover/{rid}.pdf").data)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    lines = [ln for ln in text.splitlines() if ln.strip()]
    roles = next(i for i, ln in enumerate(lines) if "Yang menyerahkan" in ln)
    assert "Yang menerima" in lines[roles]
    names = next(ln for ln in lines[roles:] if "SITI AMINAH" in ln)
    assert "BUDI SANTOSO" in names and names.index("SITI") < names.index("BUDI")
    nips = next(ln for ln in lines[roles:] if "198001012005012001" in ln)
    assert "197505052000031003" in nips


NEW_POSTS = [
    "/stock/receive", "/stock/transfer", "/stock/spoil", "/stock/ribbons/receive",
    "/stock/ribbons/load", "/stock/adjustments", "/stock/adjustments/{adj}/approve",
    "/stock/adjustments/{adj}/reject", "/stock/destruction",
]


@pytest.mark.parametrize("path", NEW_POSTS)
def test_new_posts_need_csrf(app: Flask, settings: Settings, stock: dict[str, dict[str, str]],
                             path: str) -> None:
    client = app.test_client()
    sign_in(client, settings, "supervisor_reg")
    before = len(_tags(settings))
    resp = client.post(path.format(adj=stock["own"]["adjustment"]),
                       data={"office": "35.26.01", "serial": serial("A", 21), "note": "x"})
    assert resp.status_code == 400
    assert len(_tags(settings)) == before


def test_new_forms_carry_csrf_and_work_with_it(app: Flask, settings: Settings,
                                               stock: dict[str, dict[str, str]]) -> None:
    client = app.test_client()
    sign_in(client, settings, "supervisor_own")
    seen = 0
    for page in ("/stock", "/stock/adjustments", "/stock/destruction"):
        html = client.get(page).get_data(as_text=True)
        for form in re.findall(r"<form.*?</form>", html, re.S):
            if 'method="post"' in form:
                seen += 1
                assert 'name="csrf_token"' in form, form[:200]
    assert seen >= 7
    token = _csrf(client.get("/stock").get_data(as_text=True))
    resp = client.post("/stock/spoil", data={"serial": serial("A", 24), "cause": "test_print",
                                             "note": "cetak uji", "csrf_token": token})
    assert resp.status_code == 303
    assert _blank(settings, serial("A", 24)).state is BlankState.SPOILED


def test_stock_pages_in_english(app_nocsrf: Flask, settings: Settings,
                                stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    page = client.get("/stock").get_data(as_text=True)
    assert "Catat kartu rusak" in page and "Terima blangko" in page
    client.post("/lang", data={"lang": "en", "next": "/stock"})
    page = client.get("/stock").get_data(as_text=True)
    assert "Record a spoiled card" in page and "Receive blanks" in page
    assert "Stock adjustments" in client.get("/stock/adjustments").get_data(as_text=True)
    assert "Destruction of spoiled blanks" in client.get("/stock/destruction").get_data(
        as_text=True)
    assert "Anomaly flags" in client.get("/anomalies").get_data(as_text=True)


def test_station_resume_button(app_nocsrf: Flask, settings: Settings,
                               stock: dict[str, dict[str, str]]) -> None:
    from printsrv.ledger.models import Station, StationState

    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    station = stock["own"]["station"]
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    assert f"/stations/{station}/resume" not in page  # "Lanjutkan" only when paused
    # the station never ran: nothing to resume, said so
    assert _flash(client, client.post(f"/stations/{station}/resume")).startswith("error")
    with unit_of_work(settings) as s:
        row = s.scalars(select(Station).where(Station.name == "ST-OWN")).one()
        row.state, row.pause_reason, row.pid = StationState.PAUSED, "printer jam", 4242
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    assert f"/stations/{station}/resume" in page
    assert _flash(client, client.post(f"/stations/{station}/resume")).startswith("ok")
    with unit_of_work(settings) as s:
        row = s.scalars(select(Station).where(Station.name == "ST-OWN")).one()
        assert row.details.get("resume") is True
    assert ("web:station:resume", "operator_own") in _tags(settings)
    sign_in(client, settings, "auditor_own")
    assert client.post(f"/stations/{station}/resume").status_code == 403


def test_station_page_speaks_the_readers_language(app_nocsrf: Flask, settings: Settings,
                                                  world: World,
                                                  stock: dict[str, dict[str, str]]) -> None:
    """A paused station's state, pause reason and card fates read in Indonesian, or in English
    once the reader chooses it; the status JSON carries the same words for the live page."""
    from printers.api import Fault
    from printsrv.ledger.models import Station, StationState
    from printsrv.station.journal import CardJob, CardOutcome, CardPhase
    from printsrv.station.reasons import PAUSE_TEXT

    with unit_of_work(settings) as s:
        row = s.scalars(select(Station).where(Station.name == "ST-OWN")).one()
        row.state, row.pause_reason = StationState.PAUSED, PAUSE_TEXT[Fault.COVER_OPEN]
        s.add(CardJob(station="ST-OWN", record_id=next(iter(world.records.values())),
                      blank_serial=serial("A", 3), phase=CardPhase.FINISHED,
                      outcome=CardOutcome.SPOILED, cause="chip_failure"))
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    station = stock["own"]["station"]
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    assert "Penutup printer terbuka: tutup kembali" in page and ">jeda<" in page
    assert "rusak Gagal tulis chip" in page and "cover open" not in page
    status = client.get(f"/stations/{station}/status.json").get_json()
    assert status["pause_reason"] == PAUSE_TEXT[Fault.COVER_OPEN]  # as the daemon wrote it
    assert status["pause_reason_label"] == "Penutup printer terbuka: tutup kembali"
    assert status["state_label"] == "jeda"
    assert [j["result_label"] for j in status["jobs"]] == ["rusak Gagal tulis chip"]
    assert "Penutup printer terbuka" in client.get("/stations").get_data(as_text=True)

    client.post("/lang", data={"lang": "en", "next": "/stations"})
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    assert "cover open: close the printer cover" in page and ">paused<" in page
    assert "spoiled Chip write failed" in page
    status = client.get(f"/stations/{station}/status.json").get_json()
    assert status["state_label"] == "paused" and status["jobs"][0]["phase_label"] == "finished"


def test_station_pages_show_the_printer_as_recorded(app_nocsrf: Flask, settings: Settings,
                                                    stock: dict[str, dict[str, str]]) -> None:
    """The daemon's printer reading (state, supply level) and the waiting queue are on the
    pages and in the status JSON, not "Printer —"."""
    from printsrv.ledger.models import Station

    with unit_of_work(settings) as s:
        row = s.scalars(select(Station).where(Station.name == "ST-OWN")).one()
        row.printer_status = {"state": "processing", "reasons": ["marker-supply-low"],
                              "accepting": True, "message": "",
                              "markers": [{"name": "Ribbon", "type": "ribbon-wax", "level": 37,
                                           "low": False}]}
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    station = stock["own"]["station"]
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    assert "mencetak" in page and "37 %" in page and "marker-supply-low" in page
    listing = client.get("/stations").get_data(as_text=True)
    assert "mencetak" in listing and "37 %" in listing
    status = client.get(f"/stations/{station}/status.json").get_json()
    assert status["printer_state_label"] == "mencetak" and status["ribbon_level"] == 37
    assert isinstance(status["queue_length"], int)


def test_station_page_loads_the_hopper(app_nocsrf: Flask, settings: Settings,
                                       stock: dict[str, dict[str, str]]) -> None:
    """An operator fills the hopper from the station page (each blank's move audited); an
    auditor may not."""
    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    station = stock["own"]["station"]
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    assert f"/stations/{station}/load" in page and "Isi hopper" in page
    resp = client.post(f"/stations/{station}/load", data={"count": "3", "stock_type": "KTP-EL"})
    assert _flash(client, resp).startswith("ok")
    # stockdata put A-21..25 in the hopper; the three lowest in-stock serials go next
    for n in (5, 6, 7):
        assert _blank(settings, serial("A", n)).state is BlankState.IN_HOPPER, n
    assert ("ledger:blank:load", "operator_own") in _tags(settings)
    resp = client.post(f"/stations/{station}/load", data={"count": "999", "stock_type": "KIA"})
    assert _flash(client, resp).startswith("error: office 35.26.01 has 0 KIA blanks")
    sign_in(client, settings, "auditor_own")
    assert client.post(f"/stations/{station}/load",
                       data={"count": "1", "stock_type": "KTP-EL"}).status_code == 403
    other = stock["other"]["station"]
    sign_in(client, settings, "operator_own")
    assert client.post(f"/stations/{other}/load",
                       data={"count": "1", "stock_type": "KTP-EL"}).status_code == 404


def test_batch_button_is_greyed_out_on_a_continuous_station(
        app_nocsrf: Flask, settings: Settings, stock: dict[str, dict[str, str]]) -> None:
    from printsrv.ledger.models import Station, StationState

    client = app_nocsrf.test_client()
    sign_in(client, settings, "operator_own")
    station = stock["own"]["station"]
    with unit_of_work(settings) as s:
        row = s.scalars(select(Station).where(Station.name == "ST-OWN")).one()
        row.state, row.pid, row.details = StationState.RUNNING, 4242, {"on_request": False}
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    form = re.search(r'<form[^>]*id="batch-form".*?</form>', page, re.S).group(0)
    assert "disabled" in form and "--on-request" in form
    with unit_of_work(settings) as s:
        s.scalars(select(Station).where(Station.name == "ST-OWN")).one().details = {
            "on_request": True}
    page = client.get(f"/stations/{station}").get_data(as_text=True)
    form = re.search(r'<form[^>]*id="batch-form".*?</form>', page, re.S).group(0)
    assert "disabled" not in form


def test_stock_page_shows_stock_per_type_and_place(
        app_nocsrf: Flask, settings: Settings, stock: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    page = client.get("/stock").get_data(as_text=True)

    def cells(key: str) -> list[str]:
        row = re.search(rf'<tr data-place="{re.escape(key)}">(.*?)</tr>', page, re.S)
        assert row, key
        return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))

    # 30 received, 4 spoiled, 5 in ST-OWN's hopper
    assert cells("35.26.01||KTP-EL")[1:] == ["Gudang kantor", "KTP-EL", "21", "0", "0", "21"]
    assert cells("35.26.01|ST-OWN|KTP-EL")[1:] == [
        "Hopper stasiun ST-OWN", "KTP-EL", "0", "5", "0", "5"]
    assert "35.27.01" not in page.split('id="on-hand"', 1)[1].split("</table>", 1)[0]
    spoil = page.split('id="spoil"', 1)[1].split("</form>", 1)[0]
    for machine_only in ("printer_gone", "unknown_crash", "missing"):
        assert f'value="{machine_only}"' not in spoil, machine_only
    assert 'value="jam_misfeed"' in spoil
