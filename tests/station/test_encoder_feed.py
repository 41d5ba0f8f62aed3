"""The printer profile's ``[encoder]`` section moves the blank: a vendor-command profile sends
its ``to_encoder`` command through the printer port before each chip, and ``reject`` after a
failed chip; a vendor-SDK profile (no adapter) stops the station without costing a blank."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chip.errors import CardState, StatusWordError
from printers.directory import DirectoryPrinter
from printers.profiles import get_profile
from printsrv.config import Settings
from printsrv.station.devices import FakeEncoder
from printsrv.station.journal import CardOutcome
from tests.station.conftest import FAKE_PDF, ledger_problems, stock_station


@contextmanager
def _station(settings: Settings, tmp: Path, profile: str,
             encoder: FakeEncoder) -> Iterator[tuple[Any, DirectoryPrinter]]:
    from printsrv.keys import KeyStore
    from printsrv.station.daemon import Station

    config = dataclasses.replace(stock_station(settings, tmp, records=3, blanks=5),
                                 profile=profile)
    printer = DirectoryPrinter(tmp / "cards", get_profile(profile), name="st1")
    with KeyStore.open(settings) as keys:
        yield Station(settings, config, printer, encoder, keys=keys, idle_sleep=0.01,
                      render=lambda card: FAKE_PDF), printer


def test_a_vendor_command_profile_feeds_each_blank_and_rejects_a_failed_chip(
    settings: Settings, tmp_path: Path
) -> None:
    failure = StatusWordError("write failed", sw=0x6581, card_state=CardState.PARTIAL)
    with _station(settings, tmp_path, "evolis-primacy-2", FakeEncoder([failure])) as (
        station, printer
    ):
        results = station.run(until_empty=True)
    outcomes = [r.outcome for r in results]
    assert CardOutcome.RELEASED not in outcomes, [r.message for r in results]
    assert outcomes.count(CardOutcome.ISSUED) == 3 and outcomes.count(CardOutcome.SPOILED) == 1
    # Evolis raw commands: ESC Sic CR moves a blank in, ESC Ser CR sends a failed one out.
    feed, reject = b"\x1bSic\r", b"\x1bSer\r"
    assert printer.encoder_commands == [feed, reject, feed, feed, feed]
    assert ledger_problems(settings) == []


def test_a_cardsim_profile_moves_nothing_through_the_printer(settings: Settings,
                                                             tmp_path: Path) -> None:
    with _station(settings, tmp_path, "virtual-ipp-card", FakeEncoder()) as (station, printer):
        assert len(station.run(until_empty=True)) == 3
    assert printer.encoder_commands == []


def test_a_vendor_sdk_profile_stops_without_spending_a_blank(settings: Settings,
                                                             tmp_path: Path) -> None:
    with _station(settings, tmp_path, "zebra-zxp3", FakeEncoder()) as (station, _printer):
        [result] = station.run(max_cards=1)
    assert result.outcome is CardOutcome.RELEASED
    assert "vendor's SDK" in (station.paused_reason or result.message)
    assert ledger_problems(settings) == []
