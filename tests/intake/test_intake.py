"""Intake: a valid batch goes in whole, every bad batch of the corpus is refused by name."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from printsrv import audit
from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work
from printsrv.intake.pipeline import ImportResult, import_batch
from printsrv.keys import create_demo_registry_pki
from printsrv.models import AuditEvent, Record, RecordKey, RecordMedia, RecordState
from printsrv.records import load_card_input, purge_media
from tests.intake.conftest import edit_records, resign, zip_dir


def record_count(settings: Settings) -> int:
    with session_factory(settings)() as s:
        return s.scalar(select(func.count()).select_from(Record)) or 0


def assert_rejected(settings: Settings, result: ImportResult, *needles: str) -> None:
    text = "\n".join(str(p) for p in result.problems)
    assert not result.accepted, "batch should have been rejected"
    assert record_count(settings) == 0, "nothing may be imported from a rejected batch"
    for needle in needles:
        assert needle in text, f"{needle!r} not in problems:\n{text}"
    with session_factory(settings)() as s:
        tags = list(s.scalars(select(AuditEvent.tag)))
    assert "intake:batch:reject" in tags


def first_media(batch: Path, kind: str) -> Path:
    rec = json.loads((batch / "records.jsonl").read_text().splitlines()[0])
    return batch / rec["media"][kind]


# --- the good path --------------------------------------------------------------------------


def test_valid_batch_imports_and_is_idempotent(settings: Settings, batch: Path) -> None:
    result = import_batch(settings, batch)
    assert result.accepted, [str(p) for p in result.problems]
    assert result.imported == 6 and result.rejected == 0
    assert record_count(settings) == 6
    again = import_batch(settings, batch)
    assert again.accepted and again.imported == 0 and again.already_imported == 6
    assert record_count(settings) == 6


def test_zip_batch_imports(settings: Settings, batch: Path, tmp_path: Path) -> None:
    result = import_batch(settings, zip_dir(batch, tmp_path / "b.zip"))
    assert result.accepted, [str(p) for p in result.problems]
    assert record_count(settings) == 6


def test_media_encrypted_at_rest_and_decrypts(settings: Settings, batch: Path) -> None:
    assert import_batch(settings, batch).accepted
    photo = first_media(batch, "photo").read_bytes()
    request_id = json.loads((batch / "records.jsonl").read_text().splitlines()[0])["request_id"]
    with session_factory(settings)() as s:
        blobs = list(s.scalars(select(RecordMedia.ciphertext)))
    assert blobs and all(photo[100:164] not in b for b in blobs)
    card = load_card_input(settings, request_id)
    assert card.photo_jpeg == photo
    assert "photo" not in repr(card) and card.nik not in repr(card)


def test_purge_crypto_shreds(settings: Settings, batch: Path) -> None:
    assert import_batch(settings, batch).accepted
    with unit_of_work(settings) as s:
        rec = s.scalars(select(Record)).first()
        assert rec is not None
        purge_media(s, rec, actor="test")
        rid = rec.id
    with session_factory(settings)() as s:
        assert s.get(RecordKey, rid) is None
        assert not list(s.scalars(select(RecordMedia).where(RecordMedia.record_id == rid)))


def test_nik_mismatch_is_held_not_refused(settings: Settings, batch: Path) -> None:
    def shift_birth(lines: list[dict]) -> None:
        y, m, d = lines[0]["tanggal_lahir"].split("-")
        lines[0]["tanggal_lahir"] = f"{y}-{m}-{'12' if d != '12' else '13'}"

    edit_records(batch, shift_birth)
    resign(batch, settings.keys_dir)
    result = import_batch(settings, batch)
    assert result.accepted and result.held == 1
    with session_factory(settings)() as s:
        held = s.scalars(select(Record).where(Record.state == RecordState.HELD)).one()
        assert held.hold_reason and "tanggal_lahir" in held.hold_reason


def test_accept_valid_imports_the_rest(settings: Settings, batch: Path) -> None:
    edit_records(batch, lambda lines: lines[1].__setitem__("penunggalan", "GANDA"))
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 2 (", "penunggalan")
    result = import_batch(settings, batch, accept_valid=True)
    assert result.accepted and result.imported == 5 and result.rejected == 1
    assert result.rejection_report and "penunggalan" in Path(result.rejection_report).read_text()


# --- the bad-batch corpus -------------------------------------------------------------------


def test_wrong_signer(settings: Settings, batch: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-pki"
    create_demo_registry_pki(other)
    resign(batch, other)
    assert_rejected(settings, import_batch(settings, batch), "manifest.sig", "does not chain")


def test_tampered_manifest(settings: Settings, batch: Path) -> None:
    raw = (batch / "manifest.json").read_text().replace("DISDUKCAPIL DEMO", "DISDUKCAPIL EVIL")
    (batch / "manifest.json").write_text(raw)
    assert_rejected(settings, import_batch(settings, batch), "manifest.sig", "tampered")


def test_tampered_record_line(settings: Settings, batch: Path) -> None:
    text = (batch / "records.jsonl").read_text()
    (batch / "records.jsonl").write_text(text.replace('"rt": "0', '"rt": "9', 1))
    assert_rejected(settings, import_batch(settings, batch), "records.jsonl", "SHA-256")


def test_tampered_image(settings: Settings, batch: Path) -> None:
    photo = first_media(batch, "photo")
    data = bytearray(photo.read_bytes())
    data[len(data) // 2] ^= 0xFF
    photo.write_bytes(bytes(data))
    assert_rejected(settings, import_batch(settings, batch), "photo.jpg", "SHA-256")


def test_missing_file(settings: Settings, batch: Path) -> None:
    first_media(batch, "signature").unlink()
    assert_rejected(settings, import_batch(settings, batch), "signature.png", "missing")


def test_extra_file(settings: Settings, batch: Path) -> None:
    (batch / "media" / "notes.txt").write_text("hello")
    assert_rejected(settings, import_batch(settings, batch), "media/notes.txt", "not listed")


def test_symlink_in_directory(settings: Settings, batch: Path) -> None:
    (batch / "media" / "link.jpg").symlink_to("/etc/passwd")
    assert_rejected(settings, import_batch(settings, batch), "link.jpg", "links are not allowed")


@pytest.mark.parametrize(
    ("member", "reason"),
    [("../evil.txt", "escapes"), ("/etc/evil.txt", "absolute path"), ("media/../../x", "escapes")],
)
def test_zip_path_escapes(
    settings: Settings, batch: Path, tmp_path: Path, member: str, reason: str
) -> None:
    path = zip_dir(batch, tmp_path / "b.zip", [(zipfile.ZipInfo(member), b"x")])
    assert_rejected(settings, import_batch(settings, path), reason)


def test_zip_symlink(settings: Settings, batch: Path, tmp_path: Path) -> None:
    info = zipfile.ZipInfo("media/link")
    info.external_attr = 0o120777 << 16
    path = zip_dir(batch, tmp_path / "b.zip", [(info, b"/etc/passwd")])
    assert_rejected(settings, import_batch(settings, path), "media/link", "links")


def test_zip_bomb(settings: Settings, batch: Path, tmp_path: Path) -> None:
    info = zipfile.ZipInfo("media/bomb.bin")
    info.compress_type = zipfile.ZIP_DEFLATED
    path = zip_dir(batch, tmp_path / "b.zip", [(info, b"\0" * 50_000_000)])
    assert_rejected(settings, import_batch(settings, path), "bomb.bin", "zip bomb")


def test_duplicate_request_id(settings: Settings, batch: Path) -> None:
    edit_records(batch, lambda lines: lines[2].__setitem__("request_id", lines[0]["request_id"]))
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 3 (", "request_id: duplicate")


def test_malformed_json(settings: Settings, batch: Path) -> None:
    lines = (batch / "records.jsonl").read_text().splitlines()
    lines[1] = lines[1][:-5]
    (batch / "records.jsonl").write_text("\n".join(lines) + "\n")
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 2 (", "malformed JSON")


def test_impossible_date(settings: Settings, batch: Path) -> None:
    edit_records(batch, lambda lines: lines[0].__setitem__("tanggal_lahir", "1990-02-30"))
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 1 (", "tanggal_lahir")


def test_under_age_ktp_holder(settings: Settings, batch: Path) -> None:
    def young(lines: list[dict]) -> None:
        rec = next(r for r in lines if r.get("card_type", "KTP-EL") == "KTP-EL")
        rec["tanggal_lahir"] = "2020-01-01"
        rec["status_perkawinan"] = "BELUM KAWIN"

    edit_records(batch, young)
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "tanggal_lahir")


def test_non_utf8(settings: Settings, batch: Path) -> None:
    raw = (batch / "records.jsonl").read_bytes().replace(b'"nama": "', b'"nama": "\xff\xfe', 1)
    (batch / "records.jsonl").write_bytes(raw)
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 1 (", "UTF-8")


def test_truncated_jpeg(settings: Settings, batch: Path) -> None:
    photo = first_media(batch, "photo")
    photo.write_bytes(photo.read_bytes()[: len(photo.read_bytes()) // 2])
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "media.photo")


def _png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_image_bomb(settings: Settings, batch: Path) -> None:
    first_media(batch, "signature").write_bytes(_png_bomb())
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "media.signature")


def test_png_named_jpg(settings: Settings, batch: Path) -> None:
    from PIL import Image

    photo = first_media(batch, "photo")
    Image.new("RGB", (300, 400), "red").save(photo, format="PNG")
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "media.photo")


def test_bad_fmr_header(settings: Settings, batch: Path) -> None:
    fmr = first_media(batch, "finger_right_index")
    fmr.write_bytes(b"XMR\0" + fmr.read_bytes()[4:])
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "media.finger_right_index")


def test_not_tunggal(settings: Settings, batch: Path) -> None:
    edit_records(batch, lambda lines: lines[0].__setitem__("penunggalan", "DUPLICATE_RECORD"))
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "record 1 (", "penunggalan")


# --- audit ----------------------------------------------------------------------------------


def test_audit_chain_detects_edit_delete_reorder(settings: Settings, batch: Path) -> None:
    assert import_batch(settings, batch).accepted
    with unit_of_work(settings) as s:
        for i in range(3):
            audit.record(s, "test:chain:event", actor="t", details={"i": i})
    with session_factory(settings)() as s:
        assert audit.verify(s).ok
    with unit_of_work(settings) as s:
        ev = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert ev is not None
        ev.details = {"i": 99}
    with session_factory(settings)() as s:
        report = audit.verify(s)
        assert not report.ok and "edited" in report.problems[0].reason
    with unit_of_work(settings) as s:
        ev = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert ev is not None
        ev.details = {"i": 2}
        s.delete(s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).offset(1)).first())
    with session_factory(settings)() as s:
        reasons = " ".join(p.reason for p in audit.verify(s).problems)
        assert "gap" in reasons


def test_no_personal_or_biometric_data_in_logs(
    settings: Settings, batch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import base64
    import logging

    caplog.set_level(logging.DEBUG)
    first = json.loads((batch / "records.jsonl").read_text().splitlines()[0])
    assert import_batch(settings, batch).accepted
    card = load_card_input(settings, first["request_id"])
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert first["nik"] not in logged and first["nama"] not in logged
    for blob in (card.photo_jpeg, card.signature_png):
        assert blob[200:240].hex() not in logged
        assert base64.b64encode(blob[200:260]).decode()[:40] not in logged


def test_fingers_swapped(settings: Settings, batch: Path) -> None:
    right, left = first_media(batch, "finger_right_index"), first_media(batch, "finger_left_index")
    r, lf = right.read_bytes(), left.read_bytes()
    right.write_bytes(lf)
    left.write_bytes(r)
    resign(batch, settings.keys_dir)
    assert_rejected(settings, import_batch(settings, batch), "media.finger_right_index")
