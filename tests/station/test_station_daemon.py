"""The daemon against stand-ins (directory printer + fake encoder): every card fate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chip.errors import CardState, SecureChannelError, StatusWordError
from printsrv.db import unit_of_work
from printsrv.ledger.models import Blank, BlankState, Station
from printsrv.models import AuditEvent, Record, RecordKey, RecordState
from printsrv.station.journal import CardJob, CardOutcome
from tests.station.conftest import counts, ledger_problems, make_rig


def _station_row(session: Any, name: str) -> Station:
    """The station's one row (ledger identity and what its daemon is doing)."""
    return session.scalars(select(Station).where(Station.name == name)).one()


def _blanks(settings: Any) -> dict[str, BlankState]:
    with unit_of_work(settings) as session:
        return {b.serial: b.state for b in session.scalars(select(Blank))}


def test_batch_issued_and_ledger_balanced(rig: Any) -> None:
    results = rig.station().run(until_empty=True)
    assert [r.outcome for r in results] == [CardOutcome.ISSUED] * 5
    assert counts(rig.settings) == {"issued": 5}
    states = _blanks(rig.settings)
    assert sum(s is BlankState.ISSUED for s in states.values()) == 5
    assert sum(s is BlankState.IN_HOPPER for s in states.values()) == 7
    assert ledger_problems(rig.settings) == []
    with unit_of_work(rig.settings) as session:
        assert session.scalars(select(RecordKey)).all() == []  # biometrics shredded
        issued = session.scalars(select(AuditEvent).where(
            AuditEvent.tag == "station:card:issue")).all()
        assert len(issued) == 5 and all(e.details["chip_uid"] for e in issued)
        jobs = {j.id: j for j in session.scalars(select(CardJob))}
        for event in issued:  # the print job that fed the card, on the job and in the event
            job = jobs[event.details["card_job"]]
            assert job.print_job_id and event.details["print_job"] == job.print_job_id
        row = _station_row(session, "st1")
        assert row.state.value == "stopped" and row.cards_issued == 5 and row.pid
    assert len(list((rig.printer.directory).glob("*.pdf"))) == 5


def test_chip_failure_on_partial_card_spoils_and_requeues(rig: Any) -> None:
    rig.encoder.script = [StatusWordError("write failed", sw=0x6581, card_state=CardState.PARTIAL)]
    results = rig.station().run(until_empty=True)
    assert results[0].outcome is CardOutcome.SPOILED and results[0].cause == "chip_failure"
    assert sum(r.outcome is CardOutcome.ISSUED for r in results) == 5  # record retried
    with unit_of_work(rig.settings) as session:
        blank = session.scalar(select(Blank).where(Blank.serial == results[0].blank_serial))
        assert blank.state is BlankState.SPOILED and blank.spoil_cause.value == "chip_failure"
        rec = session.scalar(select(Record).where(Record.request_id == results[0].request_id))
        assert rec.state is RecordState.ISSUED and rec.failure_count == 1
        spoil = _spoil_event(session, results[0].blank_serial)
        assert spoil["cause"] == "chip_failure" and spoil["phase"] == "chip_started"
    assert ledger_problems(rig.settings) == []


def _spoil_event(session: Any, serial: str) -> dict[str, Any]:
    """The details of the one spoil audit event of the card on blank ``serial``."""
    [event] = [e for e in session.scalars(select(AuditEvent).where(
        AuditEvent.tag == "station:card:spoil")) if e.details["blank_serial"] == serial]
    return dict(event.details)


def test_chip_failure_on_blank_card_retries_same_blank(rig: Any) -> None:
    rig.encoder.script = [SecureChannelError("mac", card_state=CardState.BLANK)]
    results = rig.station().run(max_cards=1)
    assert results[0].outcome is CardOutcome.ISSUED
    with unit_of_work(rig.settings) as session:
        job = session.get(CardJob, results[0].job_id)
        assert job.chip_attempts == 2
    assert _blanks(rig.settings)[results[0].blank_serial] is BlankState.ISSUED


def test_repeated_failures_hold_the_record(rig: Any) -> None:
    fail = [StatusWordError("bad", sw=0x6581, card_state=CardState.PARTIAL) for _ in range(3)]
    rig.encoder.script = fail
    rig.station().run(max_cards=3)
    with unit_of_work(rig.settings) as session:
        held = session.scalars(select(Record).where(Record.state == RecordState.HELD)).all()
        assert len(held) == 1 and held[0].failure_count == 3
        assert "failed cards" in (held[0].hold_reason or "")
    assert ledger_problems(rig.settings) == []


