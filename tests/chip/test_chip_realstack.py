"""Through the real stack: pyscard → pcscd → vpcd → simulator processes.

Also checked by independent tools: ``opensc-tool`` reads public files, ``openssl cms -verify``
checks EF.SOD against the demo CSCA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from chip.bac import BacKey
from chip.errors import (
    CapacityError,
    CardLockedError,
    CardState,
    ChipError,
    NotBlankError,
    ReaderError,
    WrongCardError,
)
from chip.lds import HolderData, td1_mrz
from chip.pace import CanKey
from chip.pcsc import PcscChannel, list_readers
from chip.personalization import PersonalizationKeys, personalize_reader, probe_card_state
from chip.softkeys import DemoPki, SoftKeyDiversifier
from chip.verification import sod_content_info, verify_reader

pytestmark = pytest.mark.realstack
REPO = Path(__file__).resolve().parents[2]


def _probe(reader: str) -> CardState:
    channel = PcscChannel(reader)
    try:
        return probe_card_state(channel)
    finally:
        channel.close()


def test_personalize_verify_and_independent_tools(
        pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData, pki: DemoPki,
        bio_master: SoftKeyDiversifier, tmp_path: Path) -> None:
    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    result = personalize_reader(reader, holder, keys)
    assert result.card_state is CardState.LOCKED and result.reader == reader
    assert len(bytes.fromhex(result.chip_uid)) == 7 and result.atr.startswith("3B")
    assert result.apdus > 10 and result.bytes_sent > result.payload_bytes
    report = verify_reader(reader, pki.csca_certificate_der, bio_master,
                           access=BacKey.from_mrz(td1_mrz(holder)))
    assert report.ok, report.problems
    assert report.chip_uid == result.chip_uid and report.fingers_decrypted == 2
    assert report.access_control == "BAC" and report.active_authentication is True

    # openssl checks EF.SOD on its own
    (tmp_path / "sod.der").write_bytes(sod_content_info(report.raw_files["EF.SOD"]))
    (tmp_path / "csca.pem").write_bytes(
        pki.csca_certificate.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "sod.der"),
         "-CAfile", str(tmp_path / "csca.pem"), "-purpose", "any", "-binary",
         "-out", str(tmp_path / "lds.der")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr

    # opensc-tool, a reader without the MRZ: the application answers, the LDS files do not
    index = list_readers().index(reader)
    proc = subprocess.run(
        ["opensc-tool", "-r", str(index), "-s", "00A4040C07A0000002471001",
         "-s", "00A4020C02011E", "-s", "00B0000000"],
        capture_output=True, text=True, check=False, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("SW1=0x69, SW2=0x82") == 2, proc.stdout
    assert "SW1=0x90, SW2=0x00" in proc.stdout and "5F 01" not in proc.stdout


def _raw(channel: PcscChannel, hex_apdu: str) -> bytes:
    return channel.transmit(bytes.fromhex(hex_apdu))


def test_locked_card_needs_bac(pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData,
                               pki: DemoPki) -> None:
    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    personalize_reader(reader, holder, keys)
    with PcscChannel(reader) as channel:
        assert _raw(channel, "00A4040C07A0000002471001") == b"\x90\x00"
        for fid in ("011E", "0101", "0102", "0103", "010B", "011D", "010F"):
            assert _raw(channel, f"00A4020C02{fid}") == b"\x69\x82", fid
        assert _raw(channel, "00B0000000")[-2:] == b"\x69\x82"
        assert _raw(channel, "00B0810000")[-2:] == b"\x69\x82"  # by SFI (DG1)
        assert _raw(channel, "0088000008010203040506070800")[-2:] != b"\x90\x00"
    # without a key, or with a wrong MRZ, verify reads nothing
    report = verify_reader(reader, pki.csca_certificate_der, None)
    assert not report.ok and not report.raw_files
    assert "6982" in " ".join(report.problems)
    right = BacKey.from_mrz(td1_mrz(holder))
    wrong = BacKey(right.document_number, right.birth_date, "201231")  # lifetime cards say 991231
    report = verify_reader(reader, pki.csca_certificate_der, None, access=wrong)
    assert not report.ok and not report.raw_files
    assert "BAC failed" in " ".join(report.problems)
    report = verify_reader(reader, pki.csca_certificate_der, None, access=right)
    assert report.ok, report.problems


def test_pace_with_the_can(pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData,
                           pki: DemoPki) -> None:
    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    personalize_reader(reader, holder, keys, can="019283")
    # EF.CardAccess is public: opensc-tool reads the PACEInfo without a key
    index = list_readers().index(reader)
    proc = subprocess.run(["opensc-tool", "-r", str(index), "-s", "00A4000C023F00",
                           "-s", "00B09C0000"],
                          capture_output=True, text=True, check=False, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "31 14 30 12 06 0A 04 00 7F 00 07 02 02 04 02 02" in proc.stdout, proc.stdout
    report = verify_reader(reader, pki.csca_certificate_der, None, access=CanKey("019283"))
    assert report.ok, report.problems
    assert report.access_control == "PACE" and report.active_authentication is True
    wrong = verify_reader(reader, pki.csca_certificate_der, None, access=CanKey("019284"))
    assert not wrong.ok and not wrong.raw_files


@pytest.mark.parametrize("same_uid", [True, False], ids=["same-uid", "other-uid"])
def test_byte_copy_clone_fails_active_authentication(
        pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData, pki: DemoPki,
        tmp_path: Path, same_uid: bool) -> None:
    original = tmp_path / "original.json"
    pcsc_stack.restart_simulator(1, ["--state", str(original)])
    reader = pcsc_stack.reader_name(1)
    personalize_reader(reader, holder, keys)
    access = BacKey.from_mrz(td1_mrz(holder))
    assert verify_reader(reader, pki.csca_certificate_der, None, access=access).ok
    csca_pem = tmp_path / "csca.pem"
    csca_pem.write_bytes(pki.csca_certificate.public_bytes(serialization.Encoding.PEM))
    env = os.environ | {"PRINTSRV_INSTANCE_DIR": str(tmp_path / "instance")}
    env.pop("PRINTSRV_CONFIG", None)

    def chip_verify() -> tuple[int, dict[str, Any]]:
        """``run.py chip verify`` (the operator's command) with BAC from the MRZ."""
        proc = subprocess.run(
            [sys.executable, "run.py", "chip", "verify", "--reader", reader, "--mrz",
             td1_mrz(holder), "--csca", str(csca_pem), "--no-biometrics", "--json"],
            cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=120)
        return proc.returncode, json.loads(proc.stdout)

    code, genuine = chip_verify()
    assert code == 0 and genuine["ok"] and genuine["active_authentication"] is True, genuine
    # The cloner copies every file byte for byte onto a fresh chip and, knowing the MRZ from
    # DG1, gives it the same BAC keys; the AA private key never left the original card.
    state = json.loads(original.read_text())
    k_enc, k_mac = access.keys()
    clone_uid = state["uid"] if same_uid else "04A1B2C3D4E5F6"
    clone = {"uid": clone_uid, "life_cycle": state["life_cycle"], "files": state["files"],
             "secrets": {"bac_enc": k_enc.hex(), "bac_mac": k_mac.hex()}}
    (tmp_path / "clone.json").write_text(json.dumps(clone))
    pcsc_stack.restart_simulator(1, ["--state", str(tmp_path / "clone.json")])
    report = verify_reader(reader, pki.csca_certificate_der, None, access=access)
    assert report.passive_authentication_ok  # the copied files and EF.SOD are genuine ...
    assert report.active_authentication is False and not report.ok  # ... the chip is not
    assert any("Active Authentication failed" in p for p in report.problems)
    code, cloned = chip_verify()
    assert code == 1 and not cloned["ok"] and cloned["active_authentication"] is False, cloned


def test_already_locked_card(pcsc_stack: Any, keys: PersonalizationKeys,
                             holder: HolderData) -> None:
    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    personalize_reader(reader, holder, keys)
    with pytest.raises(CardLockedError) as info:
        personalize_reader(reader, holder, keys)
    assert info.value.card_state is CardState.LOCKED


def test_tear_mid_write_then_card_returns(pcsc_stack: Any, keys: PersonalizationKeys,
                                          holder: HolderData) -> None:
    pcsc_stack.restart_simulator(1, ["--tear-after", "12", "--reinsert-after", "0.8"])
    reader = pcsc_stack.reader_name(1)
    with pytest.raises(ChipError) as info:
        personalize_reader(reader, holder, keys)
    assert isinstance(info.value, ReaderError)
    assert info.value.card_state in (CardState.PARTIAL, CardState.UNKNOWN)
    assert not info.value.retryable
    pcsc_stack.wait_for_card(1)
    assert _probe(reader) is CardState.PARTIAL
    with pytest.raises(NotBlankError):
        personalize_reader(reader, holder, keys)


def test_card_state_survives_restart(pcsc_stack: Any, keys: PersonalizationKeys,
                                     holder: HolderData, tmp_path: Path) -> None:
    state = tmp_path / "card.json"
    pcsc_stack.restart_simulator(1, ["--state", str(state)])
    reader = pcsc_stack.reader_name(1)
    personalize_reader(reader, holder, keys)
    pcsc_stack.restart_simulator(1, ["--state", str(state)])
    assert _probe(reader) is CardState.LOCKED


def test_full_card(pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData) -> None:
    pcsc_stack.restart_simulator(1, ["--capacity", "4096"])
    with pytest.raises(CapacityError) as info:
        personalize_reader(pcsc_stack.reader_name(1), holder, keys)
    assert info.value.card_state is CardState.BLANK and info.value.retryable
    assert _probe(pcsc_stack.reader_name(1)) is CardState.BLANK


def test_wrong_card(pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData) -> None:
    pcsc_stack.restart_simulator(1, ["--foreign"])
    with pytest.raises(WrongCardError) as info:
        personalize_reader(pcsc_stack.reader_name(1), holder, keys)
    assert info.value.card_state is CardState.FOREIGN


def test_short_apdu_card(pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData,
                         pki: DemoPki, bio_master: SoftKeyDiversifier) -> None:
    pcsc_stack.restart_simulator(1, ["--short-only"])
    result = personalize_reader(pcsc_stack.reader_name(1), holder, keys)
    assert result.apdus > result.payload_bytes // 239
    assert verify_reader(pcsc_stack.reader_name(1), pki.csca_certificate_der, bio_master,
                         access=BacKey.from_mrz(td1_mrz(holder))).ok


def test_reader_without_card_and_unknown_reader(pcsc_stack: Any, keys: PersonalizationKeys,
                                                holder: HolderData) -> None:
    pcsc_stack.stop_simulator(1)
    try:
        with pytest.raises(ReaderError) as info:
            personalize_reader(pcsc_stack.reader_name(1), holder, keys)
        assert info.value.card_state is CardState.BLANK
        with pytest.raises(ReaderError, match="no reader named"):
            personalize_reader("No Such Reader 00 00", holder, keys)
    finally:
        pcsc_stack.start_simulator(1)


def test_pcscd_gone_and_restarted(pcsc_stack: Any, keys: PersonalizationKeys,
                                  holder: HolderData) -> None:
    if not pcsc_stack.owns_pcscd:
        pytest.skip("pcscd belongs to someone else on this machine; not restarting it")
    pcsc_stack.kill_pcscd()
    try:
        with pytest.raises(ReaderError) as info:
            personalize_reader(pcsc_stack.reader_name(0), holder, keys)
        assert info.value.card_state is CardState.BLANK
    finally:
        pcsc_stack.start_pcscd()
    pcsc_stack.restart_simulator(0)
    result = personalize_reader(pcsc_stack.reader_name(0), holder, keys)
    assert result.card_state is CardState.LOCKED


def test_cli_with_token_and_queued_record(pcsc_stack: Any, tmp_path: Path) -> None:
    """``run.py chip personalize/verify`` with the app's token, record store and demo CSCA."""
    env = os.environ | {"PRINTSRV_INSTANCE_DIR": str(tmp_path / "instance")}
    env.pop("PRINTSRV_CONFIG", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False, timeout=120)

    assert run("init", "--dev").returncode == 0
    assert run("demo-data", "--count", "1", "--out", str(tmp_path / "batch")).returncode == 0
    assert run("import", str(tmp_path / "batch")).returncode == 0
    request_id = json.loads((tmp_path / "batch" / "records.jsonl").read_text()
                            .splitlines()[0])["request_id"]
    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    proc = run("chip", "personalize", "--reader", reader, "--request-id", request_id, "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout)
    assert result["ok"] and result["card_state"] == "locked" and result["apdus"] > 10
    dump = tmp_path / "dump"
    proc = run("chip", "verify", "--reader", reader, "--request-id", request_id, "--json",
               "--dump", str(dump))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["ok"] and report["biometrics"]["fingers_decrypted"] == 2
    assert report["access_control"] == "BAC" and report["active_authentication"] is True
    assert report["chip_uid"] == result["chip_uid"]
    for name in ("EF.SOD.der", "EF.COM.der", "DG1.der", "DG2.der", "DG3.der", "CSCA.pem"):
        assert (dump / name).exists(), name
    assert (dump / "EF.SOD.cms").read_bytes() == (dump / "EF.SOD.der").read_bytes()[4:]
    proc2 = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(dump / "EF.SOD.cms"),
         "-CAfile", str(dump / "CSCA.pem"), "-purpose", "any", "-binary", "-out", "/dev/null"],
        capture_output=True, text=True, check=False)
    assert proc2.returncode == 0, proc2.stderr
    proc = run("chip", "personalize", "--reader", reader, "--request-id", request_id, "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["card_state"] == "locked"
