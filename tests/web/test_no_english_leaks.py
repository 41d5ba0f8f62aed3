"""Every page in Bahasa Indonesia: no code of the model's enums (record states, card phases and
fates, station and blank states, handover and adjustment kinds, spoil causes) and no English
destruction method shows through untranslated."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger import blanks
from printsrv.ledger.models import (
    AdjustmentKind,
    AdjustmentStatus,
    BlankState,
    HandoverKind,
    SpoilCause,
    Station,
    StationState,
)
from printsrv.models import Record, RecordState
from printsrv.notify.models import NotificationState
from printsrv.station.journal import CardJob, CardOutcome, CardPhase
from printsrv.web.models import RequestKind, RequestStatus
from tests.web.conftest import World, sign_in
from tests.web.stockdata import make_stock, serial

#: Codes that must never reach an Indonesian page as they are (underscores read as spaces
#: too: "in stock" is as English as "in_stock").
ENUMS = (RecordState, CardPhase, CardOutcome, StationState, BlankState,
         HandoverKind, AdjustmentKind, AdjustmentStatus, SpoilCause, RequestKind, RequestStatus,
         NotificationState)
LEAKS = sorted(
    {v.value for e in ENUMS for v in e} | {v.value.replace("_", " ") for e in ENUMS for v in e}
    | {"receipt", "burned", "(burned)"}
)


def visible_text(page: str) -> str:
    """The words a reader sees: no tags, attributes, scripts or styles, nor the raw event
    behind an audit entry's "rincian" toggle (which is the record as stored, by design)."""
    page = re.sub(r"<(script|style|details)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def leaks(text: str) -> list[str]:
    return [w for w in LEAKS if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text, re.I)]


def test_the_leak_check_catches_a_code() -> None:
    assert leaks(visible_text('<td class="queued">queued</td>')) == ["queued"]
    assert leaks(visible_text("<td>Serah terima (receipt)</td>")) == ["receipt"]
    assert leaks(visible_text('<option value="in_stock">di gudang</option>')) == []
    assert leaks("operator_own, ST-OWN, BAST-OWN-1") == []


@pytest.fixture
def busy(settings: Settings, world: World) -> dict[str, dict[str, str]]:
    """The stock of the web tests, plus a paused station with cards in every phase and fate,
    a transfer, a pending reprint request."""
    from printsrv.web.models import ApprovalRequest

    stock = make_stock(settings)
    with unit_of_work(settings) as s:
        station = s.scalars(select(Station).where(Station.name == "ST-OWN")).one()
        station.state, station.pause_reason = StationState.PAUSED, "cover open"
        station.pid, station.details = 4242, {"on_request": True}
        records = [world.records["own_issued"], world.records["own_failed"],
                   world.records["own_queued"]]
        fates = [(CardPhase.FINISHED, CardOutcome.ISSUED, None),
                 (CardPhase.FINISHED, CardOutcome.SPOILED, SpoilCause.CHIP_FAILURE.value),
                 (CardPhase.FINISHED, CardOutcome.RELEASED, None),
                 (CardPhase.CHIP_STARTED, None, None), (CardPhase.PRINT_SUBMITTED, None, None),
                 (CardPhase.INTENT, None, None), (CardPhase.CHIP_DONE, None, None)]
        for i, (phase, outcome, cause) in enumerate(fates):
            s.add(CardJob(station="ST-OWN", record_id=records[i % 3],
                          blank_serial=serial("A", 21 + i % 5), phase=phase, outcome=outcome,
                          cause=cause, operator="operator_own",
                          finished_at=datetime.now(UTC) if outcome else None))
        blanks.transfer_blanks(s, from_office_code="35.26.01", to_office_code="35.26",
                               serials=[serial("A", 15)], handover_number="BAST-MUT-1",
                               actor="supervisor_own")
        own = s.get_one(Record, world.records["own_issued"])
        s.add(ApprovalRequest(kind=RequestKind.REPRINT, status=RequestStatus.PENDING,
                              office_id=own.office_id, record_id=own.id, reason="rusak",
                              requested_by_id=world.users["operator_own"]))
    return stock


def _pages(app: Flask, world: World, stock: dict[str, dict[str, str]]) -> list[str]:
    """Every HTML page of the app (GET, not a download or JSON), its ids filled in."""
    ids = {"record_id": str(world.records["own_issued"]), "station_id": stock["own"]["station"]}
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        if re.search(r"\.(pdf|csv|json)|<(any|fmt)|/api/|/v1/|logout|/lang|/healthz", rule.rule):
            continue
        if set(rule.arguments) - set(ids):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{arg}>", ids[arg], path)
        pages.append(path)
    for extra in ("/queue?state=queued", "/queue?state=held", "/audit"):
        pages.append(extra)
    return sorted(set(pages))


@pytest.mark.parametrize("role", ["supervisor_own", "operator_own", "auditor_own", "admin_own"])
def test_no_page_leaks_an_english_code(app_nocsrf: Flask, settings: Settings, world: World,
                                       busy: dict[str, dict[str, str]], role: str) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, role)
    seen, found = 0, {}
    for path in _pages(app_nocsrf, world, busy):
        resp = client.get(path)
        if resp.status_code != 200 or "text/html" not in resp.content_type:
            continue
        seen += 1
        words = leaks(visible_text(resp.get_data(as_text=True)))
        if words:
            found[path] = words
    assert seen >= 5, seen
    assert found == {}, "\n".join(f"{p}: {w}" for p, w in found.items())


def test_destruction_certificate_names_the_method_in_indonesian(
        app_nocsrf: Flask, settings: Settings, busy: dict[str, dict[str, str]], tmp_path) -> None:
    import subprocess

    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    pdf = tmp_path / "bap.pdf"
    pdf.write_bytes(client.get(
        f"/ledger/documents/destruction/{busy['own']['destruction']}.pdf").data)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "pemusnahan (dibakar)" in " ".join(text.split())
    assert leaks(text) == [], leaks(text)