def test_jam_spoils_card_and_requeues_record(rig: Any) -> None:
    rig.printer.inject_fault("media-jam", after_cards=1)
    station = rig.station()
    cleared = []

    def clear(name: str, job: Any) -> None:  # the operator clears the jam while paused
        if station.paused_reason and not cleared:
            rig.printer.clear_faults()
            cleared.append(True)

    station.on_phase = clear
    results = station.run(max_cards=2)
    assert results[1].outcome is CardOutcome.SPOILED and results[1].cause == "jam_misfeed"
    assert station.paused_reason and "jam" in station.paused_reason
    with unit_of_work(rig.settings) as session:  # lost in the printer, after the chip
        assert _spoil_event(session, results[1].blank_serial)["phase"] == "print_submitted"
    rig.printer.clear_faults()
    rest = rig.station().run(until_empty=True)
    assert sum(r.outcome is CardOutcome.ISSUED for r in results + rest) == 5
    assert ledger_problems(rig.settings) == []


def test_ribbon_out_pauses_and_prints_same_card_after_refill(rig: Any) -> None:
    import threading
    import time

    rig.printer.inject_fault("ribbon-out", after_cards=1)
    station = rig.station()

    def operator() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not station.paused_reason:
            time.sleep(0.01)
        time.sleep(0.1)
        with unit_of_work(rig.settings) as session:
            reason = _station_row(session, "st1").pause_reason
        seen.append(reason)
        rig.printer.clear_faults()
        rig.printer.simulator.refill(ribbon=True)

    seen: list[str | None] = []
    t = threading.Thread(target=operator)
    t.start()
    results = station.run(until_empty=True)
    t.join()
    assert seen and seen[0] and "ribbon" in seen[0]
    outcomes = [r.outcome for r in results]
    assert outcomes.count(CardOutcome.ISSUED) == 5
    assert ledger_problems(rig.settings) == []


def test_stop_while_paused_spoils_written_card(rig: Any) -> None:
    rig.printer.inject_fault("cover-open", after_cards=0)
    station = rig.station()

    def stop_when_paused(name: str, job: Any) -> None:
        pass

    import threading
    import time

    def stopper() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not station.paused_reason:
            time.sleep(0.01)
        station.stop_event.set()

    t = threading.Thread(target=stopper)
    t.start()
    results = station.run()
    t.join()
    assert station.paused_reason is not None
    # Either stopped before claiming (cover open seen first) or spoiled the written card.
    assert all(r.outcome is not CardOutcome.ISSUED for r in results)
    assert ledger_problems(rig.settings) == []


def test_reader_gone_releases_blank_and_pauses(rig: Any) -> None:
    station = rig.station()
    calls = []

    def gone(serial: str) -> None:
        if not calls:
            calls.append(serial)
            rig.encoder.reader_gone = "reader gone: Virtual PCD 00 00 unplugged"

    rig.encoder.hook = gone
    import threading
    import time

    def replug() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not station.paused_reason:
            time.sleep(0.01)
        time.sleep(0.05)
        rig.encoder.reader_gone = None

    t = threading.Thread(target=replug)
    t.start()
    results = station.run(until_empty=True)
    t.join()
    assert results[0].outcome is CardOutcome.RELEASED, [(r.outcome, r.message) for r in results]
    with unit_of_work(rig.settings) as session:
        from printsrv.ledger.models import BlankMovement
        mv = [(m.kind.value, m.to_state.value, m.actor) for m in session.scalars(
            select(BlankMovement).where(BlankMovement.serial == calls[0]))]
    assert _blanks(rig.settings)[calls[0]] in (BlankState.IN_HOPPER, BlankState.ISSUED), mv
    assert [r.outcome for r in results].count(CardOutcome.ISSUED) == 5
    assert ledger_problems(rig.settings) == []


def test_qc_reject(rig: Any) -> None:
    rejected: list[int] = []

    def qc(outcome: Any) -> str | None:
        if not rejected:
            rejected.append(1)
            return "photo smeared"
        return None

    results = rig.station(qc=qc).run(until_empty=True)
    assert results[0].cause == "qc_reject"
    assert [r.outcome for r in results].count(CardOutcome.ISSUED) == 5
    assert ledger_problems(rig.settings) == []


def test_render_error_holds_record_and_keeps_blank(rig: Any) -> None:
    def render(card: Any) -> bytes:
        raise ValueError("name does not fit")

    results = rig.station(render=render).run(max_cards=1)
    assert results[0].outcome is CardOutcome.RELEASED
    assert _blanks(rig.settings)[results[0].blank_serial] is BlankState.IN_HOPPER
    assert counts(rig.settings)["held"] == 1


