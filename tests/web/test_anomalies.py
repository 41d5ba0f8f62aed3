"""Anomaly flags: each check finds the planted anomaly, stays quiet on normal data, and keeps to
the offices the user sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import delete, select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger import blanks as ops
from printsrv.ledger.models import (
    Blank,
    BlankMovement,
    RibbonUsage,
    SpoilCause,
    Station,
)
from printsrv.models import Office, Record
from printsrv.station.journal import CardJob, CardOutcome, CardPhase
from printsrv.web import anomalies
from tests.web.conftest import World, sign_in

OWN, OTHER = "35.26.01", "35.27.01"


def _office(session, code: str) -> Office:  # type: ignore[no-untyped-def]
    return session.scalar(select(Office).where(Office.code == code))


def _station(session, name: str, code: str, profile: str = "virtual-ipp-card") -> Station:  # type: ignore[no-untyped-def]
    return ops.get_or_create_station(session, name, office_code=code, cups_queue="q",
                                     reader="r", profile=profile, actor="test")


def _use_blanks(session, world: World, code: str, prefix: str, operators: dict[str, int],  # type: ignore[no-untyped-def]
                *, per_operator: int = 20, stock_type: str = "KTP-EL") -> None:
    """Each operator loads ``per_operator`` blanks; ``operators[name]`` of them spoil, the
    rest are issued."""
    total = per_operator * len(operators)
    ops.receive_blanks(session, office_code=code, first=f"{prefix}-000001",
                       last=f"{prefix}-{total:06d}", handover_number=f"BAST-{prefix}",
                       actor="test", stock_type=stock_type)
    station = _station(session, f"ST-{prefix}", code)
    record_id = world.records["own_queued" if code == OWN else "other_queued"]
    n = 0
    for name, spoiled in operators.items():
        serials = [f"{prefix}-{i:06d}" for i in range(n + 1, n + per_operator + 1)]
        n += per_operator
        loaded = ops.load_blanks(session, station, actor=name, serials=serials)
        for i, blank in enumerate(loaded):
            ops.reserve_blank(session, blank, record_id=record_id, actor=f"station:ST-{prefix}")
            if i < spoiled:
                ops.spoil_blank(session, blank, cause=SpoilCause.PRINT_DEFECT,
                                actor=f"station:ST-{prefix}", record_id=record_id)
            else:
                ops.issue_blank(session, blank, record_id=record_id, chip_uid=None,
                                actor=f"station:ST-{prefix}")


def test_operator_spoilage_far_above_peers(settings: Settings, world: World) -> None:
    with unit_of_work(settings) as s:
        _use_blanks(s, world, OWN, "A", {"budi": 1, "siti": 2, "andi": 1, "rina": 9})
        _use_blanks(s, world, OTHER, "B", {"joko": 1, "tono": 15})
    with unit_of_work(settings) as s:
        flags = anomalies.operator_spoilage(s, _office(s, OWN))
        assert [f.subject for f in flags] == ["rina"]
        assert flags[0].data["spoiled"] == 9 and flags[0].data["cards"] == 20
        # a regency sees its kecamatan; the other regency's operators are not mixed in
        assert [f.subject for f in anomalies.operator_spoilage(s, _office(s, "35.26"))] == [
            "rina"]
        # a higher factor clears the flag
        assert anomalies.operator_spoilage(s, _office(s, OWN), factor=10) == []


def test_operator_spoilage_compares_peers_on_the_same_stock_type(settings: Settings,
                                                                  world: World) -> None:
    """KIA blanks spoiling more than KTP-el blanks is not an operator's fault: each stock type
    is counted apart and compared with its own peers."""
    with unit_of_work(settings) as s:
        _use_blanks(s, world, OWN, "A", {"ani": 1, "budi": 1, "citra": 1})
        _use_blanks(s, world, OWN, "K", {"dewi": 8, "eko": 8}, stock_type="KIA")
    with unit_of_work(settings) as s:
        assert anomalies.operator_spoilage(s, _office(s, OWN)) == []
    with unit_of_work(settings) as s:
        _use_blanks(s, world, OWN, "L", {"fajar": 20}, stock_type="KIA")
    with unit_of_work(settings) as s:
        flags = anomalies.operator_spoilage(s, _office(s, OWN))
        assert [(f.subject, f.data["stock_type"]) for f in flags] == [("fajar", "KIA")]


def test_operator_spoilage_quiet_when_peers_alike(settings: Settings, world: World) -> None:
    with unit_of_work(settings) as s:
        _use_blanks(s, world, OWN, "A", {"budi": 2, "siti": 2, "andi": 3})
    with unit_of_work(settings) as s:
        assert anomalies.operator_spoilage(s, _office(s, OWN)) == []


def test_manual_spoil_counts_for_the_person_who_recorded_it(settings: Settings,
                                                            world: World) -> None:
    with unit_of_work(settings) as s:
        _use_blanks(s, world, OWN, "A", {"budi": 1, "siti": 1, "andi": 1})
        ops.receive_blanks(s, office_code=OWN, first="D-000001", last="D-000012",
                           handover_number="BAST-D", actor="test")
        for i in range(1, 13):  # twelve blanks "damaged in handling" by one person
            ops.spoil_blank(s, ops.blank_by_serial(s, f"D-{i:06d}"),
                            cause=SpoilCause.HANDLING_DAMAGE, actor="ceroboh")
    with unit_of_work(settings) as s:
        assert [f.subject for f in anomalies.operator_spoilage(s, _office(s, OWN))] == [
            "ceroboh"]


def test_station_operator_counts_before_the_loader(settings: Settings, world: World) -> None:
    """One storeman loads every hopper; a card belongs to whoever operated the station."""
    rid = world.records["own_queued"]
    with unit_of_work(settings) as s:
        # Blanks A-000001..A-000009 spoil, the rest are issued; all loaded by "gudang".
        _use_blanks(s, world, OWN, "A", {"gudang": 9}, per_operator=60)
        for i in range(1, 61):  # siti made cards 1-20 (nine spoiled), budi 21-40, andi 41-60
            person = ("siti", "budi", "andi")[(i - 1) // 20]
            s.add(CardJob(station="ST-A", record_id=rid, blank_serial=f"A-{i:06d}",
                          phase=CardPhase.FINISHED, operator=person,
                          outcome=CardOutcome.SPOILED if i <= 9 else CardOutcome.ISSUED))
    with unit_of_work(settings) as s:
        flags = anomalies.operator_spoilage(s, _office(s, OWN))
        assert [(f.subject, f.data["spoiled"], f.data["cards"]) for f in flags] == [
            ("siti", 9, 20)]


def _job(session, station: str, record_id: int, outcome: CardOutcome) -> None:  # type: ignore[no-untyped-def]
    session.add(CardJob(station=station, record_id=record_id, phase=CardPhase.FINISHED,
                        outcome=outcome))


def test_station_spoilage(settings: Settings, world: World) -> None:
    rid = world.records["own_queued"]
    with unit_of_work(settings) as s:
        for name, spoiled in (("S1", 1), ("S2", 2), ("S3", 8)):
            _station(s, name, OWN)
            for i in range(20):
                _job(s, name, rid, CardOutcome.SPOILED if i < spoiled else CardOutcome.ISSUED)
    with unit_of_work(settings) as s:
        assert [f.subject for f in anomalies.station_spoilage(s, _office(s, OWN))] == ["S3"]
        assert anomalies.station_spoilage(s, _office(s, OTHER)) == []


def test_blanks_idle_in_a_hopper(settings: Settings, world: World) -> None:
    now = datetime.now(UTC)
    with unit_of_work(settings) as s:
        ops.receive_blanks(s, office_code=OWN, first="A-000001", last="A-000010",
                           handover_number="BAST-A", actor="test", at=now - timedelta(days=40))
        old, fresh = _station(s, "OLD", OWN), _station(s, "FRESH", OWN)
        ops.load_blanks(s, old, actor="budi", count=4, at=now - timedelta(days=20))
        ops.load_blanks(s, fresh, actor="budi", count=3, at=now - timedelta(days=2))
    with unit_of_work(settings) as s:
        flags = anomalies.idle_hopper(s, _office(s, OWN), days=14)
        assert [(f.subject, f.data["count"]) for f in flags] == [("OLD", 4)]
        assert flags[0].data["oldest_days"] in (19, 20)
        assert [f.subject for f in anomalies.idle_hopper(s, _office(s, OWN), days=1)] == [
            "FRESH", "OLD"]
        assert anomalies.idle_hopper(s, _office(s, OWN), days=30) == []
        assert anomalies.idle_hopper(s, _office(s, OTHER), days=1) == []


def test_serial_gaps_and_carton_holes(settings: Settings, world: World) -> None:
    with unit_of_work(settings) as s:
        ops.receive_blanks(s, office_code=OWN, first="A-000001", last="A-000020",
                           handover_number="BAST-A", actor="test")
        ops.receive_blanks(s, office_code=OWN, first="C-000001", last="C-000010",
                           handover_number="BAST-C1", actor="test", carton="CTN-9")
        ops.receive_blanks(s, office_code=OWN, first="C-000015", last="C-000020",
                           handover_number="BAST-C2", actor="test", carton="CTN-9")
    with unit_of_work(settings) as s:
        flags = anomalies.serial_gaps(s, _office(s, OWN))
        assert [(f.kind, f.subject) for f in flags] == [("carton_hole", "CTN-9")]
        assert flags[0].data["serials"] == [f"C-{n:06d}" for n in range(11, 15)]
    # a blank vanishes from the ledger (rows deleted behind the application's back)
    with unit_of_work(settings) as s:
        blank_id = s.scalar(select(Blank.id).where(Blank.serial == "A-000007"))
        s.execute(delete(BlankMovement).where(BlankMovement.blank_id == blank_id))
        s.execute(delete(Blank).where(Blank.id == blank_id))
    with unit_of_work(settings) as s:
        flags = anomalies.serial_gaps(s, _office(s, OWN))
        gap = [f for f in flags if f.kind == "serial_gap"]
        assert len(gap) == 1 and gap[0].subject == "BAST-A"
        assert gap[0].data["missing"] == 1 and gap[0].data["serials"] == ["A-000007"]
        assert anomalies.serial_gaps(s, _office(s, OTHER)) == []


def _usage(session, station: Station, record_id: int, cards: int, panels: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(cards):
        session.add(RibbonUsage(station_id=station.id, office_id=station.office_id,
                                record_id=record_id, blank_serial=f"X-{i:06d}", panels=panels,
                                actor="t"))
        _job(session, station.name, record_id, CardOutcome.ISSUED)


def test_ribbon_use_out_of_line(settings: Settings, world: World) -> None:
    from printers.profiles import get_profile

    profile = get_profile("virtual-ipp-card")
    per_card = profile.ribbon.panels_per_card(profile.duplex)
    rid = world.records["own_queued"]
    with unit_of_work(settings) as s:
        _usage(s, _station(s, "NORMAL", OWN), rid, 20, 5)
        _usage(s, _station(s, "GREEDY", OWN), rid, 20, 9)
        _usage(s, _station(s, "BY-PROFILE", OWN), rid, 20, per_card)
        _usage(s, _station(s, "BY-PROFILE-2X", OWN), rid, 20, 2 * per_card)
        _usage(s, _station(s, "FEW", OWN), rid, 3, 50)  # too few cards to judge
    with unit_of_work(settings) as s:
        office = _office(s, OWN)
        flags = anomalies.ribbon_out_of_line(s, office, expected={"NORMAL": 5, "GREEDY": 5,
                                                                  "FEW": 5})
        assert [f.subject for f in flags] == ["BY-PROFILE-2X", "GREEDY"] or sorted(
            f.subject for f in flags) == ["BY-PROFILE-2X", "FEW", "GREEDY"]
        greedy = next(f for f in flags if f.subject == "GREEDY")
        assert greedy.data["ratio"] == 9 and greedy.data["per_card"] == 5
        # a wide tolerance accepts 9 panels where 5 are expected
        loose = anomalies.ribbon_out_of_line(s, office, tolerance=1.0,
                                             expected={"NORMAL": 5, "GREEDY": 5, "FEW": 5})
        assert "GREEDY" not in {f.subject for f in loose}
        assert anomalies.ribbon_out_of_line(s, _office(s, OTHER)) == []


def test_dashboard_shows_flags_to_auditors(app_nocsrf: Flask, settings: Settings,
                                           world: World) -> None:
    now = datetime.now(UTC)
    with unit_of_work(settings) as s:
        ops.receive_blanks(s, office_code=OWN, first="A-000001", last="A-000010",
                           handover_number="BAST-A", actor="test", at=now - timedelta(days=40))
        ops.load_blanks(s, _station(s, "LAMA", OWN), actor="budi", count=2,
                        at=now - timedelta(days=20))
        assert s.get(Record, world.records["own_queued"]) is not None
    client = app_nocsrf.test_client()
    sign_in(client, settings, "auditor_own")
    page = client.get("/anomalies").get_data(as_text=True)
    assert "LAMA" in page and "2 blangko diam" in page
    client.post("/lang", data={"lang": "en", "next": "/anomalies"})
    assert "2 blanks idle, oldest" in client.get("/anomalies").get_data(as_text=True)
    client.post("/lang", data={"lang": "id", "next": "/anomalies"})
    page = client.get("/anomalies?idle_days=30").get_data(as_text=True)
    assert "LAMA" not in page
    sign_in(client, settings, "auditor_other")
    assert "LAMA" not in client.get("/anomalies?idle_days=1").get_data(as_text=True)
    sign_in(client, settings, "operator_own")
    assert client.get("/anomalies").status_code == 403
