"""Authorization matrix: every role × every endpoint × a record of the user's own office or of
another regency's office. Forbidden roles get 403; other offices' objects are 404 (the same
answer as for a missing object); list pages never show other offices' records."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import select

from printsrv import audit
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger.models import Station
from printsrv.models import Record, Role, User
from printsrv.offices import visible_office_ids
from printsrv.web import services as svc
from tests.web.conftest import World, sign_in
from tests.web.stockdata import make_stock


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # {record} / {request} are filled per scope
    permission: str
    record: str | None = None  # state of the scope's record used
    form: tuple[tuple[str, str], ...] = ()
    listing: bool = False
    marker: str | None = None  # listing pages: key of the scope's prepared value to look for
    scoped: bool = True  # False: a page about no object of an office (200 in both scopes)


_P = "{p}"
ENDPOINTS = [
    Endpoint("queue", "GET", "/queue", "queue.view", record="queued", listing=True),
    Endpoint("queue_search", "POST", "/queue", "queue.view", record="queued", listing=True),
    Endpoint("held", "GET", "/held", "queue.view", record="held", listing=True),
    Endpoint("record", "GET", "/records/{record}", "record.view", record="queued"),
    Endpoint("release", "POST", "/records/{record}/release", "record.release", "held",
             (("note", "ok"),)),
    Endpoint("reject", "POST", "/records/{record}/reject", "record.release", "held",
             (("note", "data salah"),)),
    Endpoint("reprint", "POST", "/records/{record}/reprint", "reprint.request", "issued",
             (("reason", "kartu rusak"),)),
    Endpoint("approvals", "GET", "/approvals", "reprint.approve", record="failed", listing=True),
    Endpoint("approve", "POST", "/approvals/{request}/approve", "reprint.approve", "failed",
             (("note", "ok"),)),
    Endpoint("deny", "POST", "/approvals/{request}/reject", "reprint.approve", "failed",
             (("note", "tidak"),)),
    Endpoint("audit", "GET", "/audit", "audit.view", record="queued", listing=True),
    Endpoint("ledger", "GET", "/ledger?office={office}&month=2026-01", "ledger.view"),
    Endpoint("report_pdf", "GET", "/ledger/report.pdf?office={office}&month=2026-01",
             "ledger.view"),
    Endpoint("report_csv", "GET", "/ledger/report.csv?office={office}&month=2026-01",
             "ledger.view"),
    Endpoint("stations", "GET", "/stations", "station.view", record="station", listing=True),
    Endpoint("station", "GET", "/stations/{station}", "station.view"),
    Endpoint("station_status", "GET", "/stations/{station}/status.json", "station.view"),
    Endpoint("station_resume", "POST", "/stations/{station}/resume", "station.operate"),
    Endpoint("station_batch", "POST", "/stations/{station}/batch", "station.operate",
             form=(("count", "3"),)),
    Endpoint("station_load", "POST", "/stations/{station}/load", "stock.load",
             form=(("count", "1"), ("stock_type", "KTP-EL"))),
    # stock forms, documents, anomalies
    Endpoint("stock", "GET", "/stock", "stock.spoil", listing=True, marker="handover_number"),
    Endpoint("stock_receive", "POST", "/stock/receive", "stock.receive", form=(
        ("office", "{office}"), ("first", _P + "-000101"), ("last", _P + "-000110"),
        ("handover_number", "BAST-NEW-{p}"), ("from_party", "Ditjen Dukcapil"))),
    Endpoint("stock_transfer", "POST", "/stock/transfer", "stock.transfer", form=(
        ("from_office", "{office}"), ("to_office", "{parent}"),
        ("serials", _P + "-000011.." + _P + "-000012"), ("handover_number", "BAST-T-{p}"))),
    Endpoint("stock_spoil", "POST", "/stock/spoil", "stock.spoil", form=(
        ("serial", _P + "-000021"), ("cause", "jam_misfeed"), ("note", "macet"))),
    Endpoint("ribbon_receive", "POST", "/stock/ribbons/receive", "stock.receive", form=(
        ("office", "{office}"), ("kind", "ribbon"), ("serial", "RIB-{p}9"), ("type", "YMCKO"),
        ("capacity", "500"))),
    Endpoint("ribbon_load", "POST", "/stock/ribbons/load", "stock.receive", form=(
        ("station", "{station}"), ("kind", "ribbon"), ("serial", "RIB-{p}1"))),
    Endpoint("ribbon_transfer", "POST", "/stock/ribbons/transfer", "stock.transfer", form=(
        ("kind", "ribbon"), ("serial", "RIB-{p}T"), ("to_office", "{parent}"),
        ("handover_number", "BAST-R-{p}"))),
    Endpoint("adjustments", "GET", "/stock/adjustments", "adjustment.request", listing=True,
             marker="adjustment_reason"),
    Endpoint("adjustment_request", "POST", "/stock/adjustments", "adjustment.request", form=(
        ("office", "{office}"), ("kind", "write_off"), ("serials", _P + "-000015"),
        ("target_state", ""), ("reason", "tidak ditemukan"))),
    Endpoint("adjustment_approve", "POST", "/stock/adjustments/{adjustment}/approve",
             "adjustment.approve", form=(("note", "ok"),)),
    Endpoint("adjustment_reject", "POST", "/stock/adjustments/{adjustment}/reject",
             "adjustment.approve", form=(("note", "tidak"),)),
    Endpoint("destruction_page", "GET", "/stock/destruction", "destruction.record",
             scoped=False),
    Endpoint("destruction", "POST", "/stock/destruction", "destruction.record", form=(
        ("office", "{office}"), ("number", "BAP-NEW-{p}"), ("officer_1", "BUDI"),
        ("officer_1_nip", "198001012005011001"), ("officer_2", "SITI"),
        ("officer_2_nip", "198202022006022002"), ("witness", "ANDI"),
        ("witness_nip", "198303032007031003"), ("witness_role", "Inspektorat"),
        ("serials", _P + "-000002"))),
    Endpoint("documents", "GET", "/ledger/documents", "ledger.view", listing=True,
             marker="destruction_number"),
    Endpoint("destruction_pdf", "GET", "/ledger/documents/destruction/{destruction}.pdf",
             "ledger.view"),
    Endpoint("handover_pdf", "GET", "/ledger/documents/handover/{handover}.pdf", "ledger.view"),
    Endpoint("anomalies", "GET", "/anomalies", "anomaly.view", scoped=False),
]


def _prepare(settings: Settings, world: World) -> dict[str, dict[str, str]]:
    """Reprint requests in both offices (by their operators) and audit events about records."""
    out: dict[str, dict[str, str]] = {}
    with unit_of_work(settings) as s:
        for scope in ("own", "other"):
            rec = s.get(Record, world.records[f"{scope}_failed"])
            operator = s.get(User, world.users[f"operator_{scope}"])
            req = svc.request_reprint(s, operator, rec, "rusak")
            queued = s.get(Record, world.records[f"{scope}_queued"])
            audit.record(s, "test:record:touch", actor="t", office_code=queued.office.code,
                         subject=queued.request_id)
            station = Station(name=f"ST-{scope.upper()}", office_id=queued.office_id,
                              printer_status={})
            s.add(station)
            s.flush()
            out[scope] = {"request": str(req.id), "request_id": queued.request_id,
                          "nik": queued.nik, "office": queued.office.code,
                          "station": str(station.id),
                          "parent": "35.26" if scope == "own" else "35.27"}
    for scope, values in make_stock(settings).items():
        out[scope].update(values)
    return out


@pytest.mark.parametrize("scope", ["own", "other"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_matrix(
    app_nocsrf: Flask, settings: Settings, world: World, role: Role, endpoint: Endpoint, scope: str
) -> None:
    prepared = _prepare(settings, world)
    client = app_nocsrf.test_client()
    sign_in(client, settings, f"{role.value}_own")
    record_key = f"{scope}_{endpoint.record}"
    values = dict(prepared[scope])
    values.pop("request_id")
    values["record"] = str(world.records.get(record_key, 0))
    path = endpoint.path.format(**values)
    form = {k: v.format(**values) for k, v in endpoint.form}
    if endpoint.name == "queue_search":
        form = {"q": prepared[scope]["nik"], "state": ""}
    resp = client.open(path, method=endpoint.method, data=form)
    allowed = role in svc.PERMISSIONS[endpoint.permission]
    if not allowed:
        assert resp.status_code == 403, (resp.status_code, resp.get_data(as_text=True)[:300])
        return
    if endpoint.listing:
        assert resp.status_code == 200
        body = resp.get_data(as_text=True)
        if endpoint.marker:
            marker = prepared[scope][endpoint.marker]
        elif endpoint.record == "station":
            marker = f"ST-{scope.upper()}"
        else:
            with unit_of_work(settings) as s:
                marker = s.get(Record, world.records[record_key]).request_id
        assert (marker in body) is (scope == "own"), (endpoint.name, scope)
        return
    if scope == "other" and endpoint.scoped:
        assert resp.status_code == 404, resp.status_code
        return
    assert resp.status_code in (200, 302, 303), resp.get_data(as_text=True)[:500]
    if endpoint.method == "POST" and endpoint.path.startswith("/stock"):
        # the operation was done, not refused: the page shows a success message
        page = client.get(resp.headers["Location"]).get_data(as_text=True)
        assert 'class="flash ok"' in page, page[page.find("flash"):][:300]


def test_regency_sees_its_kecamatan(app_nocsrf: Flask, settings: Settings, world: World) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_reg")
    assert client.get(f"/records/{world.records['own_queued']}").status_code == 200
    assert client.get(f"/records/{world.records['other_queued']}").status_code == 404
    body = client.get("/queue").get_data(as_text=True)
    assert "PC-352601-000001" in body and "PC-352701" not in body


def test_kecamatan_does_not_see_its_regency(app_nocsrf: Flask, settings: Settings,
                                            world: World) -> None:
    with unit_of_work(settings) as s:
        ids = visible_office_ids(s, s.get(User, world.users["operator_own"]).office)
    assert ids == [world.offices["own"]]


def test_anonymous_is_sent_to_login(app_nocsrf: Flask, world: World) -> None:
    client = app_nocsrf.test_client()
    record = f"/records/{world.records['own_queued']}"
    for path in ("/", "/queue", "/held", "/audit", "/approvals", record):
        resp = client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert client.post(f"/records/{world.records['own_held']}/release").status_code == 401


def test_requester_cannot_approve_own_reprint(app_nocsrf: Flask, settings: Settings,
                                              world: World) -> None:
    with unit_of_work(settings) as s:
        sup = s.get(User, world.users["supervisor_own"])
        req = svc.request_reprint(s, sup, s.get(Record, world.records["own_failed"]), "rusak")
        req_id = req.id
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    assert client.post(f"/approvals/{req_id}/approve", data={"note": ""}).status_code == 403
    sign_in(client, settings, "supervisor_reg")
    assert client.post(f"/approvals/{req_id}/approve", data={"note": ""}).status_code == 302
    with unit_of_work(settings) as s:
        assert s.get(Record, world.records["own_failed"]).state.value == "queued"


def test_a_reprint_decision_is_an_outbox_event(app_nocsrf: Flask, settings: Settings,
                                               world: World) -> None:
    from printsrv.models import OutboxEvent

    with unit_of_work(settings) as s:
        sup = s.get(User, world.users["supervisor_own"])
        record = s.get(Record, world.records["own_failed"])
        req_id, request_id = svc.request_reprint(s, sup, record, "rusak").id, record.request_id
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_reg")
    assert client.post(f"/approvals/{req_id}/approve", data={"note": "ok"}).status_code == 302
    with unit_of_work(settings) as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.subject == request_id)
                           .order_by(OutboxEvent.id)).all()
    decision = [e for e in events if e.topic == "reprint.decision"]
    assert len(decision) == 1 and decision[0].payload["approved"] is True
    assert decision[0].payload["by"] == "supervisor_reg"
    assert decision[0].payload["requested_by"] == "supervisor_own"
    assert [(e.payload["from"], e.payload["to"]) for e in events
            if e.topic == "record.state"][-1] == ("failed", "queued")
