"""A KIA never takes a KTP-el (chip) blank, nor the reverse (issue 12): each card product's
blank stock type is loaded, claimed and counted apart."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from printsrv.db import unit_of_work
from printsrv.ledger.blanks import load_blanks, receive_blanks, station_by_name
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import Blank, BlankState
from printsrv.models import Record
from printsrv.station import reasons
from printsrv.station.journal import CardOutcome
from tests.station.conftest import counts, ledger_problems, make_rig


def _make_kia(settings: Any, n: int) -> set[str]:
    """Turn the first ``n`` queued records into KIA records; their request ids."""
    with unit_of_work(settings) as session:
        ids = list(session.scalars(select(Record.id).order_by(Record.id).limit(n)))
        session.execute(update(Record).where(Record.id.in_(ids)).values(card_type="KIA"))
        return set(session.scalars(select(Record.request_id).where(Record.id.in_(ids))))


def _blank_of(settings: Any) -> dict[str, tuple[str, str]]:
    """request id → (blank stock type, record card type) of every issued card."""
    with unit_of_work(settings) as session:
        rows = session.execute(
            select(Record.request_id, Blank.stock_type, Record.card_type)
            .join(Blank, Blank.record_id == Record.id)
            .where(Blank.state == BlankState.ISSUED)
        ).all()
    return {rid: (stock, card) for rid, stock, card in rows}


def _events(settings: Any) -> list[tuple[str, str]]:
    """The station's pause and resume events: tag and reason."""
    from printsrv.models import AuditEvent

    with unit_of_work(settings) as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tag.in_(["station:station:pause", "station:station:resume"]))
            .order_by(AuditEvent.seq)
        ).all()
        return [(e.tag, e.details.get("reason") or e.details.get("after")) for e in rows]


def test_kia_waits_for_kia_blanks_and_never_takes_a_ktp_el_blank(
    settings: Any, tmp_path: Any
) -> None:
    with make_rig(settings, tmp_path, records=4, blanks=6) as rig:
        kia = _make_kia(settings, 1)
        station = rig.station()
        results = station.run(until_empty=True)
        # the KTP-el records are printed; the KIA record stays queued and the station says why
        assert [r.outcome for r in results] == [CardOutcome.ISSUED] * 3
        assert counts(settings) == {"issued": 3, "queued": 1}
        assert station.paused_reason == reasons.NO_STOCK + "KIA"
        assert all(v == ("KTP-EL", "KTP-EL") for v in _blank_of(settings).values())
        assert reasons.in_indonesian(station.paused_reason).startswith("Rekaman antre")
        # polling again keeps the station waiting: one pause in the audit log, not one a poll
        assert station.process_one() is None and station.process_one() is None
        assert station.wait_ready() is None and station.paused_reason == reasons.NO_STOCK + "KIA"
        assert _events(settings) == [("station:station:pause", reasons.NO_STOCK + "KIA")]

        with unit_of_work(settings) as session:
            receive_blanks(session, office_code=rig.config.office, first="KIA-000001",
                           last="KIA-000003", handover_number="BAST-KIA", actor="t",
                           stock_type="KIA")
            st = station_by_name(session, "st1")
            with pytest.raises(LedgerError, match="KIA-000001 is KIA stock, not KTP-EL"):
                load_blanks(session, st, actor="t", serials=["KIA-000001"], stock_type="KTP-EL")
        with unit_of_work(settings) as session:
            loaded = load_blanks(session, station_by_name(session, "st1"), actor="t", count=2,
                                 stock_type="KIA")
            assert [b.serial for b in loaded] == ["KIA-000001", "KIA-000002"]
        more = station.run(until_empty=True)
        assert [r.outcome for r in more] == [CardOutcome.ISSUED]
        assert station.paused_reason is None
        assert _events(settings)[1] == ("station:station:resume", reasons.NO_STOCK + "KIA")
        issued = _blank_of(settings)
        assert {rid for rid, v in issued.items() if v == ("KIA", "KIA")} == kia
        assert all(stock == card for stock, card in issued.values())
        assert counts(settings) == {"issued": 4}
        assert ledger_problems(settings) == []


def test_load_by_count_takes_the_asked_stock_type_only(settings: Any, tmp_path: Any) -> None:
    with make_rig(settings, tmp_path, records=1, blanks=1) as rig, \
            unit_of_work(settings) as session:
        receive_blanks(session, office_code=rig.config.office, first="KIA-000001",
                       last="KIA-000002", handover_number="BAST-KIA", actor="t",
                       stock_type="KIA")
        st = station_by_name(session, "st1")
        with pytest.raises(LedgerError, match="0 KTP-EL blanks in stock"):
            load_blanks(session, st, actor="t", count=1)  # the default stock is KTP-el
        with pytest.raises(LedgerError, match="unknown blank stock type 'SIM'"):
            load_blanks(session, st, actor="t", count=1, stock_type="SIM")


def test_demo_loads_both_stock_types_and_prints_kia_on_kia_blanks(
    settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from printers.directory import DirectoryPrinter
    from printers.profiles import get_profile
    from printsrv.commands import demo
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch
    from printsrv.keys import KeyStore
    from printsrv.station.daemon import Station
    from printsrv.station.devices import StationConfig
    from tests.station.conftest import FAKE_PDF, FakeEncoder

    batch = write_demo_batch(settings, 6, tmp_path / "batch", seed=5, batch_id="T-demo",
                             office_codes=[demo.OFFICE])
    assert import_batch(settings, batch).accepted
    kia = _make_kia(settings, 2)
    monkeypatch.setenv("PRINTSRV_INSTANCE_DIR", str(settings.instance_dir))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", settings.database_url)
    said: list[str] = []
    console = type("Console", (), {"say": staticmethod(said.append)})()
    demo_settings = demo._station_settings(settings, cups_server=None)
    demo.ensure_stock(demo_settings, 6, console)
    assert any("received KIA blanks KIADEMO-000001..KIADEMO-000100, loaded 5" in s
               for s in said), said
    assert any("received KTP-EL blanks DEMO-000001..DEMO-000100, loaded 14" in s
               for s in said), said

    config = StationConfig.from_settings(demo_settings, demo.STATION)
    printer = DirectoryPrinter(tmp_path / "cards", get_profile(config.profile), name="demo")
    with KeyStore.open(settings) as keys:
        station = Station(settings, config, printer, FakeEncoder(), keys=keys, idle_sleep=0.01,
                          render=lambda card: FAKE_PDF)
        results = station.run(until_empty=True)
    assert [r.outcome for r in results] == [CardOutcome.ISSUED] * 6
    issued = _blank_of(settings)
    assert {rid for rid, v in issued.items() if v == ("KIA", "KIA")} == kia
    assert all(stock == card for stock, card in issued.values())
    with unit_of_work(settings) as session:
        serials = dict(session.execute(
            select(Record.request_id, Blank.serial).join(Blank, Blank.record_id == Record.id)
        ).all())
    assert all(serials[rid].startswith("KIADEMO-") for rid in kia)
    assert ledger_problems(settings) == []
