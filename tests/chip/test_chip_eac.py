"""EAC v1 against the in-process simulator: Chip Authentication (anti-cloning), Terminal
Authentication guarding DG3, the CV certificates (also checked by OpenPACE's ``cvc-print``)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from chip import biometrics, cvc, eac
from chip.apdu import CommandApdu
from chip.bac import BacKey, perform_bac
from chip.cardops import card_facts, read_ef
from chip.errors import (
    MalformedError,
    SecurityStatusError,
    StatusWordError,
    VerificationError,
)
from chip.lds import Ef, HolderData, parse_dg1, td1_mrz
from chip.pace import CanKey, perform_pace_can
from chip.personalization import PersonalizationKeys, personalize
from chip.simulator.card import CardConfig, Secrets, SimulatedCard, SimulatedChannel
from chip.softkeys import DemoCvPki, DemoPki, SoftCvSigner, SoftKeyDiversifier, make_demo_cv_pki
from chip.transport import Transport
from chip.verification import verify_card
from tests.chip.conftest import CardFactory

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def cv() -> DemoCvPki:
    return make_demo_cv_pki()


@pytest.fixture
def eac_card(make_card: CardFactory, keys: PersonalizationKeys, holder: HolderData,
             cv: DemoCvPki) -> SimulatedCard:
    card = make_card()
    personalize(SimulatedChannel(card), holder,
                replace(keys, cvca_certificate=cv.cvca_certificate), can="019283")
    return card


def _bac(card: SimulatedCard, holder: HolderData) -> tuple[Transport, object]:
    t = Transport(SimulatedChannel(card))
    facts = card_facts(t, card.atr)
    perform_bac(t, BacKey.from_mrz(td1_mrz(holder)))
    return t, facts


def _ca(t: Transport, facts: object) -> eac.ChipAuthenticationResult:
    key = eac.ca_public_key(read_ef(t, Ef.DG14, facts, secure=True))  # type: ignore[arg-type]
    assert key is not None
    return eac.chip_authentication(t, key)


def _is_cert(cv: DemoCvPki, signer: SoftCvSigner, *, rights: int = cvc.READ_DG3,
             effective: dt.date | None = None, days: int = 30,
             chr_: str = "IDISTEST00002") -> eac.InspectionSystem:
    dv = cvc.parse_cv_certificate(cv.dv_certificate)
    start = effective or TODAY - dt.timedelta(days=1)
    cert = cvc.issue(cv.dv, dv.chr, chr_, signer.public_key, cvc.Role.IS, rights, start,
                     start + dt.timedelta(days=days))
    return eac.InspectionSystem([dv, cert], signer)


def _read_dg3(t: Transport, facts: object) -> bytes:
    return read_ef(t, Ef.DG3, facts, secure=True)  # type: ignore[arg-type]


def test_verify_with_ca_and_ta_reads_the_fingerprints(
        eac_card: SimulatedCard, holder: HolderData, pki: DemoPki,
        bio_master: SoftKeyDiversifier, cv: DemoCvPki) -> None:
    access = BacKey.from_mrz(td1_mrz(holder))
    report = verify_card(SimulatedChannel(eac_card), pki.csca_certificate_der, bio_master,
                         access=access, inspection=cv.inspection())
    assert report.ok, report.problems
    assert report.chip_authentication is True and report.terminal_authentication is True
    assert report.fingers_decrypted == 2 and report.dg_hashes_valid[3]
    assert report.dg_hashes_valid[14]  # DG14 (the CA key) is covered by EF.SOD
    # Without an inspection system the chip keeps DG3: reported, its hash left unchecked.
    plain = verify_card(SimulatedChannel(eac_card), pki.csca_certificate_der, bio_master,
                        access=access)
    assert plain.ok and plain.dg3_withheld and plain.fingers_decrypted == 0
    assert 3 not in plain.dg_hashes_valid and plain.chip_authentication is True
    assert any("Terminal Authentication" in n for n in plain.notes)


def test_dg3_refused_after_bac_pace_and_ca_alone(eac_card: SimulatedCard,
                                                 holder: HolderData) -> None:
    t, facts = _bac(eac_card, holder)
    assert read_ef(t, Ef.DG1, facts, secure=True)  # type: ignore[arg-type]
    with pytest.raises(SecurityStatusError):
        _read_dg3(t, facts)
    # READ BINARY by SFI (no SELECT) is refused as well
    with pytest.raises(SecurityStatusError):
        t.transmit(CommandApdu(0x00, 0xB0, 0x83, 0x00, le=16))
    t = Transport(SimulatedChannel(eac_card))
    facts = card_facts(t, eac_card.atr)
    perform_pace_can(t, CanKey("019283"))
    with pytest.raises(SecurityStatusError):
        _read_dg3(t, facts)
    _ca(t, facts)  # CA alone proves the chip, not the terminal
    with pytest.raises(SecurityStatusError):
        _read_dg3(t, facts)


def test_ta_with_a_valid_is_certificate_then_dg3_is_still_encrypted(
        eac_card: SimulatedCard, holder: HolderData, cv: DemoCvPki) -> None:
    t, facts = _bac(eac_card, holder)
    ca = _ca(t, facts)
    refs = eac.parse_ef_cvca(read_ef(t, Ef.CVCA, facts, secure=True))  # type: ignore[arg-type]
    assert refs == [cvc.parse_cv_certificate(cv.cvca_certificate).chr]
    mrz = parse_dg1(read_ef(t, Ef.DG1, facts, secure=True))  # type: ignore[arg-type]
    eac.terminal_authentication(t, cv.inspection(), refs, ca, eac.id_picc(mrz))
    dg3 = _read_dg3(t, facts)
    # The second wall: the templates are encrypted under the biometric master's card key.
    assert holder.finger_right_index_fmr and holder.finger_right_index_fmr[:64] not in dg3
    wrong = SoftKeyDiversifier(bytes(16))
    with pytest.raises(VerificationError):
        biometrics.decrypt_dg3(dg3, wrong, eac_card.card_identity, "")


@pytest.mark.parametrize("case", ["expired", "dv-moves-the-chip-date", "no-dg3-right",
                                  "dv-without-rights", "foreign-cvca", "wrong-key"])
def test_ta_refusals_keep_dg3_closed(eac_card: SimulatedCard, holder: HolderData,
                                     cv: DemoCvPki, case: str) -> None:
    t, facts = _bac(eac_card, holder)
    ca = _ca(t, facts)
    mrz = parse_dg1(read_ef(t, Ef.DG1, facts, secure=True))  # type: ignore[arg-type]
    refs = eac.parse_ef_cvca(read_ef(t, Ef.CVCA, facts, secure=True))  # type: ignore[arg-type]
    signer = SoftCvSigner()
    if case == "expired":  # expired 30 days before the chip's date (its personalization day)
        inspection = _is_cert(cv, signer, effective=TODAY - dt.timedelta(days=60))
    elif case == "dv-moves-the-chip-date":  # a DV moved the chip's date past the IS expiry
        inspection = _is_cert(cv, signer, days=1)
        dv_late = cvc.issue(cv.cvca, inspection.chain[0].car, "IDDVKTP00009",
                            cv.dv.public_key, cvc.Role.DV_DOMESTIC, 3,
                            TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=90))
        late_is = cvc.issue(cv.dv, dv_late.chr, "IDISTEST00003", signer.public_key,
                            cvc.Role.IS, cvc.READ_DG3, TODAY - dt.timedelta(days=1),
                            TODAY + dt.timedelta(days=1))
        inspection = eac.InspectionSystem([dv_late, late_is], signer)
    elif case == "no-dg3-right":
        inspection = _is_cert(cv, signer, rights=cvc.READ_DG4)
    elif case == "dv-without-rights":  # rights are the AND of the chain
        dv0 = cvc.issue(cv.cvca, cvc.parse_cv_certificate(cv.cvca_certificate).chr,
                        "IDDVKTP00008", cv.dv.public_key, cvc.Role.DV_DOMESTIC, 0,
                        TODAY - dt.timedelta(days=1), TODAY + dt.timedelta(days=90))
        is_cert = cvc.issue(cv.dv, dv0.chr, "IDISTEST00004", signer.public_key, cvc.Role.IS,
                            cvc.READ_DG3, TODAY - dt.timedelta(days=1),
                            TODAY + dt.timedelta(days=30))
        inspection = eac.InspectionSystem([dv0, is_cert], signer)
    elif case == "foreign-cvca":  # same names, another CVCA's keys: signatures fail
        inspection = make_demo_cv_pki().inspection()
    else:  # our certificate, somebody else's key signs the challenge
        inspection = replace(cv.inspection(), signer=SoftCvSigner())
    if case == "dv-moves-the-chip-date":
        with pytest.raises(SecurityStatusError):  # the IS expired by the chip's new date
            eac.terminal_authentication(t, inspection, refs, ca, eac.id_picc(mrz))
        assert eac_card.secrets.eac_date == cvc.encode_date(TODAY + dt.timedelta(days=10))
    elif case in ("no-dg3-right", "dv-without-rights"):
        eac.terminal_authentication(t, inspection, refs, ca, eac.id_picc(mrz))  # TA passes ...
    else:
        with pytest.raises(StatusWordError):
            eac.terminal_authentication(t, inspection, refs, ca, eac.id_picc(mrz))
    with pytest.raises(SecurityStatusError):  # ... DG3 stays closed
        _read_dg3(t, facts)


def test_foreign_country_chain_is_refused_by_the_terminal_and_the_chip(
        eac_card: SimulatedCard, holder: HolderData, pki: DemoPki,
        bio_master: SoftKeyDiversifier) -> None:
    foreign = make_demo_cv_pki(country="MY").inspection()
    report = verify_card(SimulatedChannel(eac_card), pki.csca_certificate_der, bio_master,
                         access=BacKey.from_mrz(td1_mrz(holder)), inspection=foreign)
    assert report.terminal_authentication is False and not report.ok
    assert report.dg3_withheld and report.fingers_decrypted == 0
    # The chip itself: MSE:Set DST with an unknown CAR is refused (6A88).
    t, facts = _bac(eac_card, holder)
    _ca(t, facts)
    with pytest.raises(StatusWordError) as exc:
        t.transmit(CommandApdu(0x00, 0x22, 0x81, 0xB6, b"\x83\x0eMYCVCAKTP00001"))
    assert exc.value.sw == 0x6A88


def test_ta_needs_ca_first(eac_card: SimulatedCard, holder: HolderData, cv: DemoCvPki) -> None:
    t, _ = _bac(eac_card, holder)
    car = cvc.parse_cv_certificate(cv.cvca_certificate).chr.encode()
    with pytest.raises(StatusWordError) as exc:
        t.transmit(CommandApdu(0x00, 0x22, 0x81, 0xB6, b"\x83" + bytes((len(car),)) + car))
    assert exc.value.sw == 0x6985


def _clone(card: SimulatedCard, holder: HolderData, scp03_master: SoftKeyDiversifier, *,
           uid: bytes, own_ca_key: bool) -> SimulatedCard:
    """Every file copied byte for byte onto a fresh chip, the BAC keys from the MRZ."""
    clone = SimulatedCard(CardConfig(uid=uid, scp03_master=scp03_master))
    clone.files = {fid: replace(f, data=bytearray(f.data)) for fid, f in card.files.items()}
    clone.life_cycle = card.life_cycle
    k_enc, k_mac = BacKey.from_mrz(td1_mrz(holder)).keys()
    clone.secrets = Secrets(bac_enc=k_enc, bac_mac=k_mac,
                            trust_points=card.secrets.trust_points,
                            eac_date=card.secrets.eac_date)
    if own_ca_key:  # the cloner's own key pair: DG14 (signed) still names the original's
        SimulatedCard._generate_key_pair(clone, CommandApdu(0x80, 0x46, 0, eac.P2_CA_KEY))
    return clone


@pytest.mark.parametrize("same_uid", [True, False], ids=["same-uid", "other-uid"])
@pytest.mark.parametrize("own_ca_key", [False, True], ids=["no-key", "own-key"])
def test_byte_copy_clone_fails_chip_authentication(
        eac_card: SimulatedCard, holder: HolderData, pki: DemoPki,
        scp03_master: SoftKeyDiversifier, cv: DemoCvPki, same_uid: bool,
        own_ca_key: bool) -> None:
    uid = eac_card.config.uid if same_uid else bytes.fromhex("04A1B2C3D4E5F6")
    clone = _clone(eac_card, holder, scp03_master, uid=uid, own_ca_key=own_ca_key)
    report = verify_card(SimulatedChannel(clone), pki.csca_certificate_der, None,
                         access=BacKey.from_mrz(td1_mrz(holder)), inspection=cv.inspection())
    assert report.chip_authentication is False and not report.ok
    assert any("Chip Authentication failed" in p for p in report.problems)
    assert report.fingers_decrypted == 0 and report.terminal_authentication is None


def test_cvca_link_certificate_rollover(make_card: CardFactory, keys: PersonalizationKeys,
                                        holder: HolderData, cv: DemoCvPki) -> None:
    card = make_card()
    personalize(SimulatedChannel(card), holder,
                replace(keys, cvca_certificate=cv.cvca_certificate))
    old = cvc.parse_cv_certificate(cv.cvca_certificate)
    new_key, dv_key, is_key = SoftCvSigner(), SoftCvSigner(), SoftCvSigner()
    start = TODAY - dt.timedelta(days=1)
    link = cvc.issue(cv.cvca, old.chr, "IDCVCAKTP00002", new_key.public_key, cvc.Role.CVCA, 3,
                     start, start + dt.timedelta(days=1000))
    dv = cvc.issue(new_key, link.chr, "IDDVKTP00002", dv_key.public_key, cvc.Role.DV_DOMESTIC,
                   3, start, start + dt.timedelta(days=90))
    is_cert = cvc.issue(dv_key, dv.chr, "IDISKTP00002", is_key.public_key, cvc.Role.IS,
                        cvc.READ_DG3, start, start + dt.timedelta(days=30))
    t, facts = _bac(card, holder)
    ca = _ca(t, facts)
    mrz = parse_dg1(read_ef(t, Ef.DG1, facts, secure=True))  # type: ignore[arg-type]
    eac.terminal_authentication(t, eac.InspectionSystem([link, dv, is_cert], is_key),
                                [old.chr], ca, eac.id_picc(mrz))
    assert _read_dg3(t, facts)
    # The chip now trusts both CVCA keys; a chain from the new one alone works next time.
    t, facts = _bac(card, holder)
    ca = _ca(t, facts)
    eac.terminal_authentication(t, eac.InspectionSystem([dv, is_cert], is_key),
                                [old.chr, link.chr], ca, eac.id_picc(mrz))
    assert _read_dg3(t, facts)


def test_cv_certificate_encoding_round_trip(cv: DemoCvPki) -> None:
    cvca = cvc.parse_cv_certificate(cv.cvca_certificate)
    assert cvca.role is cvc.Role.CVCA and cvca.has_domain_parameters and cvca.car == cvca.chr
    assert cvca.signed_by(cvca.public_key)
    dv = cvc.parse_cv_certificate(cv.dv_certificate)
    is_cert = cvc.parse_cv_certificate(cv.is_certificate)
    assert not dv.has_domain_parameters and dv.signed_by(cvca.public_key)
    assert is_cert.chat == 0x01 and is_cert.signed_by(dv.public_key)
    assert not is_cert.signed_by(cvca.public_key)
    assert cvc.decode_date(cvc.encode_date(dt.date(2031, 2, 9))) == dt.date(2031, 2, 9)
    assert cvc.encode_date(dt.date(2031, 2, 9)) == bytes((3, 1, 0, 2, 0, 9))
    assert cvc.chain_problem([dv, is_cert], cvca, TODAY) is None
    assert "expired" in (cvc.chain_problem([dv, is_cert], cvca,
                                           TODAY + dt.timedelta(days=400)) or "")


# -- OpenPACE, an independent implementation -------------------------------------------------
def _cvc_print(path: Path, cvc_dir: Path | None = None) -> str:
    tool = shutil.which("cvc-print")
    if tool is None:
        pytest.fail("cvc-print missing: apt-get install openpace (scripts/setup.sh --dev)")
    cmd = [tool, "--cvc", str(path)] + (["--cvc-dir", str(cvc_dir)] if cvc_dir else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_openpace_cvc_print_parses_and_verifies_our_certificates(cv: DemoCvPki,
                                                                 tmp_path: Path) -> None:
    trusted = tmp_path / "cvc"
    trusted.mkdir()
    expected = {
        "cvca": (cv.cvca_certificate, "CVCA certificate", ["Read fingerprint", "Read iris"]),
        "dv": (cv.dv_certificate, "DV certificate", ["Read fingerprint", "Read iris"]),
        "is": (cv.is_certificate, "Terminal certificate", ["Read fingerprint"]),
    }
    for name, (raw, role, rights) in expected.items():
        cert = cvc.parse_cv_certificate(raw)
        path = tmp_path / f"{name}.cvcert"
        path.write_bytes(raw)
        if name != "is":  # OpenPACE looks issuers up by their CHR
            (trusted / cert.chr).write_bytes(raw)
        text = _cvc_print(path)
        assert f"CAR: {cert.car}\n" in text and f"CHR: {cert.chr}\n" in text
        assert "Inspection system" in text and role in text
        assert all(r in text for r in rights)
        assert ("Read iris" in text) == ("Read iris" in rights)
        assert f"Effective Date: {cert.effective.isoformat()}" in text
        assert f"Expiration Date: {cert.expiration.isoformat()}" in text
    for name in expected:
        assert _cvc_print(tmp_path / f"{name}.cvcert", trusted).rstrip().endswith(
            "certificate verified")
    # A certificate signed by somebody else does not verify in OpenPACE either.
    forged = make_demo_cv_pki()
    (tmp_path / "forged.cvcert").write_bytes(forged.is_certificate)
    (tmp_path / "cvc2").mkdir()
    (tmp_path / "cvc2" / cvc.parse_cv_certificate(cv.dv_certificate).chr).write_bytes(
        cv.dv_certificate)
    (tmp_path / "cvc2" / cvc.parse_cv_certificate(cv.cvca_certificate).chr).write_bytes(
        cv.cvca_certificate)
    assert not _cvc_print(tmp_path / "forged.cvcert", tmp_path / "cvc2").rstrip().endswith(
        "certificate verified")



def test_short_apdu_card_with_the_trust_point(
        make_card: CardFactory, keys: PersonalizationKeys, holder: HolderData, pki: DemoPki,
        bio_master: SoftKeyDiversifier, cv: DemoCvPki) -> None:
    card = make_card(extended_length=False, max_command_data=255, max_response_data=256)
    personalize(SimulatedChannel(card), holder,
                replace(keys, cvca_certificate=cv.cvca_certificate))
    cvca = cvc.parse_cv_certificate(cv.cvca_certificate)
    assert card.secrets.trust_points == eac.encode_trust_point(cvca)  # CHR + key, no more
    report = verify_card(SimulatedChannel(card), pki.csca_certificate_der, bio_master,
                         access=BacKey.from_mrz(td1_mrz(holder)), inspection=cv.inspection())
    assert report.ok and report.terminal_authentication and report.fingers_decrypted == 2


@pytest.mark.parametrize("read_finger", [True, False], ids=["read-dg3", "no-rights"])
def test_an_openpace_cvc_create_certificate_is_accepted_on_its_chat(
        eac_card: SimulatedCard, holder: HolderData, pki: DemoPki,
        bio_master: SoftKeyDiversifier, cv: DemoCvPki, tmp_path: Path,
        read_finger: bool) -> None:
    """OpenPACE's ``cvc-create`` issues an IS certificate with our DV key: the chip takes it,
    and opens DG3 only when OpenPACE set the read-fingerprint bit."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tool = shutil.which("cvc-create")
    if tool is None:
        pytest.fail("cvc-create missing: apt-get install openpace (scripts/setup.sh --dev)")
    (tmp_path / "dv.cvcert").write_bytes(cv.dv_certificate)
    (tmp_path / "dv.pkcs8").write_bytes(cv.dv.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    expires = (TODAY + dt.timedelta(days=20)).strftime("%y%m%d")
    out = subprocess.run(
        [tool, "--role=terminal", "--type=is", "--chr=IDISOPACE00001", f"--expires={expires}",
         "--sign-with=dv.pkcs8", "--sign-as=dv.cvcert", "--scheme=ECDSA_SHA_256",
         "--out-cert=is.cvcert", "--out-key=is.key"] + (["--read-finger"] if read_finger
                                                          else []),
        cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    cert = cvc.parse_cv_certificate((tmp_path / "is.cvcert").read_bytes())
    assert cert.car == cvc.parse_cv_certificate(cv.dv_certificate).chr
    assert cert.role is cvc.Role.IS and cert.rights == (cvc.READ_DG3 if read_finger else 0)
    key = serialization.load_der_private_key((tmp_path / "is.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    inspection = eac.InspectionSystem([cvc.parse_cv_certificate(cv.dv_certificate), cert],
                                      SoftCvSigner(key))
    report = verify_card(SimulatedChannel(eac_card), pki.csca_certificate_der, bio_master,
                         access=BacKey.from_mrz(td1_mrz(holder)), inspection=inspection)
    assert report.terminal_authentication is True
    assert report.fingers_decrypted == (2 if read_finger else 0)
    assert report.ok is read_finger and report.dg3_withheld is not read_finger


def test_id_picc_is_the_full_nik_and_its_check_digit(holder: HolderData) -> None:
    from chip.lds import check_digit

    nik = holder.document_number
    assert len(nik) == 16
    assert eac.id_picc(td1_mrz(holder)) == (nik + check_digit(nik)).encode()


def test_ta_grant_ends_with_the_session(eac_card: SimulatedCard, holder: HolderData,
                                        cv: DemoCvPki) -> None:
    t, facts = _bac(eac_card, holder)
    ca = _ca(t, facts)
    mrz = parse_dg1(read_ef(t, Ef.DG1, facts, secure=True))  # type: ignore[arg-type]
    eac.terminal_authentication(t, cv.inspection(), eac.parse_ef_cvca(
        read_ef(t, Ef.CVCA, facts, secure=True)), ca, eac.id_picc(mrz))  # type: ignore[arg-type]
    assert _read_dg3(t, facts)
    # A new BAC session on the same power-up (plain commands end the old one): DG3 closed.
    perform_bac(t, BacKey.from_mrz(td1_mrz(holder)))
    with pytest.raises(SecurityStatusError):
        _read_dg3(t, facts)


# -- ID_PICC: the identifier TA binds to depends on how the session was opened ----------------
def _open(card: SimulatedCard, holder: HolderData, how: str) -> tuple[Transport, object, bytes]:
    """(transport, facts, ID_PICC the chip expects) after BAC or PACE with the CAN."""
    t = Transport(SimulatedChannel(card))
    facts = card_facts(t, card.atr)
    if how == "bac":
        perform_bac(t, BacKey.from_mrz(td1_mrz(holder)))
        return t, facts, eac.id_picc(td1_mrz(holder))
    sm = perform_pace_can(t, CanKey("019283"))
    assert sm.pace_chip_key is not None and len(sm.pace_chip_key) == 32
    return t, facts, eac.id_picc_pace(sm)


@pytest.mark.parametrize("how", ["bac", "pace"])
def test_ta_signs_the_id_picc_of_the_access_and_a_wrong_one_is_refused(
        eac_card: SimulatedCard, holder: HolderData, cv: DemoCvPki, how: str) -> None:
    mrz = td1_mrz(holder)
    t, facts, right = _open(eac_card, holder, how)
    if how == "pace":  # Comp(~PK_PICC) of this PACE run, not the document number
        assert right != eac.id_picc(mrz)
        wrong = eac.id_picc(mrz)  # the BAC rule (static binding), refused after PACE
    else:
        wrong = bytes(32)
    ca = _ca(t, facts)
    refs = eac.parse_ef_cvca(read_ef(t, Ef.CVCA, facts, secure=True))  # type: ignore[arg-type]
    with pytest.raises(StatusWordError) as exc:
        eac.terminal_authentication(t, cv.inspection(), refs, ca, wrong)
    assert exc.value.sw == 0x6300  # ICAO 9303-11 §7.1.5.5: signature verification failed
    with pytest.raises(SecurityStatusError):
        _read_dg3(t, facts)
    t, facts, right = _open(eac_card, holder, how)
    ca = _ca(t, facts)
    eac.terminal_authentication(t, cv.inspection(), refs, ca, right)
    assert _read_dg3(t, facts)
    # One TA per session (ICAO 9303-11 §7.1.3): a second run is refused, DG3 stays open.
    with pytest.raises(SecurityStatusError):
        eac.terminal_authentication(t, cv.inspection(), refs, ca, right)


def test_verify_with_pace_runs_ta_bound_to_the_pace_key(
        eac_card: SimulatedCard, pki: DemoPki, bio_master: SoftKeyDiversifier,
        cv: DemoCvPki) -> None:
    report = verify_card(SimulatedChannel(eac_card), pki.csca_certificate_der, bio_master,
                         access=CanKey("019283"), inspection=cv.inspection())
    assert report.ok, report.problems
    assert report.access_control == "PACE" and report.terminal_authentication is True
    assert report.fingers_decrypted == 2


# -- CVCA link certificates on a short-APDU card: PSO:Verify Certificate by command chaining ---
def _rollover(cv: DemoCvPki, *, link_expired: bool = False) -> tuple[
        cvc.CvCertificate, eac.InspectionSystem]:
    """A link certificate (old CVCA signs the new key, domain parameters included), a DV and
    an IS under the new CVCA."""
    old = cvc.parse_cv_certificate(cv.cvca_certificate)
    new_key, dv_key, is_key = SoftCvSigner(), SoftCvSigner(), SoftCvSigner()
    start = TODAY - dt.timedelta(days=1)
    link_start = TODAY - dt.timedelta(days=400) if link_expired else start
    link = cvc.issue(cv.cvca, old.chr, "IDCVCAKTP00002", new_key.public_key, cvc.Role.CVCA, 3,
                     link_start, link_start + dt.timedelta(days=(10 if link_expired else 1000)))
    dv = cvc.issue(new_key, link.chr, "IDDVKTP00002", dv_key.public_key, cvc.Role.DV_DOMESTIC,
                   3, start, start + dt.timedelta(days=90))
    is_cert = cvc.issue(dv_key, dv.chr, "IDISKTP00002", is_key.public_key, cvc.Role.IS,
                        cvc.READ_DG3, start, start + dt.timedelta(days=30))
    return link, eac.InspectionSystem([link, dv, is_cert], is_key)


def test_short_apdu_card_takes_the_link_certificate_by_command_chaining(
        make_card: CardFactory, keys: PersonalizationKeys, holder: HolderData,
        cv: DemoCvPki) -> None:
    card = make_card(extended_length=False, max_command_data=255, max_response_data=256)
    personalize(SimulatedChannel(card), holder,
                replace(keys, cvca_certificate=cv.cvca_certificate))
    link, inspection = _rollover(cv)
    assert link.has_domain_parameters and len(link.pso_data()) > 400  # no short APDU holds it
    sent: list[bytes] = []
    channel = SimulatedChannel(card)
    transmit = channel.transmit
    channel.transmit = lambda apdu: sent.append(apdu) or transmit(apdu)  # type: ignore[method-assign]
    t = Transport(channel)
    facts = card_facts(t, card.atr)
    assert not facts.extended_length and facts.command_chaining
    perform_bac(t, BacKey.from_mrz(td1_mrz(holder)))
    ca = _ca(t, facts)
    refs = eac.parse_ef_cvca(read_ef(t, Ef.CVCA, facts, secure=True))  # type: ignore[arg-type]
    eac.terminal_authentication(t, inspection, refs, ca, eac.id_picc(td1_mrz(holder)),
                                facts=facts)  # type: ignore[arg-type]
    assert _read_dg3(t, facts)
    chained = [a for a in sent if a[0] == 0x1C and a[1] == 0x2A]
    assert len(chained) >= 1  # SM CLA 0C with the chaining bit: the link went in pieces
    assert all(len(a) <= 4 + 1 + 255 + 1 for a in sent if a[0] & 0x0C == 0x0C)
    assert [tp.chr for tp in eac.decode_trust_points(card.secrets.trust_points or b"")] == [
        refs[0], link.chr]
    # Sent whole, the protected PSO needs extended length: the card says 6700.
    t, facts = _bac(card, holder)
    _ca(t, facts)
    t.transmit(CommandApdu(0x00, 0x22, 0x81, 0xB6, b"\x83" + bytes((len(link.car),))
                           + link.car.encode()))
    with pytest.raises(StatusWordError) as exc:
        t.transmit(CommandApdu(0x00, 0x2A, 0x00, 0xBE, link.pso_data()))
    assert exc.value.sw == 0x6700
    # A chip that announces neither extended length nor chaining: the terminal says why.
    t, facts = _bac(card, holder)
    ca = _ca(t, facts)
    with pytest.raises(VerificationError, match="command chaining"):
        eac.terminal_authentication(
            t, inspection, [refs[0]], ca, eac.id_picc(td1_mrz(holder)),
            facts=replace(facts, command_chaining=False))  # type: ignore[type-var]


def test_a_chain_broken_by_another_command_is_refused(eac_card: SimulatedCard,
                                                      holder: HolderData, cv: DemoCvPki) -> None:
    t, facts = _bac(eac_card, holder)
    _ca(t, facts)
    dv = cvc.parse_cv_certificate(cv.dv_certificate)
    t.transmit(CommandApdu(0x00, 0x22, 0x81, 0xB6, b"\x83" + bytes((len(dv.car),))
                           + dv.car.encode()))
    t.transmit(CommandApdu(0x10, 0x2A, 0x00, 0xBE, dv.pso_data()[:100]))  # first link
    with pytest.raises(StatusWordError) as exc:  # not the rest of the chain
        t.transmit(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8))
    assert exc.value.sw == 0x6883


def test_an_expired_link_certificate_is_still_accepted(
        eac_card: SimulatedCard, holder: HolderData, cv: DemoCvPki) -> None:
    """ICAO 9303-11 §7.1.4.3.3: the chip MUST accept expired CVCA link certificates (the key
    becomes a trust point), but an expired trust point verifies no DV (§7.1.4.3.4)."""
    link, inspection = _rollover(cv, link_expired=True)
    assert link.expiration < TODAY
    t, facts = _bac(eac_card, holder)
    ca = _ca(t, facts)
    with pytest.raises(SecurityStatusError) as exc:
        eac.terminal_authentication(t, inspection, [link.car], ca, eac.id_picc(td1_mrz(holder)))
    assert inspection.chain[1].chr in str(exc.value)  # the link went in, the DV did not
    assert link.chr in [tp.chr for tp in eac.decode_trust_points(
        eac_card.secrets.trust_points or b"")]
    with pytest.raises(SecurityStatusError):
        _read_dg3(t, facts)


# -- the chip's current date: CVCA link, DV and *accurate* terminal certificates move it -------
def test_chip_date_moves_with_dv_and_domestic_is_certificates_only(
        eac_card: SimulatedCard, holder: HolderData, cv: DemoCvPki) -> None:
    cvca = cvc.parse_cv_certificate(cv.cvca_certificate)
    dv = cvc.parse_cv_certificate(cv.dv_certificate)
    assert dv.role is cvc.Role.DV_DOMESTIC
    assert eac_card.secrets.eac_date == cvc.encode_date(TODAY)
    mrz = td1_mrz(holder)

    def ta(chain: list[cvc.CvCertificate], signer: SoftCvSigner) -> None:
        t, facts = _bac(eac_card, holder)
        ca = _ca(t, facts)
        eac.terminal_authentication(t, eac.InspectionSystem(chain, signer), [cvca.chr], ca,
                                    eac.id_picc(mrz))
        assert _read_dg3(t, facts)

    # An IS certificate from our (domestic) DV is accurate: its effective date counts.
    signer = SoftCvSigner()
    is_dom = cvc.issue(cv.dv, dv.chr, "IDISKTP00005", signer.public_key, cvc.Role.IS,
                       cvc.READ_DG3, TODAY + dt.timedelta(days=2), TODAY + dt.timedelta(days=30))
    ta([dv, is_dom], signer)
    assert eac_card.secrets.eac_date == cvc.encode_date(TODAY + dt.timedelta(days=2))
    # A foreign DV's certificate moves the date (the CVCA vouches for it) ...
    foreign_key, signer = SoftCvSigner(), SoftCvSigner()
    dv_foreign = cvc.issue(cv.cvca, cvca.chr, "MYDVKTP00001", foreign_key.public_key,
                           cvc.Role.DV_FOREIGN, cvc.READ_DG3, TODAY + dt.timedelta(days=3),
                           TODAY + dt.timedelta(days=90))
    is_foreign = cvc.issue(foreign_key, dv_foreign.chr, "MYISKTP00001", signer.public_key,
                           cvc.Role.IS, cvc.READ_DG3, TODAY + dt.timedelta(days=6),
                           TODAY + dt.timedelta(days=30))
    ta([dv_foreign, is_foreign], signer)
    # ... its terminal's does not: a foreign DV is no source of time for our chip.
    assert eac_card.secrets.eac_date == cvc.encode_date(TODAY + dt.timedelta(days=3))


# -- DG14 as ICAO 9303-11 §9.2 wants it, read by OpenPACE --------------------------------------
def _openpace_dg14(raw: bytes, tmp_path: Path) -> dict[str, object]:
    import ctypes.util
    import json
    import sys

    if ctypes.util.find_library("eac") is None:
        pytest.fail("OpenPACE's libeac missing: apt-get install openpace (scripts/setup.sh --dev)")
    (tmp_path / "dg14.bin").write_bytes(raw)
    helper = Path(__file__).with_name("openpace_dg14.py")
    out = subprocess.run([sys.executable, str(helper), str(tmp_path / "dg14.bin")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_openpace_reads_the_ca_key_and_info_from_our_dg14(eac_card: SimulatedCard,
                                                          tmp_path: Path) -> None:
    from asn1crypto import keys as asn1_keys

    from chip.tlv import parse, tlv, unwrap

    raw = bytes(eac_card.files[Ef.DG14.value.fid].data)
    ours = eac.ca_public_key(raw)
    assert ours is not None
    found = _openpace_dg14(raw, tmp_path)
    assert found["ok"] is True
    assert found["public_key"] == cvc.point(ours).hex()  # OpenPACE decoded the same point
    text = str(found["text"])
    assert "OID: id-CA-ECDH-AES-CBC-CMAC-128\n" in text and text.count("Version: 1\n") == 2
    assert "Field Type: prime-field" in text and "Cofactor:  1" in text  # explicit parameters
    # The key itself: id-ecPublicKey with specified (explicit) domain parameters.
    infos = [parse(v) for _, v in parse(unwrap(unwrap(raw, 0x6E), 0x31))]
    pk_info = next(i for i in infos if i[0][1] == eac.oid_bytes(eac.OID_PK_ECDH))
    spki = asn1_keys.PublicKeyInfo.load(tlv(0x30, pk_info[1][1]))
    assert spki["algorithm"]["parameters"].name == "specified"
    # The check can fail: the same infos with the key before ChipAuthenticationInfo (not DER
    # order) are refused by OpenPACE.
    items = [tlv(0x30, v) for _, v in parse(unwrap(unwrap(raw, 0x6E), 0x31))]
    key_first = sorted(items, key=len, reverse=True)
    assert cvc.oid_tlv(eac.OID_PK_ECDH) in key_first[0][:16]
    assert _openpace_dg14(tlv(0x6E, tlv(0x31, b"".join(key_first))), tmp_path)["ok"] is False


def test_dg14_ca_key_on_another_curve_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from chip.tlv import tlv

    other = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = tlv(0x6E, tlv(0x31, tlv(0x30, cvc.oid_tlv(eac.OID_CA_ECDH_AES_CBC_CMAC_128)
                                  + tlv(0x02, b"\x01"))
                        + tlv(0x30, cvc.oid_tlv(eac.OID_PK_ECDH) + other)))
    with pytest.raises(MalformedError, match="P-256"):
        eac.ca_public_key(raw)


@pytest.mark.parametrize("cipher", ["3DES", "AES"])
def test_chain_pieces_fit_a_short_protected_apdu(cipher: str) -> None:
    from chip.apdu import CommandChain, chain
    from chip.securemessaging import Cipher3, SecureMessaging

    sm = SecureMessaging(bytes(16), bytes(16), 0, Cipher3(cipher))
    piece = sm.max_plain_data(255)
    fits = sm.wrap_command(CommandApdu(0x00, 0x2A, 0x00, 0xBE, bytes(piece)))
    over = sm.wrap_command(CommandApdu(0x00, 0x2A, 0x00, 0xBE, bytes(piece + 1)))
    assert not fits.extended and len(fits.data) <= 255
    assert over.extended  # one byte more needs extended length
    links = chain(CommandApdu(0x00, 0x2A, 0x00, 0xBE, bytes(range(256)) * 2), piece)
    assert [c.cla for c in links] == [0x10] * (len(links) - 1) + [0x00]
    card = CommandChain()
    assert all(card.feed(c) is None for c in links[:-1])
    whole = card.feed(links[-1])
    assert whole is not None and whole.data == bytes(range(256)) * 2 and not card.pending


def test_an_expired_trust_point_verifies_no_dv_but_still_its_link(
        make_card: CardFactory, keys: PersonalizationKeys, holder: HolderData) -> None:
    """ICAO 9303-11 §7.1.4.3.4: once the chip's date passes a trust point's expiry, DV
    certificates under it are refused; the link certificate to the next CVCA still goes."""
    cvca_key, dv_key, is_key = SoftCvSigner(), SoftCvSigner(), SoftCvSigner()
    start = TODAY - dt.timedelta(days=1)
    cvca = cvc.issue(cvca_key, "IDCVCAKTP00001", "IDCVCAKTP00001", cvca_key.public_key,
                     cvc.Role.CVCA, 3, start, TODAY + dt.timedelta(days=5))
    card = make_card()
    personalize(SimulatedChannel(card), holder, replace(keys, cvca_certificate=cvca.raw))
    assert [tp.expiration for tp in eac.decode_trust_points(card.secrets.trust_points or b"")
            ] == [cvca.expiration]
    # A DV certificate effective after the CVCA's expiry moves the chip's date past it.
    dv = cvc.issue(cvca_key, cvca.chr, "IDDVKTP00001", dv_key.public_key, cvc.Role.DV_DOMESTIC,
                   3, TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=90))
    is_cert = cvc.issue(dv_key, dv.chr, "IDISKTP00001", is_key.public_key, cvc.Role.IS,
                        cvc.READ_DG3, start, TODAY + dt.timedelta(days=30))
    mrz = td1_mrz(holder)
    t, facts = _bac(card, holder)
    ca = _ca(t, facts)
    eac.terminal_authentication(t, eac.InspectionSystem([dv, is_cert], is_key), [cvca.chr],
                                ca, eac.id_picc(mrz))
    assert card.secrets.eac_date == cvc.encode_date(TODAY + dt.timedelta(days=10))
    t, facts = _bac(card, holder)
    ca = _ca(t, facts)
    with pytest.raises(SecurityStatusError):  # the same DV, now under an expired trust point
        eac.terminal_authentication(t, eac.InspectionSystem([dv, is_cert], is_key),
                                    [cvca.chr], ca, eac.id_picc(mrz))
    new_key, dv2_key = SoftCvSigner(), SoftCvSigner()
    link = cvc.issue(cvca_key, cvca.chr, "IDCVCAKTP00002", new_key.public_key, cvc.Role.CVCA, 3,
                     start, TODAY + dt.timedelta(days=1000))
    dv2 = cvc.issue(new_key, link.chr, "IDDVKTP00002", dv2_key.public_key, cvc.Role.DV_DOMESTIC,
                    3, start, TODAY + dt.timedelta(days=90))
    is2 = cvc.issue(dv2_key, dv2.chr, "IDISKTP00002", is_key.public_key, cvc.Role.IS,
                    cvc.READ_DG3, TODAY + dt.timedelta(days=10), TODAY + dt.timedelta(days=30))
    t, facts = _bac(card, holder)
    ca = _ca(t, facts)
    eac.terminal_authentication(t, eac.InspectionSystem([link, dv2, is2], is_key), [cvca.chr],
                                ca, eac.id_picc(mrz))
    assert _read_dg3(t, facts)
