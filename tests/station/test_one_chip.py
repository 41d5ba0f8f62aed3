"""One record gives one chip: the station's encoder and ``run.py chip personalize`` write the
same data groups (issue 12), through pcscd + vpcd + the simulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from printsrv.cardinput import CardInput
from printsrv.db import unit_of_work
from printsrv.models import Record
from printsrv.products import holder_data
from tests.station.conftest import stock_station

#: The data groups whose bytes depend only on the record and the card (EF.SOD carries the
#: signing time; DG3 is encrypted with a fresh nonce).
SAME = ("EF.COM", "DG1", "DG2", "DG7", "DG11", "DG12")


def _card(**fields: str) -> CardInput:
    base = {
        "nik": "3526014508990001", "nama": "SITI AMINAH", "tanggal_lahir": "1999-08-05",
        "jenis_kelamin": "PEREMPUAN", "tempat_lahir": "BANGKALAN", "alamat": "JL. MAWAR 1",
        "rt": "001", "rw": "002", "kel_desa": "KEMAYORAN", "kecamatan": "BANGKALAN",
        "kabupaten_kota": "SURABAYA", "provinsi": "JAWA TIMUR", "agama": "ISLAM",
        "status_perkawinan": "BELUM KAWIN", "golongan_darah": "", "pekerjaan": "PELAJAR",
        "kewarganegaraan": "WNI", "berlaku_hingga": "SEUMUR HIDUP", "tempat_terbit": "BANGKALAN",
    }
    return CardInput("R-1", {**base, **fields}, b"", b"", issue_date=dt.date(2026, 1, 2))


def test_holder_data_follows_the_card_face_and_icao() -> None:
    h = holder_data(_card())
    assert h.address[1] == "RT/RW 001/002"
    assert h.issuing_authority == "BANGKALAN"  # tempat_terbit, not the holder's regency
    assert h.personal_summary == "AGAMA=ISLAM;STATUS=BELUM KAWIN"
    assert h.nationality == "IDN"
    assert holder_data(_card(kewarganegaraan="WNA", negara="JPN")).nationality == "JPN"
    # ICAO 9303: XXX is "unspecified nationality"; <<< is filler, not a code
    assert holder_data(_card(kewarganegaraan="WNA", negara="")).nationality == "XXX"


def test_chipless_card_and_bad_date_name_the_record() -> None:
    from printsrv.errors import PrintSrvError

    with pytest.raises(PrintSrvError, match=r"R-1.*KIA cards have no chip"):
        holder_data(_card(card_type="KIA"))
    with pytest.raises(PrintSrvError, match="record R-1: tanggal_lahir"):
        holder_data(_card(tanggal_lahir="05-08-1999"))


@pytest.fixture(scope="module")
def pcsc() -> Iterator[Any]:
    from printsrv.devstack.pcsc import PcscStack

    with PcscStack(sim_args=()) as stack:
        yield stack


@pytest.mark.realstack
def test_cli_personalize_writes_the_stations_data_groups(
    settings: Any, tmp_path: Path, pcsc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chip.pcsc import PcscChannel
    from chip.verification import verify_card
    from printsrv.cli import main
    from printsrv.keys import KeyStore
    from printsrv.products import record_bac_key
    from printsrv.records import load_card_input
    from printsrv.station.chipenc import PcscEncoder
    from printsrv.station.devices import VirtualCardFeeder

    config = stock_station(settings, tmp_path, records=6, blanks=1, name="one")
    with unit_of_work(settings) as session:
        rid = session.scalar(
            select(Record.request_id).where(Record.card_type == "KTP-EL").order_by(Record.id)
        )
    assert rid is not None
    card = load_card_input(settings, rid, actor="test", purpose="chip")
    feeder = VirtualCardFeeder(35963, settings.keys_dir / "scp03-demo-master.hex",
                               log_dir=tmp_path / "log")
    encoder = PcscEncoder(settings, config, on_present=feeder.present)

    def read_back(keys: Any) -> dict[str, bytes]:
        with PcscChannel(config.reader) as channel:
            report = verify_card(channel, keys.csca_certificate_der(), keys.biometric_master(),
                                 access=record_bac_key(settings, rid))
        assert report.ok, report.problems
        assert report.access_control == "BAC" and report.active_authentication
        return report.raw_files

    try:
        with KeyStore.open(settings) as keys:
            encoder.bind_keys(keys)
            encoder.present_blank("B-1")
            station_chip = encoder.personalize(card, blank_serial="B-1")
            by_station = read_back(keys)
        encoder.present_blank("B-1")  # a fresh blank chip with the same UID
        monkeypatch.setenv("PRINTSRV_INSTANCE_DIR", str(settings.instance_dir))
        monkeypatch.setenv("PRINTSRV_DATABASE_URL", settings.database_url)
        with pytest.raises(SystemExit) as done:
            main(["chip", "personalize", "--reader", config.reader, "--request-id", rid])
        assert done.value.code == 0
        with KeyStore.open(settings) as keys:
            by_cli = read_back(keys)
        # run.py chip verify opens BAC with the record's MRZ; without a key it must not read
        with pytest.raises(SystemExit) as done:
            main(["chip", "verify", "--reader", config.reader, "--request-id", rid])
        assert done.value.code == 0
        with pytest.raises(SystemExit) as done:
            main(["chip", "verify", "--reader", config.reader, "--no-access-control"])
        assert done.value.code == 1
        # ... and PACE with the CAN the record was given for its card
        with unit_of_work(settings) as session:
            can = session.scalar(select(Record.card_access_number)
                                 .where(Record.request_id == rid))
        assert can is not None and len(can) == 6 and can.isdigit()
        with pytest.raises(SystemExit) as done:
            main(["chip", "verify", "--reader", config.reader, "--can", can])
        assert done.value.code == 0
        wrong = f"{(int(can) + 1) % 1_000_000:06d}"
        with pytest.raises(SystemExit) as done:
            main(["chip", "verify", "--reader", config.reader, "--can", wrong])
        assert done.value.code == 1
    finally:
        feeder.stop()
    assert station_chip.uid
    for name in SAME:
        assert name in by_station, name
        assert by_cli[name] == by_station[name], f"{name} differs"
