"""Hostile batches (issue 14): each is refused with a named reason, an intake:batch:reject
audit event and nothing imported (or, where the issue says so, the record is held)."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.intake import container
from printsrv.intake.pipeline import RecordProblem, import_batch
from printsrv.intake.signature import SignatureInvalid, verify_detached
from printsrv.models import AuditEvent, Record, RecordState
from tests.intake.conftest import edit_records, resign, zip_dir
from tests.intake.test_intake import assert_rejected, first_media


def _zip_stored(batch: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(batch.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(batch).as_posix())
    return out


# --- the zip container ----------------------------------------------------------------------


def test_bad_crc(settings: Settings, batch: Path, tmp_path: Path) -> None:
    path = _zip_stored(batch, tmp_path / "b.zip")
    data = bytearray(path.read_bytes())
    at = data.find(b'"request_id"')  # inside records.jsonl, stored: flip one of its bytes
    data[at + 2] ^= 0x20
    path.write_bytes(bytes(data))
    assert_rejected(settings, import_batch(settings, path), "records.jsonl", "Bad CRC")


def test_encrypted_member(settings: Settings, batch: Path, tmp_path: Path) -> None:
    path = _zip_stored(batch, tmp_path / "b.zip")
    data = bytearray(path.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        at = data.find(sig)
        while at >= 0:
            data[at + flag_at] |= 0x01
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))
    assert_rejected(settings, import_batch(settings, path), "encrypted zip member")


def test_unsupported_compression(settings: Settings, batch: Path, tmp_path: Path) -> None:
    info = zipfile.ZipInfo("media/extra.bin")
    info.compress_type = zipfile.ZIP_BZIP2
    path = zip_dir(batch, tmp_path / "b.zip", [(info, b"x" * 100)])
    assert_rejected(settings, import_batch(settings, path), "compression method 12")


def test_lying_uncompressed_size(settings: Settings, batch: Path, tmp_path: Path) -> None:
    path = _zip_stored(batch, tmp_path / "b.zip")
    data = bytearray(path.read_bytes())
    name = b"records.jsonl"
    for sig, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = data.find(sig)
        while at >= 0:
            if data[at + name_at:at + name_at + len(name)] == name:
                (size,) = struct.unpack_from("<I", data, at + size_at)
                struct.pack_into("<I", data, at + size_at, size - 40)
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))
    assert_rejected(settings, import_batch(settings, path), "records.jsonl")


def test_member_count_is_checked_before_zipfile_reads_the_directory(
    settings: Settings, batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = zip_dir(batch, tmp_path / "b.zip")
    monkeypatch.setattr(container, "MAX_MEMBERS", 5)
    monkeypatch.setattr(zipfile, "ZipFile", None)  # never reached
    result = import_batch(settings, path)
    assert not result.accepted and "members (at most 5)" in str(result.problems[0])


# --- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "text", "reason"),
    [
        ("record", '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}", "line of 400007 bytes"),
        ("record", '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested deeper than 32"),
        ("record", '{"nik": ' + "9" * 5000 + "}", "integer of 5000 digits"),
        ("record", '{"nama": "A", "nama": "B"}', "duplicate key 'nama'"),
        ("manifest", "[" * 200_000 + "]" * 200_000, "nested deeper than 32"),
        ("manifest", '{"record_count": ' + "1" * 5000 + "}", "integer of 5000 digits"),
        ("manifest", '{"format": "x", "format": "ktp-approved-batch/1"}', "duplicate key"),
    ],
)
def test_hostile_json(settings: Settings, batch: Path, where: str, text: str,
                      reason: str) -> None:
    if where == "record":
        lines = (batch / "records.jsonl").read_text().splitlines()
        lines[0] = text
        (batch / "records.jsonl").write_text("\n".join(lines) + "\n")
        resign(batch, settings.keys_dir)
    else:
        from printsrv.intake.signature import sign_detached

        raw = text.encode()
        (batch / "manifest.json").write_bytes(raw)
        keys = settings.keys_dir
        (batch / "manifest.sig").write_bytes(sign_detached(
            raw, (keys / "registry-signer.pem").read_bytes(),
            (keys / "registry-signer-key.pem").read_bytes()))
    assert_rejected(settings, import_batch(settings, batch), reason)


def test_a_long_line_is_refused_before_it_is_parsed(settings: Settings, batch: Path) -> None:
    lines = (batch / "records.jsonl").read_text().splitlines()
    lines[0] = '{"nama": "' + "A" * 300_000 + '"}'
    (batch / "records.jsonl").write_text("\n".join(lines) + "\n")
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "line of 300012 bytes")


def test_echoed_values_are_cut(settings: Settings, batch: Path) -> None:
    edit_records(batch, lambda lines: lines[0].__setitem__("nama", "Ä" * 200_000))
    resign(batch, settings.keys_dir)
    result = import_batch(settings, batch)
    assert not result.accepted
    assert all(len(str(p)) < 600 for p in result.problems), [len(str(p)) for p in
                                                             result.problems]
    with unit_of_work(settings) as session:
        event = session.scalars(select(AuditEvent).where(
            AuditEvent.tag == "intake:batch:reject")).one()
    assert len(json.dumps(event.details)) < 5000


# --- media ----------------------------------------------------------------------------------


def test_a_jpeg_with_too_many_scans(settings: Settings, batch: Path) -> None:
    photo = first_media(batch, "photo")
    data = photo.read_bytes()
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    photo.write_bytes(data[:-2] + sos * 150 + b"\xff\xd9")
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "scans (at most 100)")


def _corrupt_scan_header(data: bytes) -> bytes:
    sos = data.index(b"\xff\xda")
    return data[: sos + 2] + b"\xff\xff" + data[sos + 4 :]  # SOS length nonsense


def _cut_scan(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]  # the scan cut short, no end-of-image marker


@pytest.mark.parametrize(("damage", "reason"), [(_corrupt_scan_header, "cannot be decoded"),
                                                (_cut_scan, "truncated")])
def test_a_corrupt_photo_is_refused(settings: Settings, batch: Path, damage: Any,
                                    reason: str) -> None:
    """Intake decodes photos at 1/8 scale: a damaged scan is still a named refusal."""
    photo = first_media(batch, "photo")
    photo.write_bytes(damage(photo.read_bytes()))
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 1 (", "media.photo",
                    reason)


def test_media_used_twice_or_not_in_the_batch(settings: Settings, batch: Path) -> None:
    """Each medium belongs to one record: a photo taken again by a later record, a record
    naming one minutiae file for both fingers, a path the manifest does not list."""
    def reuse(lines: list[dict[str, Any]]) -> None:
        lines[2]["media"]["photo"] = lines[0]["media"]["photo"]
        lines[3]["media"]["finger_left_index"] = lines[3]["media"]["finger_right_index"]
        lines[4]["media"]["finger_left_index"] = "media/0000000000000000/finger.fmr"

    edit_records(batch, reuse)
    resign(batch, settings.keys_dir)
    result = import_batch(settings, batch)
    assert_rejected(settings, result, "used by two records", "not in batch")
    problems = {(p.line, p.field, p.reason.split(" ", 1)[1]) for p in result.problems
                if isinstance(p, RecordProblem)}  # fmt: skip
    assert problems == {(3, "media.photo", "used by two records"),
                        (4, "media.finger_left_index", "used by two records"),
                        (5, "media.finger_left_index", "not in batch")}, problems


# --- one person twice -----------------------------------------------------------------------


def test_one_person_twice_in_a_batch(settings: Settings, batch: Path) -> None:
    def same_person(lines: list[dict[str, Any]]) -> None:
        lines[3]["nik"] = lines[1]["nik"]
        for key in ("tanggal_lahir", "jenis_kelamin"):
            lines[3][key] = lines[1][key]

    edit_records(batch, same_person)
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 4 (",
                    "the same person as line 2")


def test_a_new_request_for_a_nik_with_an_open_one_is_held(settings: Settings, batch: Path,
                                                          tmp_path: Path) -> None:
    assert import_batch(settings, batch).accepted
    first = json.loads((batch / "records.jsonl").read_text().splitlines()[0])
    second = Path(tmp_path / "second")
    import shutil

    shutil.copytree(batch, second)
    edit_records(second, lambda lines: [line.__setitem__(
        "request_id", line["request_id"] + "-B") for line in lines])
    manifest = json.loads((second / "manifest.json").read_text())
    manifest["batch_id"] = "TEST-0002"
    (second / "manifest.json").write_text(json.dumps(manifest))
    resign(second, settings.keys_dir)
    result = import_batch(settings, second)
    assert result.accepted and result.held == 6, [str(p) for p in result.problems]
    with unit_of_work(settings) as session:
        rec = session.scalars(select(Record).where(
            Record.request_id == first["request_id"] + "-B")).one()
        assert rec.state is RecordState.HELD
        assert first["request_id"] in (rec.hold_reason or "")


# --- what would only show at the printer ---------------------------------------------------


@pytest.mark.parametrize("text", ["JL. 渡辺 NO. 5", "JL. MAWAR\u0308 NO. 5", "मार्ग 5"])
def test_text_the_card_font_cannot_draw_is_held(settings: Settings, batch: Path,
                                                text: str) -> None:
    edit_records(batch, lambda lines: lines[0].__setitem__("alamat", text))
    resign(batch, settings.keys_dir)
    result = import_batch(settings, batch)
    held = {h["request_id"]: h["reason"] for h in result.holds}
    assert result.accepted and len(held) >= 1, [str(p) for p in result.problems]
    assert any("alamat: huruf yang tidak dapat dicetak" in r for r in held.values()), held


def test_a_blank_signature_is_held(settings: Settings, batch: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (400, 150), (255, 255, 255, 0)).save(buf, "PNG")
    first_media(batch, "signature").write_bytes(buf.getvalue())
    resign(batch, settings.keys_dir)
    result = import_batch(settings, batch)
    assert result.accepted and any("tanda tangan kosong" in h["reason"] for h in result.holds)


# --- the CMS signature ----------------------------------------------------------------------


@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_any_corrupted_signature_byte_is_a_named_refusal(pristine_batch: Path,
                                                         data: st.DataObject) -> None:
    """Malformed ASN.1 anywhere (signed attributes, signer id, certificates) is refused with
    a reason, never a traceback. (A byte outside what is signed, say in the unused outer
    digest-algorithm set, may change nothing: then the signature still verifies.)"""
    raw = (pristine_batch / "manifest.json").read_bytes()
    der = bytearray((pristine_batch / "manifest.sig").read_bytes())
    at = data.draw(st.integers(0, len(der) - 1))
    der[at] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(SignatureInvalid):
        verify_detached(raw, bytes(der), _TRUSTED)


_TRUSTED: list[x509.Certificate] = []


@pytest.fixture(autouse=True)
def _trusted(settings: Settings) -> None:
    from printsrv.intake.signature import load_trusted_cas

    _TRUSTED[:] = load_trusted_cas(settings.registry_ca_paths)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool,
          path_length: int | None = None, cert_sign: bool = True) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca
                                                    else None), critical=True))
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca and cert_sign,
        crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _chain(root_path_length: int | None, intermediate_cert_sign: bool) -> tuple[Any, ...]:
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("Root", root_key, "Root", root_key, ca=True, path_length=root_path_length)
    mid = _cert("Mid", mid_key, "Root", root_key, ca=True, cert_sign=intermediate_cert_sign)
    leaf = _cert("Signer", leaf_key, "Mid", mid_key, ca=False)
    return root, mid, leaf, leaf_key


def _sign(content: bytes, leaf: Any, leaf_key: Any, extra: list[Any]) -> bytes:
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(
        leaf, leaf_key, hashes.SHA256())
    for cert in extra:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER,
                        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])


def test_chain_constraints_as_openssl_checks_them() -> None:
    content = b'{"manifest": 1}'
    root, mid, leaf, key = _chain(None, True)
    assert verify_detached(content, _sign(content, leaf, key, [mid]), [root]) == leaf
    root, mid, leaf, key = _chain(0, True)  # the root allows no CA below it
    with pytest.raises(SignatureInvalid, match="allows 0 CA certificate"):
        verify_detached(content, _sign(content, leaf, key, [mid]), [root])
    root, mid, leaf, key = _chain(None, False)  # the intermediate may not sign certificates
    with pytest.raises(SignatureInvalid, match="lacks keyCertSign"):
        verify_detached(content, _sign(content, leaf, key, [mid]), [root])


def test_signed_attributes_without_content_type() -> None:
    content = b'{"manifest": 1}'
    root, mid, leaf, key = _chain(None, True)
    info = cms.ContentInfo.load(_sign(content, leaf, key, [mid]))
    signer = info["content"]["signer_infos"][0]
    kept = [a for a in signer["signed_attrs"] if a["type"].native != "content_type"]
    signer["signed_attrs"] = cms.CMSAttributes(kept)
    to_sign = b"\x31" + signer["signed_attrs"].dump(force=True)[1:]
    signer["signature"] = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
    der = info.dump(force=True)
    with pytest.raises(SignatureInvalid, match="without a content-type"):
        verify_detached(content, der, [root])


def test_hostile_batches_answer_4xx_through_the_api(settings: Settings, batch: Path,
                                                    tmp_path: Path) -> None:
    from printsrv.offices import ensure_office
    from printsrv.web import create_app
    from printsrv.web.models import TokenScope
    from printsrv.web.services import create_token

    with unit_of_work(settings) as session:
        regency = ensure_office(session, "35.26", actor="t")
        token = create_token(session, "hostile", TokenScope.CLIENT, regency, actor="t")
    app = create_app(settings, {"TESTING": True, "SESSION_COOKIE_SECURE": False})
    path = _zip_stored(batch, tmp_path / "b.zip")
    data = bytearray(path.read_bytes())
    at = data.find(b'"request_id"')
    data[at + 2] ^= 0x20
    resp = app.test_client().post("/api/v1/batches", data=bytes(data), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/zip"})
    assert resp.status_code == 422 and "Bad CRC" in resp.get_data(as_text=True)
