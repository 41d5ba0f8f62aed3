"""EAC through the real stack: pyscard → pcscd → vpcd → simulator processes, and the CLI
(``keys eac-init``/``eac-rotate``, ``chip personalize``/``verify``) with the SoftHSM token."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chip import cvc, eac
from chip.bac import BacKey, perform_bac
from chip.cardops import card_facts, read_ef
from chip.errors import SecurityStatusError, StatusWordError
from chip.lds import Ef, HolderData, td1_mrz
from chip.pace import CanKey, perform_pace_can
from chip.pcsc import PcscChannel
from chip.personalization import PersonalizationKeys, personalize_reader
from chip.softkeys import DemoCvPki, DemoPki, SoftCvSigner, SoftKeyDiversifier, make_demo_cv_pki
from chip.transport import Transport
from chip.verification import verify_reader

pytestmark = pytest.mark.realstack
REPO = Path(__file__).resolve().parents[2]
TODAY = dt.datetime.now(dt.UTC).date()
CAN = "019283"


@pytest.fixture(scope="module")
def cv() -> DemoCvPki:
    return make_demo_cv_pki()


@pytest.fixture(scope="module")
def eac_reader(pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData,
               cv: DemoCvPki, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Simulator 1, personalized with the demo CV PKI's CVCA as trust point (state on disk)."""
    state = tmp_path_factory.mktemp("eac") / "card.json"
    pcsc_stack.restart_simulator(1, ["--state", str(state)])
    reader: str = pcsc_stack.reader_name(1)
    personalize_reader(reader, holder, replace(keys, cvca_certificate=cv.cvca_certificate),
                       can=CAN)
    return reader


def _dg3_after(reader: str, holder: HolderData, how: str) -> None:
    channel = PcscChannel(reader, exclusive=False)
    try:
        t = Transport(channel)
        facts = card_facts(t, channel.atr)
        if how == "bac":
            perform_bac(t, BacKey.from_mrz(td1_mrz(holder)))
        else:
            perform_pace_can(t, CanKey(CAN))
        assert read_ef(t, Ef.DG1, facts, secure=True)  # the chip talks to us ...
        with pytest.raises(SecurityStatusError) as exc:  # ... and keeps DG3
            read_ef(t, Ef.DG3, facts, secure=True)
        assert exc.value.sw == 0x6982
    finally:
        channel.close()


@pytest.mark.parametrize("how", ["bac", "pace"])
def test_dg3_unreadable_after_bac_or_pace_only(eac_reader: str, holder: HolderData,
                                               how: str) -> None:
    _dg3_after(eac_reader, holder, how)


def test_dg3_readable_after_ca_and_ta_and_still_encrypted(
        eac_reader: str, holder: HolderData, pki: DemoPki, bio_master: SoftKeyDiversifier,
        cv: DemoCvPki) -> None:
    for access in (BacKey.from_mrz(td1_mrz(holder)), CanKey(CAN)):
        report = verify_reader(eac_reader, pki.csca_certificate_der, bio_master, access=access,
                               inspection=cv.inspection())
        assert report.ok, report.problems
        assert report.chip_authentication is True and report.terminal_authentication is True
        assert report.fingers_decrypted == 2 and report.dg_hashes_valid[3]
        dg3 = report.raw_files["DG3"]
        assert holder.finger_left_index_fmr is not None
        assert holder.finger_left_index_fmr[:48] not in dg3  # the second wall
    # Without the biometric master the templates stay closed even after TA.
    report = verify_reader(eac_reader, pki.csca_certificate_der, None,
                           access=CanKey(CAN), inspection=cv.inspection())
    assert report.terminal_authentication is True and report.fingers_decrypted == 0


def _is(cv: DemoCvPki, *, rights: int = cvc.READ_DG3, start: dt.date | None = None,
        days: int = 30) -> eac.InspectionSystem:
    signer = SoftCvSigner()
    dv = cvc.parse_cv_certificate(cv.dv_certificate)
    start = start or TODAY - dt.timedelta(days=1)
    cert = cvc.issue(cv.dv, dv.chr, "IDISRS00001", signer.public_key, cvc.Role.IS, rights,
                     start, start + dt.timedelta(days=days))
    return eac.InspectionSystem([dv, cert], signer)


@pytest.mark.parametrize("case", ["expired", "foreign-cvca", "no-dg3-right"])
def test_dg3_refused_with_a_bad_inspection_system(
        eac_reader: str, holder: HolderData, pki: DemoPki, bio_master: SoftKeyDiversifier,
        cv: DemoCvPki, case: str) -> None:
    inspection = {
        "expired": lambda: _is(cv, start=TODAY - dt.timedelta(days=90)),
        "foreign-cvca": lambda: make_demo_cv_pki().inspection(),  # same names, other keys
        "no-dg3-right": lambda: _is(cv, rights=cvc.READ_DG4),
    }[case]()
    report = verify_reader(eac_reader, pki.csca_certificate_der, bio_master,
                           access=BacKey.from_mrz(td1_mrz(holder)), inspection=inspection)
    assert report.chip_authentication is True
    assert report.dg3_withheld and report.fingers_decrypted == 0 and not report.ok
    if case == "no-dg3-right":  # TA itself passes: the CHAT grants nothing for DG3
        assert report.terminal_authentication is True
        assert any("DG3" in p for p in report.problems)
    else:
        assert report.terminal_authentication is False
        assert any("Terminal Authentication failed" in p for p in report.problems)


