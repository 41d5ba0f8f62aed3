"""MRZ, data groups, face re-encoding, encrypted DG3, EF.SOD (incl. openssl cms -verify)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import serialization

from chip import biometrics
from chip.errors import DataError, VerificationError
from chip.face import face_image, fit_face
from chip.lds import (
    Ef,
    HolderData,
    biometric_instances,
    check_digit,
    dg1,
    dg11,
    ef_com,
    mrz_name,
    parse_dg1,
    parse_ef_com,
    td1_mrz,
)
from chip.samples import sample_fmr, sample_photo
from chip.sod import build_sod, parse_sod, passive_authentication
from chip.softkeys import DemoPki, SoftKeyDiversifier, make_demo_pki
from chip.tlv import unwrap
from chip.verification import document_number_from_mrz


def test_icao_check_digits() -> None:  # ICAO 9303-11 Appendix D example
    assert check_digit("L898902C<") == "3"
    assert check_digit("690806") == "1"
    assert check_digit("940623") == "6"
    assert check_digit("<<<<<<") == "0"


def test_td1_long_nik_and_lifelong_expiry(holder: HolderData) -> None:
    mrz = td1_mrz(holder)
    line1, line2, line3 = mrz[:30], mrz[30:60], mrz[60:]
    assert line1 == "IDIDN352601450<89900013<<<<<<<"
    assert check_digit("3526014508990001") == "3"
    assert line2[:7] == "9908051" and line2[7] == "F"
    assert line2[8:15] == "9912315"  # SEUMUR HIDUP: 31 December 2099
    assert line2[15:18] == "IDN"
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    assert line2[29] == check_digit(composite)
    assert line3 == "SITI<NURAINI<PUTRI<<<<<<<<<<<<"
    assert document_number_from_mrz(mrz) == holder.document_number
    assert parse_dg1(dg1(holder)) == mrz


def test_td1_with_expiry(holder: HolderData) -> None:
    wna = dataclasses.replace(holder, expiry=dt.date(2031, 8, 5), nationality="MYS")
    line2 = td1_mrz(wna)[30:60]
    assert line2[8:15] == "310805" + check_digit("310805") and line2[15:18] == "MYS"


def test_mrz_name_transliteration() -> None:
    assert mrz_name("I GUSTI NGURAH RAI") == "I<GUSTI<NGURAH<RAI<<<<<<<<<<<"[:30].ljust(30, "<")
    assert mrz_name("Đoàn Văn-Hậu").startswith("DOAN<VAN<HAU")
    with pytest.raises(DataError):
        mrz_name("...")


def test_ef_com_and_dg11(holder: HolderData) -> None:
    com = ef_com([Ef.DG1, Ef.DG2, Ef.DG3])
    assert parse_ef_com(com) == [0x61, 0x75, 0x63]
    assert b"\x5f\x10\x10" + holder.document_number.encode() in dg11(holder)


def test_face_fits_budget() -> None:
    photo = sample_photo()
    for budget in (3000, 6000, 12000):
        record = fit_face(photo, budget)
        assert len(record) <= budget and face_image(record).startswith(b"\xff\xd8")
    with pytest.raises(DataError):
        fit_face(photo, 100)
    with pytest.raises(DataError):
        fit_face(b"not an image", 5000)


def test_dg3_encryption_round_trip(bio_master: SoftKeyDiversifier) -> None:
    uid = bytes.fromhex("04112233445566")
    fingers = [biometrics.Finger(biometrics.FINGER_RIGHT_INDEX, sample_fmr(2)),
               biometrics.Finger(biometrics.FINGER_LEFT_INDEX, sample_fmr(7))]
    dg3 = biometrics.encrypt_dg3(fingers, bio_master, uid, "3526014508990001")
    assert sample_fmr(2) not in dg3 and b"FMR" not in dg3
    assert len(biometric_instances(dg3, 0x63)) == 2
    assert biometrics.decrypt_dg3(dg3, bio_master, uid, "3526014508990001") == fingers
    with pytest.raises(VerificationError):  # another card's key
        biometrics.decrypt_dg3(dg3, bio_master, bytes(7), "3526014508990001")
    with pytest.raises(VerificationError):  # another master key
        biometrics.decrypt_dg3(dg3, SoftKeyDiversifier(b"\x01" * 16), uid, "3526014508990001")
    tampered = bytearray(dg3)
    tampered[-20] ^= 1
    with pytest.raises(VerificationError):
        biometrics.decrypt_dg3(bytes(tampered), bio_master, uid, "3526014508990001")


def _groups() -> dict[int, bytes]:
    return {1: b"\x61\x03\x5f\x1f\x00", 2: b"\x75\x01\x00", 11: b"\x6b\x00"}


def test_sod_structure_and_passive_authentication(pki: DemoPki) -> None:
    groups = _groups()
    raw = build_sod(groups, pki.signer)
    assert raw[0] == 0x77
    sod = parse_sod(raw)
    assert sod.dg_hashes == {n: hashlib.sha256(v).digest() for n, v in groups.items()}
    sd = sod.signed_data
    assert sd["version"].native == "v3"
    signer_info = sd["signer_infos"][0]
    assert signer_info["version"].native == "v1"
    assert signer_info["sid"].name == "issuer_and_serial_number"
    assert signer_info["signed_attrs"].dump()[0] == 0xA0  # implicit inside SignerInfo
    attr_types = {a["type"].native for a in signer_info["signed_attrs"]}
    assert {"content_type", "message_digest"} <= attr_types
    pa = passive_authentication(sod, groups, pki.csca_certificate_der)
    assert pa.ok
    bad = passive_authentication(sod, groups | {2: b"\x75\x01\x01"}, pki.csca_certificate_der)
    assert not bad.ok and bad.dg_hashes_valid == {1: True, 2: False, 11: True}
    other = make_demo_pki()
    assert not passive_authentication(sod, groups, other.csca_certificate_der).chain_valid


def test_sod_tampered_signature(pki: DemoPki) -> None:
    raw = bytearray(build_sod(_groups(), pki.signer))
    info = cms.ContentInfo.load(unwrap(bytes(raw), 0x77))
    sig = info["content"]["signer_infos"][0]["signature"].native
    pos = bytes(raw).index(sig)
    raw[pos + 10] ^= 0xFF
    sod = parse_sod(bytes(raw))
    assert not passive_authentication(sod, _groups(), pki.csca_certificate_der).signature_valid


def test_parse_sod_rejects_garbage() -> None:
    with pytest.raises(VerificationError):
        parse_sod(b"\x77\x03\x30\x01\x00")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_sod_verifies_with_openssl(pki: DemoPki, tmp_path: Path) -> None:
    raw = build_sod(_groups(), pki.signer)
    (tmp_path / "sod.der").write_bytes(unwrap(raw, 0x77))
    (tmp_path / "csca.pem").write_bytes(
        pki.csca_certificate.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "sod.der"),
         "-CAfile", str(tmp_path / "csca.pem"), "-purpose", "any", "-binary",
         "-out", str(tmp_path / "lds.der")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Verification successful" in proc.stderr
    lds = (tmp_path / "lds.der").read_bytes()
    assert hashlib.sha256(_groups()[2]).digest() in lds
    other = make_demo_pki()
    (tmp_path / "other.pem").write_bytes(
        other.csca_certificate.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "sod.der"),
         "-CAfile", str(tmp_path / "other.pem"), "-purpose", "any", "-binary",
         "-out", "/dev/null"], capture_output=True, text=True, check=False)
    assert proc.returncode != 0


def test_face_quality_is_the_highest_that_fits_whatever_came_before() -> None:
    """The search starts from the previous card's choice: a detailed photo after a plain one
    (or the reverse) still gets exactly the highest quality that fits, as a full scan finds."""
    import io

    from PIL import Image

    from chip import face

    def scan(photo: bytes, budget: int) -> int | None:
        img = Image.open(io.BytesIO(photo)).convert("RGB")
        fitting = [q for q in face._QUALITIES
                   if len(face._encode(img, q, optimize=True)) <= budget - face.RECORD_OVERHEAD]
        return max(fitting) if fitting else None

    face._LAST_CHOICE.clear()
    photos = [sample_photo(600, 800, seed) for seed in (1, 2, 3)]
    for photo, budget in [(photos[0], 12000), (photos[1], 12000), (photos[2], 9000),
                          (photos[0], 20000), (photos[1], 7000), (photos[0], 12000)]:
        record = fit_face(photo, budget)
        expected = scan(photo, budget)
        assert expected is not None
        img = Image.open(io.BytesIO(photo)).convert("RGB")
        assert face_image(record) == face._encode(img, expected, optimize=True)


def test_a_second_photo_alike_costs_two_encodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from chip import face

    face._LAST_CHOICE.clear()
    fit_face(sample_photo(600, 800, 1), 12000)
    calls = []
    encode = face._encode
    monkeypatch.setattr(face, "_encode", lambda *a, **k: calls.append(a[1]) or encode(*a, **k))
    fit_face(sample_photo(600, 800, 2), 12000)
    assert len(calls) <= 2  # the binary search over 15 qualities took 4
