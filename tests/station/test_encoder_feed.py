"""The printer profile's ``[encoder]`` section moves the blank: a vendor-command profile sends
its ``to_encoder`` command through the printer port before each chip, ``reject`` after a
failed chip and ``eject`` for an untouched blank the chip could not be reached on (released, back
to the hopper by the operator); a vendor-SDK profile (no adapter) stops the station without
costing a blank."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chip.errors import CardState, ReaderError, StatusWordError
from printers.directory import DirectoryPrinter
from printers.profiles import get_profile
from printsrv.config import Settings
from printsrv.station.devices import FakeEncoder
from printsrv.station.journal import CardOutcome
from printsrv.station.reasons import in_indonesian
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


def _blank_states(settings: Settings) -> dict[str, str]:
    from sqlalchemy import select

    from printsrv.db import unit_of_work
    from printsrv.ledger.models import Blank

    with unit_of_work(settings) as s:
        return {b.serial: b.state.value for b in s.scalars(select(Blank))}


def test_an_untouched_blank_the_reader_lost_is_ejected_and_released(
    settings: Settings, tmp_path: Path
) -> None:
    lost = ReaderError("reader unplugged", card_state=CardState.BLANK)
    with _station(settings, tmp_path, "evolis-primacy-2", FakeEncoder([lost])) as (
        station, printer
    ):
        [result] = station.run(max_cards=1)
    assert result.outcome is CardOutcome.RELEASED
    assert (station.paused_reason or "").startswith("reader gone")
    assert in_indonesian(station.paused_reason or "") == (
        "Pembaca kartu tidak terhubung: reader unplugged [card blank]; blangko keluar ke baki: "
        "masukkan kembali ke hopper")
    # ESC Sic CR moved it in; ESC Se CR sends it out to the tray (not the reject box)
    assert printer.encoder_commands == [b"\x1bSic\r", b"\x1bSe\r"]
    assert "in_hopper" in _blank_states(settings).values()  # released, nothing spoiled
    assert "spoiled" not in _blank_states(settings).values()
    assert ledger_problems(settings) == []


@pytest.mark.parametrize(("state", "outcome", "last"), [
    (CardState.BLANK, CardOutcome.RELEASED, b"\x1bSe\r"),  # untouched: out to the tray
    (CardState.PARTIAL, CardOutcome.SPOILED, b"\x1bSer\r"),  # written to: the reject box
])
def test_an_encoder_software_fault_ejects_a_blank_and_rejects_a_written_one(
    settings: Settings, tmp_path: Path, state: CardState, outcome: CardOutcome, last: bytes
) -> None:
    encoder = FakeEncoder()

    def crash(serial: str) -> None:
        encoder.hook, encoder.state = None, state
        raise RuntimeError("driver bug")

    encoder.hook = crash
    with _station(settings, tmp_path, "evolis-primacy-2", encoder) as (station, printer):
        [result] = station.run(max_cards=1)
    assert result.outcome is outcome
    assert printer.encoder_commands == [b"\x1bSic\r", last]
    assert (station.paused_reason or "").startswith("encoder software error")
    assert ledger_problems(settings) == []