def test_no_blanks_pauses(settings: Any, tmp_path: Any) -> None:
    with make_rig(settings, tmp_path, records=3, blanks=1) as rig:
        station = rig.station()
        first = station.run(max_cards=1)
        assert first[0].outcome is CardOutcome.ISSUED
        assert station.process_one() is None
        assert station.paused_reason and "no blanks" in station.paused_reason
    assert counts(settings) == {"issued": 1, "queued": 2}


def test_encoder_software_error_releases_blank_and_waits_for_operator(rig: Any) -> None:
    import threading
    import time

    from printsrv.station.requests import request_resume

    calls: list[str] = []

    def boom(serial: str) -> None:
        if not calls:
            calls.append(serial)
            raise ValueError("bug in the chip library")

    rig.encoder.hook = boom
    station = rig.station()
    seen: list[str | None] = []

    def operator() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not station.paused_reason:
            time.sleep(0.01)
        time.sleep(0.3)  # several polls: a software fault does not clear by itself
        seen.append(station.paused_reason)
        with unit_of_work(rig.settings) as session:
            request_resume(session, "st1")

    t = threading.Thread(target=operator)
    t.start()
    results = station.run(until_empty=True)
    t.join()
    assert seen and seen[0] and "encoder software error" in seen[0]
    assert results[0].outcome is CardOutcome.RELEASED
    assert [r.outcome for r in results].count(CardOutcome.ISSUED) == 5
    assert _blanks(rig.settings)[calls[0]] in (BlankState.IN_HOPPER, BlankState.ISSUED)
    assert ledger_problems(rig.settings) == []


def test_on_request_makes_only_the_cards_asked_for(rig: Any) -> None:
    import threading
    import time

    from printsrv.station.requests import add_batch_request, batch_remaining

    station = rig.station()
    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.extend(station.run(on_request=True)))
    runner.start()
    try:
        time.sleep(0.5)
        assert results == [] and counts(rig.settings) == {"queued": 5}  # idle: nothing asked
        with unit_of_work(rig.settings) as session:
            # noted for the web page, which offers "print a batch" only to such a station
            assert _station_row(session, "st1").details["on_request"] is True
            assert add_batch_request(session, "st1", 2, actor="op") == 2
        deadline = time.monotonic() + 30
        while counts(rig.settings).get("issued", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # it must not go on to a third card
        assert counts(rig.settings) == {"issued": 2, "queued": 3}
        with unit_of_work(rig.settings) as session:
            assert batch_remaining(_station_row(session, "st1")) == 0
            tags = session.scalars(select(AuditEvent.tag)).all()
            assert "station:station:batch_request" in tags
    finally:
        station.stop_event.set()
        runner.join(30)
    assert ledger_problems(rig.settings) == []


def test_each_card_names_the_operator_of_its_station(rig: Any) -> None:
    """The station's starter operates it until someone asks for a batch; that person's name
    then goes on the cards (card history and operator spoilage use it)."""
    import dataclasses

    from printsrv.station.requests import add_batch_request

    rig.config = dataclasses.replace(rig.config, operator="budi")
    station = rig.station()
    station.start()
    assert station.process_one() is not None
    with unit_of_work(rig.settings) as session:
        assert add_batch_request(session, "st1", 1, actor="siti") == 1
    assert station.process_one() is not None
    rig.config = dataclasses.replace(rig.config, operator=None)
    restarted = rig.station()
    restarted.start()  # started without a name: nobody is named any more
    assert restarted.process_one() is not None
    with unit_of_work(rig.settings) as session:
        jobs = session.scalars(select(CardJob).order_by(CardJob.id)).all()
        assert [j.operator for j in jobs] == ["budi", "siti", None]
        starts = session.scalars(select(AuditEvent).where(
            AuditEvent.tag == "station:station:start").order_by(AuditEvent.seq)).all()
        assert [e.details["operator"] for e in starts] == ["budi", None]
    assert ledger_problems(rig.settings) == []


def test_operator_comes_from_station_settings() -> None:
    from printsrv.config import load_settings
    from printsrv.station.devices import StationConfig

    settings = load_settings(overrides={"stations": {
        "a": {"office": "35.26.01", "operator": "rina"}, "b": {"office": "35.26.01"}}})
    assert StationConfig.from_settings(settings, "a").operator == "rina"
    assert StationConfig.from_settings(settings, "b").operator is None
