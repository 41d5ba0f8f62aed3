"""End to end through the real parts: cupsd + ippeveprinter (card simulator command), pcscd +
vpcd + our chip simulator, the token's keys, the real card face."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from printsrv.db import unit_of_work
from printsrv.ledger.models import Blank, BlankState
from printsrv.station.journal import CardJob, CardOutcome
from tests.station.conftest import counts, ledger_problems, stock_station

pytestmark = pytest.mark.realstack


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from printsrv.devstack.cups import CupsStack
    from printsrv.devstack.pcsc import PcscStack

    with PcscStack(sim_args=()) as pcsc, CupsStack(printers=["Card1"], ribbon_cards=50) as cups:
        yield pcsc, cups


def test_batch_through_cups_and_pcsc_with_faults(
    settings: Any, tmp_path: Path, stacks: Any
) -> None:
    from chip.pcsc import PcscChannel
    from chip.verification import verify_card
    from printsrv.keys import KeyStore
    from printsrv.products import record_bac_key
    from printsrv.station.chipenc import PcscEncoder
    from printsrv.station.daemon import Station
    from printsrv.station.devices import StationConfig, VirtualCardFeeder

    _pcsc, cups = stacks
    base = stock_station(settings, tmp_path, records=4, blanks=10, name="virt")
    queue = cups.queue_name
    config = StationConfig(name="virt", office=base.office, profile="virtual-ipp-card",
                           cups_queue=queue, reader="Virtual PCD 00 00", poll_interval=0.1)
    printer = cups.open_printer(queue, timeout=30.0)
    feeder = VirtualCardFeeder(35963, settings.keys_dir / "scp03-demo-master.hex",
                               log_dir=tmp_path / "log")
    encoder = PcscEncoder(settings, config, on_present=feeder.present, on_close=feeder.stop)
    try:
        with KeyStore.open(settings) as keys:
            encoder.bind_keys(keys)
            station = Station(settings, config, printer, encoder, keys=keys)
            first = station.run(max_cards=1)
            assert first[0].outcome is CardOutcome.ISSUED, first[0].message
            # The card in the encoder is a real, verifiable e-KTP chip.
            with PcscChannel("Virtual PCD 00 00") as channel:
                report = verify_card(channel, keys.csca_certificate_der(), keys.biometric_master(),
                                     access=record_bac_key(settings, first[0].request_id))
            assert report.ok, report.problems
            assert report.locked

            cups.inject_fault(queue, "media-jam")
            jammed = station.process_one()
            assert jammed is not None
            assert jammed.outcome is CardOutcome.SPOILED and jammed.cause == "jam_misfeed"
            problem = station.device_problem()
            assert problem is None or "jam" in problem  # CUPS keeps the report until a good job
            cups.clear_faults(queue)
            from printsrv.station.requests import request_resume

            with unit_of_work(settings) as session:
                request_resume(session, "virt")  # the operator cleared the jam
            rest = station.run(until_empty=True)
    finally:
        feeder.stop()
    outcomes = [r.outcome for r in [*first, jammed, *rest]]
    assert outcomes.count(CardOutcome.ISSUED) == 4
    assert counts(settings) == {"issued": 4}
    assert ledger_problems(settings) == []
    with unit_of_work(settings) as session:
        blanks = session.scalars(select(Blank)).all()
        assert sum(b.state is BlankState.ISSUED for b in blanks) == 4
        assert sum(b.state is BlankState.SPOILED for b in blanks) == 1
        assert all(b.chip_uid for b in blanks if b.state is BlankState.ISSUED)
        jobs = session.scalars(select(CardJob).where(CardJob.outcome == CardOutcome.ISSUED))
        assert all(j.print_job_id for j in jobs)
    docs = cups.received_documents(queue)
    assert len(docs) >= 4
    # The printer as CUPS reports it (state, supplies) is recorded and on the stations page.
    from printsrv.ledger.models import Station as StationRow
    from printsrv.web.ledger_services import station_view

    with unit_of_work(settings) as session:
        row = session.scalars(select(StationRow).where(StationRow.name == "virt")).one()
        status = row.printer_status
        view = station_view(session, row)
    assert status["state"] in {"idle", "processing"} and status["accepting"] is True
    assert status["markers"], status  # ippeveprinter reports its ribbon as a marker
    assert view.printer_state == status["state"] and view.queue_length == 0
    assert view.ribbon_level is not None and 0 <= view.ribbon_level <= 100