@pytest.mark.parametrize("same_uid", [True, False], ids=["same-uid", "other-uid"])
def test_byte_copy_clone_fails_chip_authentication(
        pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData, pki: DemoPki,
        cv: DemoCvPki, tmp_path: Path, same_uid: bool) -> None:
    original = tmp_path / "original.json"
    pcsc_stack.restart_simulator(0, ["--state", str(original)])
    reader = pcsc_stack.reader_name(0)
    personalize_reader(reader, holder, replace(keys, cvca_certificate=cv.cvca_certificate))
    access = BacKey.from_mrz(td1_mrz(holder))
    assert verify_reader(reader, pki.csca_certificate_der, None, access=access,
                         inspection=cv.inspection()).chip_authentication is True
    state = json.loads(original.read_text())
    k_enc, k_mac = access.keys()
    clone = {"uid": state["uid"] if same_uid else "04A1B2C3D4E5F6",
             "life_cycle": state["life_cycle"], "files": state["files"],
             "secrets": {"bac_enc": k_enc.hex(), "bac_mac": k_mac.hex(),
                         "trust_points": state["secrets"]["trust_points"],
                         "eac_date": state["secrets"]["eac_date"]}}
    assert all(state["files"][f]["data"] == clone["files"][f]["data"] for f in state["files"])
    (tmp_path / "clone.json").write_text(json.dumps(clone))
    pcsc_stack.restart_simulator(0, ["--state", str(tmp_path / "clone.json")])
    report = verify_reader(reader, pki.csca_certificate_der, None, access=access,
                           inspection=cv.inspection())
    assert report.chip_authentication is False and not report.ok
    assert any("Chip Authentication failed" in p for p in report.problems)
    assert report.terminal_authentication is None and report.fingers_decrypted == 0


@pytest.mark.parametrize("how", ["bac", "pace"])
def test_ta_binds_to_the_access_and_a_wrong_id_picc_is_refused(
        eac_reader: str, holder: HolderData, cv: DemoCvPki, how: str) -> None:
    """PACE+CA+TA and BAC+CA+TA through pcscd: the IS signs the ID_PICC of the session's
    access (PACE: Comp of the chip's ephemeral PACE key; BAC: the document number); the
    other one is refused with 6300 and DG3 stays closed."""
    mrz = td1_mrz(holder)
    for attempt in ("wrong", "right"):
        channel = PcscChannel(eac_reader, exclusive=False)
        try:
            t = Transport(channel)
            facts = card_facts(t, channel.atr)
            if how == "bac":
                perform_bac(t, BacKey.from_mrz(mrz))
                right, wrong = eac.id_picc(mrz), bytes(32)
            else:
                right = eac.id_picc_pace(perform_pace_can(t, CanKey(CAN)))
                wrong = eac.id_picc(mrz)  # the BAC rule ("static binding") after PACE
            key = eac.ca_public_key(read_ef(t, Ef.DG14, facts, secure=True))
            assert key is not None
            ca = eac.chip_authentication(t, key)
            refs = eac.parse_ef_cvca(read_ef(t, Ef.CVCA, facts, secure=True))
            if attempt == "wrong":
                with pytest.raises(StatusWordError) as exc:
                    eac.terminal_authentication(t, cv.inspection(), refs, ca, wrong, facts=facts)
                assert exc.value.sw == 0x6300
                with pytest.raises(SecurityStatusError):
                    read_ef(t, Ef.DG3, facts, secure=True)
            else:
                eac.terminal_authentication(t, cv.inspection(), refs, ca, right, facts=facts)
                assert read_ef(t, Ef.DG3, facts, secure=True)
        finally:
            channel.close()


