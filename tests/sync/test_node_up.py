"""What a kecamatan node sends up besides its card fates and blank movements: its
crypto-shred confirmations, the status of its stations, and every movement of its ribbons
(loads, the panels each card spent), mirrored in the server's ledger; each event applied
once even when the same events come again. A server (``run.py serve``) and a node over real
HTTP, as in ``test_node_sync``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from printsrv.db import unit_of_work
from printsrv.ledger.models import Consumable, ConsumableState, RibbonUsage
from printsrv.models import AuditEvent, OutboxEvent, Record, RecordKey, RecordMedia
from tests.sync.test_node_stock import BAST, KABUPATEN, _check, _print_from_stock
from tests.sync.test_node_sync import OFFICE, Link, _enrolled, _import, _run, link

__all__ = ["link"]  # the fixture


def _roll(settings: object, serial: str) -> tuple[ConsumableState, int, str | None]:
    from printsrv.ledger.models import Station

    with unit_of_work(settings) as session:  # type: ignore[arg-type]
        roll = session.scalar(select(Consumable).where(Consumable.serial == serial))
        assert roll is not None
        station = session.get(Station, roll.station_id) if roll.station_id else None
        return roll.state, roll.panels_used, station.name if station else None


def _counts(settings: object) -> dict[str, int]:
    from printsrv.sync.models import AppliedEvent, NodeShred, NodeStation

    with unit_of_work(settings) as session:  # type: ignore[arg-type]
        return {name: int(session.scalar(select(func.count()).select_from(table)) or 0)
                for name, table in (("applied", AppliedEvent), ("shreds", NodeShred),
                                    ("usage", RibbonUsage), ("stations", NodeStation))}


def test_shreds_stations_and_ribbon_usage_go_up_and_apply_once(link: Link,
                                                                 tmp_path: Path) -> None:
    from printsrv import outbox
    from printsrv.ledger.blanks import receive_blanks
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.reports import stock_report
    from printsrv.ledger.ribbons import receive_consumable
    from printsrv.ledger.serials import serial_range
    from printsrv.localtime import office_zone
    from printsrv.sync import node, server
    from printsrv.sync.models import AppliedEvent

    with unit_of_work(link.server) as session:
        receive_blanks(session, office_code=KABUPATEN, first="KTP-000001", last="KTP-000006",
                       handover_number="BAST-PUSAT-1", actor="test")
        receive_consumable(session, kind=ConsumableKind.RIBBON, office_code=KABUPATEN,
                           serial="RIB-K1", type_="YMCKOK", capacity=200, actor="test")
    _import(link.server, tmp_path, 3)
    node_id = _enrolled(link)
    with unit_of_work(link.server) as session:
        server.transfer_to_node(session, node_id, from_office=KABUPATEN, handover_number=BAST,
                                actor="admin", serials=serial_range("KTP-000001", "KTP-000006"),
                                ribbons=[(ConsumableKind.RIBBON, "RIB-K1")])
    node.sync_once(link.node)
    node.accept_handover(link.node, BAST, actor="operator")
    node.sync_once(link.node)
    with unit_of_work(link.server) as session:
        requests = list(session.scalars(select(Record.request_id).order_by(Record.request_id)))
        # the server still holds its (encrypted) copy of the biometrics it handed down
        assert session.scalar(select(func.count()).select_from(RecordKey)) == 3
    assert _counts(link.server)["shreds"] == 0

    _print_from_stock(link.node, tmp_path, blanks=5)  # issues 3 cards: shreds at the node
    node_roll = _roll(link.node, "RIB-K1")
    assert node_roll[0] is ConsumableState.LOADED and node_roll[1] > 0
    node.sync_once(link.node)

    # 1. the node's crypto-shred confirmations, one per record: what was destroyed, not data
    with unit_of_work(link.server) as session:
        shreds = server.shred_confirmations(session, node_id=node_id)
        assert sorted(c.request_id for c in shreds) == requests
        for c in shreds:
            assert c.reason == "issued" and c.shredded_at is not None
            assert c.destroyed["data_key"] is True
            assert "photo" in c.destroyed["media"] and "signature" in c.destroyed["media"]
        payloads = [e.payload for e in session.scalars(select(AppliedEvent).where(
            AppliedEvent.topic == str(outbox.Topic.MEDIA_SHRED)))]
        assert {k for p in payloads for k in p} == {"request_id", "office", "reason", "at",
                                                    "data_key", "media"}
        # and the server's own copy is shredded too once the node's card is issued
        assert session.scalar(select(func.count()).select_from(RecordKey)) == 0
        assert session.scalar(select(func.count()).select_from(RecordMedia)) == 0
        assert all(r.media_purged_at is not None for r in session.scalars(select(Record)))
        listed = {n.node_id: n for n in server.status(session)}[node_id]
    assert listed.shreds_confirmed == 3
    with unit_of_work(link.server) as session:
        audited = session.scalars(select(AuditEvent).where(
            AuditEvent.tag == "sync:media:purge")).all()
        assert sorted(e.subject for e in audited) == requests
        assert {e.actor for e in audited} == {f"node:{node_id}"}
        assert all(e.details["data_key"] is True and e.details["node"] == node_id
                   for e in audited)
    with unit_of_work(link.node) as session:
        assert session.scalar(select(func.count()).select_from(RecordKey)) == 0  # the node's

    # 2. the ribbon: loaded at the node's station, 3 cards' panels, the same at the server
    state, used, station = _roll(link.server, "RIB-K1")
    assert (state, used, station) == (ConsumableState.LOADED, node_roll[1], f"{node_id}/kec1")
    with unit_of_work(link.server) as session:
        usage = session.scalars(select(RibbonUsage)).all()
        assert len(usage) == 3 and sum(u.panels for u in usage) == node_roll[1]
        assert {session.get_one(Record, u.record_id).request_id for u in usage
                if u.record_id} == set(requests)
        month = datetime.now(UTC).strftime("%Y-%m")
        report = stock_report(session, KABUPATEN, month)
    assert report["ribbons"]["used_panels"] == node_roll[1]
    assert report["ribbons"]["cards"] == 3
    assert [r["serial"] for r in report["ribbons"]["on_hand"]] == ["RIB-K1"]
    assert report["ribbons"]["on_hand"][0]["used_panels"] == node_roll[1]
    _check(link.server)

    # 3. the node's station: state, heartbeat, ribbon left, cards, shown by `nodes`
    with unit_of_work(link.node) as session:
        from printsrv.ledger.models import Station

        at_node = session.scalar(select(Station).where(Station.name == "kec1"))
        assert at_node is not None and at_node.heartbeat_at is not None
        node_state, node_issued = at_node.state.value, at_node.cards_issued
    (st,) = listed.stations
    assert (st.name, st.state, st.ribbon, st.cards_issued) == ("kec1", node_state, "RIB-K1",
                                                                node_issued)
    assert node_issued == 3
    assert st.ribbon_remaining == 200 * 6 - node_roll[1]
    assert st.heartbeat_at is not None
    assert abs((datetime.now(UTC) - st.heartbeat_at).total_seconds()) < 120
    shown = json.loads(_run(link.server, "nodes", "--json").stdout)
    (row,) = shown[0]["stations"]
    assert row["station"] == "kec1" and row["ribbon panels left"] == st.ribbon_remaining
    assert row["last heartbeat"] == office_zone(OFFICE).format(st.heartbeat_at, seconds=True)
    assert row["last heartbeat"].endswith(" WIB")
    assert shown[0]["shreds confirmed"] == 3
    text = _run(link.server, "nodes").stdout
    assert "kec1" in text and row["last heartbeat"] in text
    shreds_cli = json.loads(_run(link.server, "nodes", "shreds", "--json").stdout)
    assert sorted(r["request id"] for r in shreds_cli) == requests

    # replaying every event the node ever sent (an answer lost on the way back) changes nothing
    before = _counts(link.server)
    with unit_of_work(link.server) as session:
        audited_before = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.tag == "sync:media:purge"))
    with unit_of_work(link.node) as session:
        sent = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        events = [{"seq": e.id, "event_id": e.event_id, "topic": e.topic,
                   "subject": e.subject, "payload": e.payload} for e in sent]
    assert {e["topic"] for e in events} >= {"record.shred", "ribbon.movement"}
    with node.connect(link.node) as (client, _keys):
        answer = client.call("/push", {"events": events})
    assert answer["through"] == events[-1]["seq"]
    node.sync_once(link.node)  # the stations again: updated in place, not added
    assert _counts(link.server) == before
    with unit_of_work(link.server) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.tag == "sync:media:purge")) == audited_before == 3
    assert _roll(link.server, "RIB-K1")[1] == node_roll[1]
    _check(link.server)


def test_a_station_heartbeat_is_placed_on_the_servers_clock(link: Link) -> None:
    """The node sends the heartbeat's age, measured on its own clock (so a node clock hours
    off does not move it): the server shows when the station last beat by its own clock, with
    the station's state and printer."""
    from printsrv.ledger.blanks import get_or_create_station
    from printsrv.ledger.models import StationState
    from printsrv.sync import node, server

    node_id = _enrolled(link)
    with unit_of_work(link.node) as session:
        station = get_or_create_station(session, "kec2", office_code=OFFICE, cups_queue="Q",
                                        reader="R", profile="virtual-ipp-card", actor="test")
        station.state = StationState.PAUSED
        station.pause_reason = "ribbon out"
        station.pid = 4242
        station.heartbeat_at = datetime.now(UTC) - timedelta(seconds=90)
        station.printer_status = {"state": "stopped", "reasons": ["marker-supply-empty"]}
    with unit_of_work(link.node) as session:
        (report,) = node.station_reports(session)
    assert 89 <= report["heartbeat_age_s"] < 120
    node.sync_once(link.node)
    with unit_of_work(link.server) as session:
        (st,) = {n.node_id: n for n in server.status(session)}[node_id].stations
    assert (st.state, st.pause_reason, st.printer_state) == ("paused", "ribbon out", "stopped")
    assert st.details["printer_reasons"] == ["marker-supply-empty"]
    assert st.heartbeat_at is not None
    assert 85 < (datetime.now(UTC) - st.heartbeat_at).total_seconds() < 150
    with unit_of_work(link.node) as session:
        station = session.get_one(type(station), station.id)
        station.state = StationState.RUNNING
        station.pause_reason = None
        station.heartbeat_at = datetime.now(UTC)
    node.sync_once(link.node)
    with unit_of_work(link.server) as session:
        (st,) = {n.node_id: n for n in server.status(session)}[node_id].stations
    assert (st.state, st.pause_reason) == ("running", None)
    assert st.heartbeat_at is not None
    assert (datetime.now(UTC) - st.heartbeat_at).total_seconds() < 60
