"""One record, one chip: the station's encoder and ``run.py chip personalize`` build the same
data groups, byte for byte, for the same record and the same card (issue 12)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chip import personalization
from chip.lds import Ef
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import Record

UID = bytes.fromhex("04A1B2C3D4E5F6")


class Built(Exception):
    """Raised by the stand-ins once the files are built: no card needed."""

    def __init__(self, files: dict[Ef, bytes]) -> None:
        super().__init__("built")
        self.files = files


def _build(holder: Any, keys: Any, options: Any) -> None:
    files = personalization.build_files(holder, keys, UID, None,
                                        options or personalization.PersonalizationOptions())
    raise Built(files)


def _import(settings: Settings, tmp_path: Path) -> str:
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch

    batch = write_demo_batch(settings, 40, tmp_path / "b", seed=11, batch_id="ONE-CHIP",
                             office_codes=["35.26.01"])
    assert import_batch(settings, batch).accepted
    with unit_of_work(settings) as session:
        records = session.scalars(select(Record).where(Record.card_type == "KTP-EL")).all()
        # a WNA record if there is one (its nationality differs most between old mappings)
        wna = [r for r in records if r.data.get("kewarganegaraan") == "WNA"]
        return (wna or records)[0].request_id


def test_station_and_cli_write_the_same_data_groups(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from printsrv.commands import chip as chip_command
    from printsrv.keys import KeyStore
    from printsrv.records import load_card_input
    from printsrv.station.chipenc import PcscEncoder
    from printsrv.station.devices import StationConfig

    request_id = _import(settings, tmp_path)
    cans: list[str | None] = []

    def build(holder: Any, keys: Any, options: Any = None, can: str | None = None) -> None:
        cans.append(can)
        _build(holder, keys, options)

    monkeypatch.setattr(personalization, "personalize",
                        lambda channel, holder, keys, options=None, can=None:
                        build(holder, keys, options, can))
    monkeypatch.setattr(personalization, "personalize_reader",
                        lambda reader, holder, keys, options=None, can=None:
                        build(holder, keys, options, can))
    class NoChannel:
        def __init__(self, reader: str) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr("chip.pcsc.PcscChannel", NoChannel)

    card = load_card_input(settings, request_id, actor="test", purpose="chip")
    config = StationConfig(name="st1", office="35.26.01", profile="virtual-ipp-card",
                           cups_queue="Card1", reader="Virtual PCD 00 00")
    with KeyStore.open(settings) as keys:
        encoder = PcscEncoder(settings, config, keys)
        with pytest.raises(Built) as station:
            encoder.personalize(card, blank_serial="KTP-000001")

    monkeypatch.setenv("PRINTSRV_INSTANCE_DIR", str(settings.instance_dir))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", settings.sqlalchemy_url)
    monkeypatch.setattr(chip_command, "load_card_input",
                        lambda *a, **k: card, raising=False)
    args = argparse.Namespace(reader="Virtual PCD 00 00", request_id=request_id,
                              readback="full", max_face_bytes=12_000, json=True,
                              card_profile="generic-globalplatform")
    with pytest.raises(Built) as cli:
        chip_command.cmd_personalize(args)

    ours, theirs = station.value.files, cli.value.files
    assert cans[0] is not None and cans == [cans[0], cans[0]]  # the record's one CAN
    assert set(ours) == set(theirs)
    for ef in ours:
        if ef is Ef.SOD:  # the same hashes; the ECDSA signature is randomised (and its length)
            continue
        if ef is Ef.DG3:  # encrypted under a fresh nonce each time: same size
            assert len(ours[ef]) == len(theirs[ef])
            continue
        assert ours[ef] == theirs[ef], ef