def test_short_apdu_card_cvca_rollover_by_command_chaining(
        pcsc_stack: Any, keys: PersonalizationKeys, holder: HolderData, pki: DemoPki,
        bio_master: SoftKeyDiversifier, cv: DemoCvPki, tmp_path: Path) -> None:
    """A card without extended length (``--short-only``) behind pcscd: TA with [link, DV, IS],
    the link certificate (domain parameters, ~434 bytes) sent as an ISO 7816-4 chain."""
    pcsc_stack.restart_simulator(0, ["--state", str(tmp_path / "short.json"), "--short-only"])
    reader = pcsc_stack.reader_name(0)
    personalize_reader(reader, holder, replace(keys, cvca_certificate=cv.cvca_certificate),
                       can=CAN)
    old = cvc.parse_cv_certificate(cv.cvca_certificate)
    new_key, dv_key, is_key = SoftCvSigner(), SoftCvSigner(), SoftCvSigner()
    start = TODAY - dt.timedelta(days=1)
    link = cvc.issue(cv.cvca, old.chr, "IDCVCAKTP00002", new_key.public_key, cvc.Role.CVCA, 3,
                     start, start + dt.timedelta(days=1000))
    dv = cvc.issue(new_key, link.chr, "IDDVKTP00002", dv_key.public_key, cvc.Role.DV_DOMESTIC,
                   3, start, start + dt.timedelta(days=90))
    is_cert = cvc.issue(dv_key, dv.chr, "IDISKTP00002", is_key.public_key, cvc.Role.IS,
                        cvc.READ_DG3, start, start + dt.timedelta(days=30))
    assert len(link.pso_data()) > 400
    sent: list[bytes] = []
    channel = PcscChannel(reader, exclusive=False)
    try:
        transmit = channel.transmit
        channel.transmit = lambda apdu: sent.append(apdu) or transmit(apdu)  # type: ignore[method-assign]
        t = Transport(channel)
        facts = card_facts(t, channel.atr)
        assert not facts.extended_length and facts.command_chaining  # from the ATR
        perform_bac(t, BacKey.from_mrz(td1_mrz(holder)))
        key = eac.ca_public_key(read_ef(t, Ef.DG14, facts, secure=True))
        assert key is not None
        ca = eac.chip_authentication(t, key)
        eac.terminal_authentication(t, eac.InspectionSystem([link, dv, is_cert], is_key),
                                    [old.chr], ca, eac.id_picc(td1_mrz(holder)), facts=facts)
        assert read_ef(t, Ef.DG3, facts, secure=True)
    finally:
        channel.close()
    assert any(a[0] == 0x1C and a[1] == 0x2A for a in sent)  # chained PSO under SM
    assert all(len(a) <= 4 + 1 + 255 + 1 for a in sent)  # short APDUs only
    # The card keeps the new trust point: the whole verify, with PACE, after the rollover.
    report = verify_reader(reader, pki.csca_certificate_der, bio_master, access=CanKey(CAN),
                           inspection=eac.InspectionSystem([dv, is_cert], is_key))
    assert report.ok, report.problems
    assert report.terminal_authentication is True and report.fingers_decrypted == 2


def test_cli_keys_eac_and_verify_as_inspection_system(pcsc_stack: Any, tmp_path: Path) -> None:
    """``keys eac-init``, ``chip personalize``/``verify`` with the token's IS key, then IS, DV
    and CVCA rotation: the card personalized before still opens DG3 (link certificate)."""
    env = os.environ | {"PRINTSRV_INSTANCE_DIR": str(tmp_path / "instance")}
    env.pop("PRINTSRV_CONFIG", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False, timeout=120)

    assert run("init", "--dev").returncode == 0
    proc = run("keys", "eac-init")
    assert proc.returncode == 0, proc.stderr
    assert "nothing (all present)" in proc.stdout  # init made the CV PKI already
    assert "IDCVCAKTP00001" in proc.stdout and "IDISKTP00001" in proc.stdout
    eac_dir = tmp_path / "instance" / "keys" / "eac"
    if not eac_dir.exists():
        eac_dir = next((tmp_path / "instance").rglob("eac"))
    for name in ("cvca.cvcert", "dv.cvcert", "is.cvcert"):
        out = subprocess.run(["cvc-print", "--cvc", str(eac_dir / name)], capture_output=True,
                             text=True, check=True).stdout
        assert "CHR: ID" in out
    assert run("demo-data", "--count", "1", "--out", str(tmp_path / "batch")).returncode == 0
    assert run("import", str(tmp_path / "batch")).returncode == 0
    request_id = json.loads((tmp_path / "batch" / "records.jsonl").read_text()
                            .splitlines()[0])["request_id"]
    pcsc_stack.restart_simulator(0)
    reader = pcsc_stack.reader_name(0)
    proc = run("chip", "personalize", "--reader", reader, "--request-id", request_id, "--json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "EF.CVCA" in json.loads(proc.stdout)["files"]

    def verify() -> dict[str, Any]:
        proc = run("chip", "verify", "--reader", reader, "--request-id", request_id, "--json")
        assert proc.returncode == 0, proc.stderr + proc.stdout
        report: dict[str, Any] = json.loads(proc.stdout)
        assert report["chip_authentication"] is True
        assert report["terminal_authentication"] is True
        assert report["biometrics"]["fingers_decrypted"] == 2
        return report

    verify()
    for level, fresh in (("is", "IDISKTP00002"), ("dv", "IDDVKTP00002"),
                         ("cvca", "IDCVCAKTP00002")):
        proc = run("keys", "eac-rotate", level)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert fresh in proc.stdout
        verify()  # the old card (trust point IDCVCAKTP00001) after each rotation
    assert (eac_dir / "links" / "IDCVCAKTP00002.cvcert").exists()
    link = cvc.parse_cv_certificate((eac_dir / "links" / "IDCVCAKTP00002.cvcert").read_bytes())
    assert link.car == "IDCVCAKTP00001" and link.chr == "IDCVCAKTP00002"
