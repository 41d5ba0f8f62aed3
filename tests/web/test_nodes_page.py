"""The admin page of kecamatan nodes: only an admin sees it; the pairing code approves a node,
a wrong one does not; revoke ends its access; a recall is asked of the node holding a
record."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import Record
from printsrv.sync import protocol, server
from printsrv.sync.models import NodeState, Recall, SyncNode
from tests.web.conftest import World, sign_in


def _pending(settings: Settings, code: str) -> str:
    pem = protocol.public_key_pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    with unit_of_work(settings) as session:
        return server.enrol(session, office="35.26.01", public_key_pem=pem,
                            pairing_hash=protocol.pairing_hash(code)).node_id


def _state(settings: Settings, node_id: str) -> NodeState:
    with unit_of_work(settings) as session:
        return server.get_node(session, node_id).state


def test_an_admin_approves_with_the_code_and_revokes(app_nocsrf: Flask, settings: Settings,
                                                      world: World) -> None:
    node_id = _pending(settings, "ABCD2345")
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_reg")
    assert client.get("/nodes").status_code == 403
    sign_in(client, settings, "admin_reg")
    page = client.get("/nodes")
    assert page.status_code == 200 and node_id in page.get_data(as_text=True)
    assert "menunggu persetujuan" in page.get_data(as_text=True)
    client.post(f"/nodes/{node_id}/approve", data={"code": "WRONG000"})
    assert _state(settings, node_id) is NodeState.PENDING
    client.post(f"/nodes/{node_id}/approve", data={"code": "abcd2345"})
    assert _state(settings, node_id) is NodeState.ACTIVE
    client.post(f"/nodes/{node_id}/revoke")
    assert _state(settings, node_id) is NodeState.REVOKED


def test_a_recall_is_asked_of_the_node_holding_the_record(app_nocsrf: Flask, settings: Settings,
                                                          world: World) -> None:
    node_id = _pending(settings, "ABCD2345")
    with unit_of_work(settings) as session:
        record = session.get(Record, world.records["own_queued"])
        assert record is not None
        record.owner_node = node_id
        request_id = record.request_id
        node = session.scalar(select(SyncNode))
        assert node is not None
    client = app_nocsrf.test_client()
    sign_in(client, settings, "admin_reg")
    client.post("/nodes/recall", data={"request_id": request_id})
    with unit_of_work(settings) as session:
        asked = session.scalars(select(Recall)).all()
    assert [(r.node_id, r.request_id, r.state.value) for r in asked] == [
        (node_id, request_id, "asked")]


def test_the_page_says_how_far_each_node_chain_is_verified(app_nocsrf: Flask, settings: Settings,
                                                            world: World) -> None:
    from tests.sync.test_node_chain_marks import _append, _node

    node_id, _signer = _node(settings)
    _append(settings, node_id, "main", 4)
    client = app_nocsrf.test_client()
    sign_in(client, settings, "admin_reg")
    page = client.get("/nodes").get_data(as_text=True)
    assert "terverifikasi" in page
    assert "sampai 4 kejadian, titik periksa 0 (4 baru diperiksa)" in page
    _append(settings, node_id, "main", 2)
    again = client.get("/nodes").get_data(as_text=True)
    assert "sampai 6 kejadian, titik periksa 0 (2 baru diperiksa)" in again


def test_the_page_shows_each_nodes_stations_and_shred_confirmations(
        app_nocsrf: Flask, settings: Settings, world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from printsrv.localtime import office_zone
    from printsrv.sync.server import NodeEvent, push

    node_id = _pending(settings, "ABCD2345")
    with unit_of_work(settings) as session:
        node = server.get_node(session, node_id)
        server.receive_stations(session, node, [
            {"name": "kec-st1", "state": "paused", "pause_reason": "pita habis",
             "heartbeat_age_s": 30, "printer_state": "stopped", "ribbon": "RIB-77",
             "ribbon_remaining": 42, "cards_issued": 7, "cards_spoiled": 1}])
        push(session, node, [NodeEvent(1, "6f1c0d52-0000-4000-8000-000000000001",
                                       "record.shred", "REQ-1",
                                       {"request_id": "REQ-1", "reason": "issued",
                                        "at": datetime.now(UTC).isoformat(), "data_key": True,
                                        "media": ["photo", "signature"]})])
        (st,) = {n.node_id: n for n in server.status(session)}[node_id].stations
    assert st.heartbeat_at is not None
    assert abs((datetime.now(UTC) - timedelta(seconds=30) - st.heartbeat_at).total_seconds()) < 5
    client = app_nocsrf.test_client()
    sign_in(client, settings, "admin_reg")
    page = client.get("/nodes").get_data(as_text=True)
    assert "kec-st1" in page and "pita habis" in page and "RIB-77" in page
    assert office_zone("35.26.01").format(st.heartbeat_at, seconds=True) in page
    assert "WIB" in page and "Detak terakhir" in page and "Biometrik dimusnahkan" in page
    assert '<td class="shreds">1</td>' in page
