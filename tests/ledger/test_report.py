"""The monthly report on a scripted February and March (WIB month boundaries)."""

from __future__ import annotations

from datetime import datetime

from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work
from printsrv.ledger import adjustments, ribbons
from printsrv.ledger import blanks as ops
from printsrv.ledger.check import check_ledger
from printsrv.ledger.models import AdjustmentKind, ConsumableKind, SpoilCause
from printsrv.ledger.reports import month_bounds, render_csv, stock_report
from printsrv.ledger.serials import serial_range
from printsrv.localtime import WIB
from tests.ledger.conftest import make_records

OFFICE, OTHER = "35.26.01", "35.26.02"


def sn(n: int) -> str:
    return f"KTP2026-{n:08d}"


def wib(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WIB.tz)


def test_month_bounds_are_wib() -> None:
    start, end = month_bounds("2026-03")
    assert start.isoformat() == "2026-02-28T17:00:00+00:00"
    assert end.isoformat() == "2026-03-31T17:00:00+00:00"
    start, end = month_bounds("2026-12")
    assert end.isoformat() == "2026-12-31T17:00:00+00:00"


def _script(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        ops.receive_blanks(
            s,
            office_code=OFFICE,
            first=sn(1),
            last=sn(100),
            handover_number="BA-1",
            actor="a",
            at=wib(2, 10),
        )
        station = ops.get_or_create_station(
            s, "st1", office_code=OFFICE, cups_queue="Card1", reader="r", profile="p"
        )
        records = make_records(s, station.office_id, 10)
        ribbons.receive_consumable(
            s,
            kind=ConsumableKind.RIBBON,
            office_code=OFFICE,
            serial="R1",
            type_="YMCKO",
            capacity=30,
            actor="a",
            at=wib(2, 10),
        )
        ribbons.load_consumable(
            s, station, kind=ConsumableKind.RIBBON, serial="R1", actor="a", at=wib(2, 20)
        )
        ops.load_blanks(s, station, actor="op", count=10, at=wib(2, 20))

        def card(record: int, at: datetime, *, spoil: SpoilCause | None = None) -> None:
            blank = ops.next_blank_for_station(s, station)
            assert blank is not None
            ops.reserve_blank(s, blank, record_id=record, actor="d", at=at)
            ribbons.record_ribbon_usage(
                s,
                station,
                record_id=record,
                blank_serial=blank.serial,
                panels=5,
                printer_level=90,
                actor="d",
                at=at,
            )
            if spoil:
                ops.spoil_blank(s, blank, cause=spoil, record_id=record, actor="d", at=at)
            else:
                ops.issue_blank(s, blank, record_id=record, chip_uid="04AA", actor="d", at=at)

        for i in range(3):
            card(records[i], wib(2, 20, 11, i))
        card(records[3], wib(2, 21), spoil=SpoilCause.PRINT_DEFECT)
        ops.transfer_blanks(
            s,
            from_office_code=OFFICE,
            to_office_code=OTHER,
            serials=serial_range(sn(91), sn(100)),
            handover_number="BA-T1",
            actor="a",
            at=wib(2, 22),
        )
        card(records[4], wib(2, 28, 23, 30))  # last minutes of February in WIB
        blank = ops.blank_by_serial(s, sn(50))
        # 00:30 WIB on 1 March is still 28 February in UTC: it belongs to March.
        ops.spoil_blank(s, blank, cause=SpoilCause.JAM_MISFEED, actor="op", at=wib(3, 1, 0, 30))
        ops.receive_blanks(
            s,
            office_code=OFFICE,
            first=sn(101),
            last=sn(150),
            handover_number="BA-2",
            actor="a",
            at=wib(3, 5),
        )
        ops.transfer_blanks(
            s,
            from_office_code=OTHER,
            to_office_code=OFFICE,
            serials=serial_range(sn(91), sn(95)),
            handover_number="BA-T2",
            actor="a",
            at=wib(3, 6),
        )
        ops.destroy_blanks(
            s,
            office_code=OFFICE,
            number="BAP-1",
            officers=("A", "B"),
            witness="W",
            actor="a",
            at=wib(3, 10),
        )
        adj = adjustments.request_adjustment(
            s,
            office_code=OFFICE,
            kind=AdjustmentKind.WRITE_OFF,
            serials=[sn(60)],
            reason="count",
            requested_by="a",
            at=wib(3, 12),
        )
        adjustments.approve_adjustment(s, adj.id, approved_by="b", at=wib(3, 12))
        card(records[5], wib(3, 15))
        card(records[6], wib(3, 15, 11))


def test_scripted_months(settings: Settings) -> None:
    _script(settings)
    with session_factory(settings)() as s:
        assert check_ledger(s).ok
        jan = stock_report(s, OFFICE, "2026-01")
        feb = stock_report(s, OFFICE, "2026-02")
        mar = stock_report(s, OFFICE, "2026-03")
        apr = stock_report(s, OFFICE, "2026-04")
        other_mar = stock_report(s, OTHER, "2026-03")

    keys = ("opening", "received", "transferred_in", "issued", "transferred_out", "destroyed")
    assert [jan[k] for k in (*keys, "closing")] == [0, 0, 0, 0, 0, 0, 0]
    assert [feb[k] for k in keys] == [0, 100, 0, 4, 10, 0]
    assert {c: n for c, n in feb["spoiled"].items() if n} == {"print_defect": 1}
    assert feb["closing"] == 85 and feb["balanced"]
    assert feb["spoiled_awaiting_destruction"] == 1
    assert [mar[k] for k in keys] == [85, 50, 5, 2, 0, 2]
    assert {c: n for c, n in mar["spoiled"].items() if n} == {"jam_misfeed": 1, "missing": 1}
    assert mar["closing"] == 85 + 50 + 5 - 2 - 2 and mar["balanced"]
    assert mar["spoiled_awaiting_destruction"] == 0
    assert apr["opening"] == apr["closing"] == mar["closing"]
    assert other_mar["opening"] == 10 and other_mar["transferred_out"] == 5
    assert other_mar["closing"] == 5

    assert [d["number"] for d in mar["documents"]["received"]] == ["BA-2"]
    assert mar["documents"]["transferred_in"] == [{"number": "BA-T2", "from": OTHER, "count": 5}]
    assert mar["documents"]["destroyed"][0]["count"] == 2
    assert feb["documents"]["transferred_out"] == [{"number": "BA-T1", "to": OTHER, "count": 10}]

    assert feb["ribbons"]["used_panels"] == 25 and feb["ribbons"]["cards"] == 5
    assert feb["ribbons"]["received"] == 1
    (roll,) = feb["ribbons"]["on_hand"]
    assert (roll["capacity_panels"], roll["used_panels"], roll["printer_level"]) == (150, 25, 90)
    assert mar["ribbons"]["used_panels"] == 10
    (roll,) = mar["ribbons"]["on_hand"]
    assert roll["remaining_panels"] == 115
    assert mar["forecast"]["ribbon_panels_per_card"] == 5
    assert mar["forecast"]["ribbon_cards"] == 23
    assert mar["forecast"]["blanks_on_hand"] == mar["closing"]
    assert mar["forecast"]["cards_possible"] == 23  # the ribbon, not the blanks, is the limit
    assert mar["forecast"]["film_cards"] is None  # no film at this office

    csv_text = render_csv(mar)
    assert "Blangko KTP-el (dengan chip),Stok awal,85,blanks:KTP-EL:opening" in csv_text
    assert "Rusak: Macet/salah tarik,1,blanks:KTP-EL:spoiled:jam_misfeed" in csv_text
    english = render_csv(mar, "en")
    assert "KTP-el blanks (with chip),Opening stock,85,blanks:KTP-EL:opening" in english


def test_each_stock_type_is_counted_apart(settings: Settings) -> None:
    """KTP-el chip blanks and KIA blanks: the check and the month report balance each apart."""
    at = wib(3, 10, 3)
    with unit_of_work(settings) as s:
        ops.receive_blanks(s, office_code=OFFICE, first="KTP-000001", last="KTP-000005",
                           handover_number="BA-KTP", actor="t", at=at)
        ops.receive_blanks(s, office_code=OFFICE, first="KIA-000001", last="KIA-000003",
                           handover_number="BA-KIA", actor="t", at=at, stock_type="KIA")
        ops.spoil_blank(s, ops.blank_by_serial(s, "KIA-000002"), cause=SpoilCause.PRINT_DEFECT,
                        actor="t", at=at)
        ops.transfer_blanks(s, from_office_code=OFFICE, to_office_code=OTHER,
                            serials=["KIA-000003"], handover_number="BA-T", actor="t", at=at)
    with session_factory(settings)() as s:
        result = check_ledger(s)
        assert result.ok, result.problems
        got = {(b.office, b.stock_type): (b.received, b.transferred_in, b.spoiled,
                                          b.transferred_out, b.on_hand) for b in result.offices}
        assert got == {
            (OFFICE, "KTP-EL"): (5, 0, 0, 0, 5),
            (OFFICE, "KIA"): (3, 0, 1, 1, 1),
            (OTHER, "KIA"): (0, 1, 0, 0, 1),
        }
        report = stock_report(s, OFFICE, "2026-03")
    kia, ktp = report["stock_types"]["KIA"], report["stock_types"]["KTP-EL"]
    assert (kia["received"], kia["spoiled_total"], kia["transferred_out"], kia["closing"]) == (
        3, 1, 1, 1)
    assert (ktp["received"], ktp["spoiled_total"], ktp["closing"]) == (5, 0, 5)
    assert kia["balanced"] and ktp["balanced"] and report["balanced"]
    assert report["closing"] == 6 and report["received"] == 8
    assert "Blangko KIA,Stok akhir,1,blanks:KIA:closing" in render_csv(report)
