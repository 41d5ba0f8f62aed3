"""The central database fails over under a printing station: a primary and a synchronous
streaming replica, the station mid-batch, the primary stopped with ``-m immediate`` and the
replica promoted. The station pauses, reconnects through the libpq multi-host URL and goes on,
and every card's fate is recorded exactly once (the intent journal settles the card in flight).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from printsrv import audit, schema
from printsrv.config import Settings, load_settings
from printsrv.db import engine_for, unit_of_work
from printsrv.models import AuditEvent
from printsrv.station.journal import CardOutcome
from tests.operations.pgpair import PostgresPair, available
from tests.station.conftest import counts, ledger_problems, make_rig

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None,
                                                   reason=str(available()))]
RECORDS = 12


@pytest.fixture
def pair() -> Iterator[PostgresPair]:
    pg = PostgresPair()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


def test_station_survives_a_failover(pair: PostgresPair, instance_dir: Path,
                                     tmp_path: Path) -> None:
    pair.psql(pair.primary_port, "CREATE DATABASE printsrv")
    settings: Settings = load_settings(
        overrides={"instance_dir": instance_dir, "database_url": pair.url("printsrv")}
    )
    schema.upgrade(settings)
    issued_at: list[tuple[float, Any]] = []
    with make_rig(settings, tmp_path, records=RECORDS, blanks=RECORDS + 6) as rig:
        station = rig.station()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["results"] = station.run(
                    until_empty=True, card_interval=0.3,
                    on_result=lambda r: issued_at.append((time.monotonic(), r)),
                )
            except BaseException as exc:  # surfaced below
                outcome["error"] = exc

        # The primary dies while the fourth card is at the printer: its print is journalled
        # (print_submitted), its fate is not yet written.
        at_printer, crashed = threading.Event(), threading.Event()

        def on_phase(name: str, job: Any) -> None:
            if name == "print_submitted" and len(issued_at) == 3 and not at_printer.is_set():
                at_printer.set()
                crashed.wait(30)

        station.on_phase = on_phase
        worker = threading.Thread(target=run)
        worker.start()
        assert at_printer.wait(60), outcome
        lost_at = time.monotonic()
        pair.crash_primary()
        crashed.set()
        time.sleep(1.0)  # the station meets the dead primary first
        promoting_at = time.monotonic()
        pair.promote_replica()
        worker.join(timeout=180)
        assert not worker.is_alive(), "the station never finished after the failover"
    assert "error" not in outcome, outcome.get("error")

    after = [t for t, r in issued_at if t > lost_at and r.outcome is CardOutcome.ISSUED]
    assert after, "no card was printed after the failover"
    print(f"\nfailover: {after[0] - lost_at:.2f} s from primary loss (promotion started after "
          f"1 s) to the next card printed, {after[0] - promoting_at:.2f} s from the promotion")
    assert station.database_outages == 1

    engine_for(settings.sqlalchemy_url).dispose()
    assert ledger_problems(settings) == []
    assert counts(settings) == {"issued": RECORDS}
    with unit_of_work(settings) as session:
        report = audit.verify(session)
        resumed = [e.details for e in session.scalars(
            select(AuditEvent).where(AuditEvent.tag == "station:station:resume"))]
    assert report.ok, report.problems
    # The card at the printer when the primary died was settled once, by the journal.
    settled = [d["settled"] for d in resumed if d["after"].startswith("database unreachable")]
    assert len(settled) == 1 and len(settled[0]) == 1, resumed
