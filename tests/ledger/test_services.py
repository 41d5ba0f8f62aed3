"""Ledger services as the station daemon and the web app call them (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printsrv import audit
from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work
from printsrv.errors import PrintSrvError, StateError
from printsrv.ledger import adjustments, ribbons
from printsrv.ledger.blanks import (
    blank_by_serial,
    destroy_blanks,
    get_or_create_station,
    issue_blank,
    load_blanks,
    next_blank_for_station,
    receive_blanks,
    release_blank,
    reserve_blank,
    spoil_blank,
    transfer_blanks,
    unload_blanks,
)
from printsrv.ledger.check import check_ledger
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    AdjustmentKind,
    AdjustmentStatus,
    Blank,
    BlankMovement,
    BlankState,
    ConsumableKind,
    Film,
    Ribbon,
    RibbonUsage,
    SpoilCause,
    Station,
    StationState,
)
from printsrv.ledger.serials import parse_serial, serial_range
from printsrv.models import AuditEvent, Office
from tests.ledger.conftest import make_records

OFFICE = "35.26.01"


def sn(n: int) -> str:
    return f"KTP2026-{n:08d}"


def _setup(settings: Settings, count: int = 20) -> None:
    with unit_of_work(settings) as s:
        receive_blanks(
            s, office_code=OFFICE, first=sn(1), last=sn(count), handover_number="BA-1", actor="a"
        )
        get_or_create_station(
            s, "st1", office_code=OFFICE, cups_queue="Card1", reader="vpcd 0", profile="evolis"
        )


def _station(s: Session, office: str = OFFICE) -> Station:
    return get_or_create_station(s, "st1", office_code=office, cups_queue="", reader="", profile="")


def _assert_balanced(settings: Settings) -> None:
    with session_factory(settings)() as s:
        result = check_ledger(s)
        assert result.ok, [str(p) for p in result.problems]
        assert audit.verify(s).ok


def test_serials() -> None:
    assert serial_range("KTP2026-00000009", "KTP2026-00000011") == [
        "KTP2026-00000009",
        "KTP2026-00000010",
        "KTP2026-00000011",
    ]
    assert str(parse_serial("ktp2026-00000001")) == "KTP2026-00000001"
    for first, last in (("KTP2026-00000002", "KTP2026-00000001"), ("A-0001", "B-0002")):
        with pytest.raises(LedgerError):
            serial_range(first, last)
    with pytest.raises(LedgerError):
        parse_serial("not a serial")


def test_receive_creates_office_and_journal(settings: Settings) -> None:
    _setup(settings)
    with session_factory(settings)() as s:
        office = s.scalar(select(Office).where(Office.code == OFFICE))
        assert office is not None and office.name == "KECAMATAN BANGKALAN"
        assert office.parent is not None and office.parent.code == "35.26"
        assert s.scalar(select(func.count()).select_from(Blank)) == 20
        assert s.scalar(select(func.count()).select_from(BlankMovement)) == 20
        tags = list(s.scalars(select(AuditEvent.tag).where(AuditEvent.tag.like("ledger:blank:%"))))
        assert tags == ["ledger:blank:receive"] * 20
    _assert_balanced(settings)


def test_receive_refuses_duplicates(settings: Settings) -> None:
    _setup(settings)
    with pytest.raises(LedgerError, match="KTP2026-00000020") as err, unit_of_work(settings) as s:
        receive_blanks(
            s, office_code=OFFICE, first=sn(20), last=sn(25), handover_number="BA-2", actor="a"
        )
    assert err.value.serial == "KTP2026-00000020"
    with pytest.raises(LedgerError, match="BA-1"), unit_of_work(settings) as s:
        receive_blanks(
            s, office_code=OFFICE, first=sn(30), last=sn(31), handover_number="BA-1", actor="a"
        )
    with pytest.raises(LedgerError, match="region table"), unit_of_work(settings) as s:
        receive_blanks(
            s, office_code="99.99.99", first=sn(40), last=sn(41), handover_number="X", actor="a"
        )


def test_station_daemon_flow(settings: Settings) -> None:
    _setup(settings)
    with unit_of_work(settings) as s:
        station = get_or_create_station(
            s, "st1", office_code=OFFICE, cups_queue="Card1", reader="vpcd 0", profile="evolis"
        )
        assert station.state is StationState.OFFLINE
        load_blanks(s, station, actor="op", count=5)
        office_id = station.office_id
        rec1, rec2, rec3 = make_records(s, office_id, 3)
    with unit_of_work(settings) as s:
        station = get_or_create_station(
            s, "st1", office_code=OFFICE, cups_queue="Card1", reader="vpcd 0", profile="evolis"
        )
        blank = next_blank_for_station(s, station)
        assert blank is not None and blank.serial == sn(1)
        reserve_blank(s, blank, record_id=rec1, actor="daemon")
        assert next_blank_for_station(s, station).serial == sn(2)  # type: ignore[union-attr]
        issue_blank(s, blank, record_id=rec1, chip_uid="04A1B2C3D4E5F6", actor="daemon")
        assert blank.state is BlankState.ISSUED and blank.chip_uid == "04A1B2C3D4E5F6"
        assert blank.station_id is None and blank.record_id == rec1

        second = next_blank_for_station(s, station)
        reserve_blank(s, second, record_id=rec2, actor="daemon")  # type: ignore[arg-type]
        with pytest.raises(LedgerError, match=sn(2)):
            issue_blank(s, second, record_id=rec3, chip_uid=None, actor="daemon")  # type: ignore[arg-type]
        release_blank(s, second, actor="daemon", reason="printer offline before feed")  # type: ignore[arg-type]
        assert second.state is BlankState.IN_HOPPER and second.record_id is None  # type: ignore[union-attr]
        reserve_blank(s, second, record_id=rec2, actor="daemon")  # type: ignore[arg-type]
        spoil_blank(s, second, cause=SpoilCause.CHIP_FAILURE, record_id=rec2, actor="daemon")  # type: ignore[arg-type]

        with pytest.raises(StateError, match=sn(1)):
            reserve_blank(s, blank, record_id=rec3, actor="daemon")
        with pytest.raises(LedgerError, match=sn(1)):
            spoil_blank(s, blank, cause=SpoilCause.QC_REJECT, actor="daemon")
        with pytest.raises(LedgerError, match=sn(2)):
            release_blank(s, second, actor="daemon", reason="x")  # type: ignore[arg-type]
    with session_factory(settings)() as s:
        kinds = list(
            s.scalars(
                select(BlankMovement.kind)
                .where(BlankMovement.serial == sn(2))
                .order_by(BlankMovement.id)
            )
        )
        assert [k.value for k in kinds] == [
            "receive",
            "load",
            "reserve",
            "release",
            "reserve",
            "spoil",
        ]
        moves = s.scalar(select(func.count()).select_from(BlankMovement))
        events = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.tag.like("ledger:blank:%"))
        )
        assert moves == events
    _assert_balanced(settings)


def test_ledger_error_is_a_printsrv_state_error() -> None:
    assert issubclass(LedgerError, StateError) and issubclass(LedgerError, PrintSrvError)


def test_hopper_order_load_and_unload(settings: Settings) -> None:
    _setup(settings)
    with unit_of_work(settings) as s:
        station = _station(s)
        loaded = load_blanks(s, station, actor="op", serials=[sn(9), sn(7), sn(8)])
        assert [b.serial for b in loaded] == [sn(7), sn(8), sn(9)]
        assert next_blank_for_station(s, station).serial == sn(7)  # type: ignore[union-attr]
        loaded = load_blanks(s, station, actor="op", count=2)
        assert [b.serial for b in loaded] == [sn(1), sn(2)]
        assert next_blank_for_station(s, station).serial == sn(1)  # type: ignore[union-attr]
        with pytest.raises(LedgerError, match="in stock"):
            load_blanks(s, station, actor="op", count=100)
        with pytest.raises(LedgerError, match=sn(7)):
            load_blanks(s, station, actor="op", serials=[sn(7)])
        unloaded = unload_blanks(s, station, actor="op", serials=[sn(8)])
        assert [b.serial for b in unloaded] == [sn(8)]
        assert len(unload_blanks(s, station, actor="op")) == 4
        assert next_blank_for_station(s, station) is None
        load_blanks(s, station, actor="op", count=1)
        with pytest.raises(LedgerError, match="still holds blanks"):
            _station(s, "35.26.02")
    _assert_balanced(settings)


def test_transfer_moves_the_office(settings: Settings) -> None:
    _setup(settings)
    with unit_of_work(settings) as s:
        station = _station(s)
        load_blanks(s, station, actor="op", count=1)
        with pytest.raises(LedgerError, match=sn(1)):  # in a hopper: not transferable
            transfer_blanks(
                s,
                from_office_code=OFFICE,
                to_office_code="35.26.02",
                serials=[sn(1), sn(2)],
                handover_number="BA-T1",
                actor="a",
            )
    with unit_of_work(settings) as s:
        doc = transfer_blanks(
            s,
            from_office_code=OFFICE,
            to_office_code="35.26.02",
            serials=serial_range(sn(11), sn(20)),
            handover_number="BA-T1",
            actor="a",
        )
        assert doc.count == 10
        assert blank_by_serial(s, sn(15)).office.code == "35.26.02"
    with session_factory(settings)() as s:
        result = check_ledger(s)
        assert result.ok, result.problems
        by_office = {b.office: b for b in result.offices}
        assert by_office[OFFICE].transferred_out == 10 and by_office[OFFICE].on_hand == 10
        assert by_office["35.26.02"].transferred_in == 10 and by_office["35.26.02"].on_hand == 10


def test_destruction_needs_two_officers_and_a_witness(settings: Settings) -> None:
    _setup(settings)
    with unit_of_work(settings) as s:
        for n in (3, 4):
            spoil_blank(s, blank_by_serial(s, sn(n)), cause=SpoilCause.FACTORY_DEFECT, actor="op")
    for officers, witness in ((("A", "A"), "W"), (("A", "B"), "a"), (("A", ""), "W")):
        with pytest.raises(LedgerError, match="two different"), unit_of_work(settings) as s:
            destroy_blanks(
                s, office_code=OFFICE, number="BAP-1", officers=officers, witness=witness, actor="x"
            )
    with unit_of_work(settings) as s, pytest.raises(LedgerError, match=sn(5)):
        destroy_blanks(
            s,
            office_code=OFFICE,
            number="BAP-1",
            officers=("A", "B"),
            witness="W",
            serials=[sn(5)],
            actor="x",
        )
    with unit_of_work(settings) as s:
        doc = destroy_blanks(
            s,
            office_code=OFFICE,
            number="BAP-1",
            officers=("A", "B"),
            witness="W",
            witness_role="Inspektorat",
            actor="x",
        )
        assert doc.count == 2
        assert blank_by_serial(s, sn(3)).state is BlankState.DESTROYED
        assert blank_by_serial(s, sn(3)).destruction_id == doc.id
    with pytest.raises(LedgerError, match="no spoiled"), unit_of_work(settings) as s:
        destroy_blanks(
            s, office_code=OFFICE, number="BAP-2", officers=("A", "B"), witness="W", actor="x"
        )
    _assert_balanced(settings)


def test_adjustments_need_a_second_person(settings: Settings) -> None:
    _setup(settings)
    with unit_of_work(settings) as s:
        station = _station(s)
        load_blanks(s, station, actor="op", count=2)
        off = adjustments.request_adjustment(
            s,
            office_code=OFFICE,
            kind=AdjustmentKind.WRITE_OFF,
            serials=[sn(10), sn(11)],
            reason="not found at stock count",
            requested_by="alice",
        )
        fix = adjustments.request_adjustment(
            s,
            office_code=OFFICE,
            kind=AdjustmentKind.CORRECT_STATE,
            serials=[sn(1)],
            target_state=BlankState.IN_STOCK,
            reason="found in the store room",
            requested_by="alice",
        )
        nope = adjustments.request_adjustment(
            s,
            office_code=OFFICE,
            kind=AdjustmentKind.WRITE_OFF,
            serials=[sn(12)],
            reason="typo",
            requested_by="alice",
        )
        assert blank_by_serial(s, sn(10)).state is BlankState.IN_STOCK  # nothing applied yet
        off_id, fix_id, nope_id = off.id, fix.id, nope.id
    with pytest.raises(LedgerError, match="different person"), unit_of_work(settings) as s:
        adjustments.approve_adjustment(s, off_id, approved_by="ALICE")
    with unit_of_work(settings) as s:
        adjustments.approve_adjustment(s, off_id, approved_by="bob")
        adjustments.approve_adjustment(s, fix_id, approved_by="bob")
        adjustments.reject_adjustment(s, nope_id, rejected_by="bob", note="wrong serial")
        b10 = blank_by_serial(s, sn(10))
        assert b10.state is BlankState.SPOILED and b10.spoil_cause is SpoilCause.MISSING
        assert blank_by_serial(s, sn(1)).state is BlankState.IN_STOCK
        assert blank_by_serial(s, sn(12)).state is BlankState.IN_STOCK
    with pytest.raises(LedgerError, match="already approved"), unit_of_work(settings) as s:
        adjustments.approve_adjustment(s, off_id, approved_by="carol")
    with session_factory(settings)() as s:
        from printsrv.ledger.models import Adjustment

        assert s.get_one(Adjustment, nope_id).status is AdjustmentStatus.REJECTED
        # written-off blanks are not physically there: they cannot be "destroyed"
        with pytest.raises(LedgerError, match="no spoiled"):
            destroy_blanks(
                s, office_code=OFFICE, number="BAP-9", officers=("A", "B"), witness="W", actor="x"
            )
    _assert_balanced(settings)


def test_ribbons_and_film(settings: Settings) -> None:
    _setup(settings)
    with unit_of_work(settings) as s:
        station = _station(s)
        ribbons.receive_consumable(
            s,
            kind=ConsumableKind.RIBBON,
            office_code=OFFICE,
            serial="R1",
            type_="YMCKO",
            capacity=200,
            actor="a",
        )
        ribbons.receive_consumable(
            s,
            kind=ConsumableKind.RIBBON,
            office_code=OFFICE,
            serial="R2",
            type_="YMCKOK",
            capacity=250,
            actor="a",
        )
        ribbons.receive_consumable(
            s,
            kind=ConsumableKind.FILM,
            office_code=OFFICE,
            serial="F1",
            type_="FILM",
            capacity=500,
            actor="a",
        )
        with pytest.raises(LedgerError, match="already"):
            ribbons.receive_consumable(
                s,
                kind=ConsumableKind.RIBBON,
                office_code=OFFICE,
                serial="R1",
                type_="YMCKO",
                capacity=200,
                actor="a",
            )
        ribbons.load_consumable(s, station, kind=ConsumableKind.RIBBON, serial="R1", actor="op")
        ribbons.load_consumable(s, station, kind=ConsumableKind.FILM, serial="F1", actor="op")
        with pytest.raises(LedgerError, match="replace"):
            ribbons.load_consumable(s, station, kind=ConsumableKind.RIBBON, serial="R2", actor="op")
        for i in range(3):
            ribbons.record_ribbon_usage(
                s,
                station,
                record_id=None,
                blank_serial=sn(i + 1),
                panels=5,
                film_panels=1,
                printer_level=99 - i,
                actor="daemon",
            )
        r1 = s.scalar(select(Ribbon).where(Ribbon.serial == "R1"))
        f1 = s.scalar(select(Film).where(Film.serial == "F1"))
        assert r1 is not None and f1 is not None
        assert (r1.capacity_panels, r1.panels_used, r1.printer_level) == (1000, 15, 97)
        assert (f1.capacity_panels, f1.panels_used) == (500, 3)
        assert s.scalar(select(func.count()).select_from(Film)) == 1
        assert s.scalar(select(func.count()).select_from(Ribbon)) == 2
        new = ribbons.replace_consumable(
            s, station, kind=ConsumableKind.RIBBON, serial="R2", printer_level=96, actor="op"
        )
        assert new.capacity_panels == 1500 and r1.state.value == "finished"
        assert r1.printer_level == 96 and r1.station_id is None
        ribbons.record_ribbon_usage(
            s,
            station,
            record_id=None,
            blank_serial=sn(4),
            panels=6,
            printer_level=None,
            actor="daemon",
        )
        assert new.panels_used == 6
        usage = s.scalars(select(RibbonUsage).order_by(RibbonUsage.id)).all()
        assert [u.ribbon_id for u in usage] == [r1.id] * 3 + [new.id]
        tags = list(s.scalars(select(AuditEvent.tag).where(AuditEvent.tag.like("ledger:ribbon:%"))))
        assert tags.count("ledger:ribbon:usage") == 4 and "ledger:ribbon:finish" in tags


def test_usage_without_a_loaded_ribbon_is_kept_and_flagged(settings: Settings) -> None:
    _setup(settings)
    with unit_of_work(settings) as s:
        station = _station(s)
        usage = ribbons.record_ribbon_usage(
            s,
            station,
            record_id=None,
            blank_serial=sn(1),
            panels=5,
            printer_level=None,
            actor="daemon",
        )
        assert usage.ribbon_id is None
        event = s.scalar(select(AuditEvent).where(AuditEvent.tag == "ledger:ribbon:usage"))
        assert event is not None and event.details["problem"] == "no roll loaded in our books"


def test_ribbon_transfer_moves_only_stock_between_offices(settings: Settings) -> None:
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import receive_consumable, transfer_consumable

    with unit_of_work(settings) as s:
        receive_consumable(s, kind=ConsumableKind.RIBBON, office_code="35.26.01",
                           serial="RIB-T1", type_="YMCKO", capacity=100, actor="a")
        item = transfer_consumable(s, kind=ConsumableKind.RIBBON, serial="RIB-T1",
                                   to_office_code="35.26.02", reference="BAST-R1", actor="a")
        assert s.get_one(Office, item.office_id).code == "35.26.02"
        with pytest.raises(LedgerError, match="two different offices"):
            transfer_consumable(s, kind=ConsumableKind.RIBBON, serial="RIB-T1",
                                to_office_code="35.26.02", reference="BAST-R2", actor="a")
        with pytest.raises(LedgerError, match="Berita Acara"):
            transfer_consumable(s, kind=ConsumableKind.RIBBON, serial="RIB-T1",
                                to_office_code="35.26.01", reference=" ", actor="a")
        tags = s.scalars(select(AuditEvent.tag)).all()
        assert "ledger:ribbon:transfer" in tags
