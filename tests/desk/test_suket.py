"""Surat Keterangan pengganti KTP-el: issued only without blanks, an A4 PDF whose QR code is
read back with zbarimg and checked with the public key alone, forged and expired codes refused,
revoked once the real card is issued (the outbox consumer), and the public /verify page."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.desk import suket
from printsrv.keys import KeyStore
from printsrv.models import Record, RecordState
from printsrv.records import transition
from tests.station.conftest import OFFICE

ROOT = Path(__file__).resolve().parents[2]


def _queued(settings: Settings, tmp: Path, count: int = 2) -> list[str]:
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch

    batch = write_demo_batch(settings, count, tmp / "batch", seed=21, batch_id="SUKET-1",
                             office_codes=[OFFICE])  # fmt: skip
    assert import_batch(settings, batch).accepted
    with unit_of_work(settings) as session:
        return [r.request_id for r in session.scalars(select(Record).order_by(Record.id))]


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.database_url}  # fmt: skip
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "suket", *argv], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip


def test_a_suket_pdf_whose_qr_code_checks_offline_and_is_revoked_by_the_card(
    settings: Settings, tmp_path: Path
) -> None:
    request_id, _other = _queued(settings, tmp_path)
    out = tmp_path / "suket.pdf"
    issued = _cli(settings, "issue", "--request-id", request_id, "--by", "spv1",
                  "--head-name", "Drs. H. AHMAD FAUZI, M.Si", "--head-nip",
                  "19700101 199003 1 002", "--out", str(out))  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    with unit_of_work(settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == request_id))
        assert record is not None
        nik, nama = record.nik, record.nama
    year = date.today().year
    for words in ("SURAT KETERANGAN PENGGANTI KTP-EL", f"Nomor: 470/0001/{OFFICE}/{year}",
                  "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL", nik, nama,
                  "Drs. H. AHMAD FAUZI, M.Si", "NIP. 19700101 199003 1 002"):
        assert words in text, words
    # The QR code, read from the page by zbarimg, checks with the public key alone.
    from printsrv.commands.suket import qr_text_of_pdf

    qr = qr_text_of_pdf(out)
    offline = suket.check_offline(qr, suket.load_public_key(settings), date.today())
    assert offline.ok and offline.payload["nik"] == nik and offline.payload["nama"] == nama
    valid_until = date.fromisoformat(offline.payload["berlaku"])
    assert 180 <= (valid_until - date.today()).days <= 185
    verified = _cli(settings, "verify", "--pdf", str(out))
    assert verified.returncode == 0 and verified.stdout.startswith("VALID"), verified.stdout
    # Expired after six months; a changed name keeps the old signature: forged.
    late = suket.check_offline(qr, suket.load_public_key(settings), valid_until + timedelta(1))
    assert late.reason == "expired"
    prefix, body, sig = qr.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["nama"] = "ORANG LAIN"
    forged = ".".join([prefix, base64.urlsafe_b64encode(suket.canonical(payload)).rstrip(
        b"=").decode(), sig])
    assert _cli(settings, "verify", "--text", forged).stdout.startswith("FORGED")
    assert suket.check(settings, "hello").reason == "not a Suket"
    # One valid Suket per record.
    again = _cli(settings, "issue", "--request-id", request_id, "--by", "spv1",
                 "--head-name", "X", "--head-nip", "1", "--out", str(tmp_path / "b.pdf"))
    assert again.returncode != 0 and "already has a valid Suket" in again.stderr
    # The real card is issued: the Suket is revoked.
    with unit_of_work(settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == request_id))
        assert record is not None
        transition(session, record, RecordState.PRINTING, actor="t")
        transition(session, record, RecordState.ISSUED, actor="t", reason="card job 1")
    revoked = _cli(settings, "verify", "--text", qr)
    assert revoked.returncode == 1 and revoked.stdout.startswith("REVOKED"), revoked.stdout
    assert "revoked: card issued" in _cli(settings, "list").stdout


def test_no_suket_while_the_office_has_blanks(settings: Settings, tmp_path: Path) -> None:
    from printsrv.ledger.blanks import receive_blanks

    request_id = _queued(settings, tmp_path, 1)[0]
    with unit_of_work(settings) as session:
        receive_blanks(session, office_code=OFFICE, first="KTP-000001", last="KTP-000002",
                       handover_number="BAST-S-1", actor="t")  # fmt: skip
    with KeyStore.open(settings) as keys, unit_of_work(settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == request_id))
        assert record is not None
        with pytest.raises(suket.SuketError, match="2 blanks on hand"):
            suket.issue(session, keys, record, by="spv", head_name="A", head_nip="1")


def test_the_public_verify_page(settings: Settings, tmp_path: Path) -> None:
    from printsrv.web import create_app

    request_id = _queued(settings, tmp_path, 1)[0]
    with KeyStore.open(settings) as keys, unit_of_work(settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == request_id))
        assert record is not None
        qr = suket.issue(session, keys, record, by="spv", head_name="A", head_nip="1").qr_text
    app = create_app(settings, {"TESTING": True, "WTF_CSRF_ENABLED": False,
                                "SESSION_COOKIE_SECURE": False})  # fmt: skip
    client = app.test_client()
    page = client.post("/verify", data={"text": qr}).get_data(as_text=True)
    assert 'data-reason="valid"' in page and "SAH" in page and record.nik in page
    bad = client.post("/verify", data={"text": qr[:-6] + "AAAAAA"}).get_data(as_text=True)
    assert 'data-reason="forged"' in bad or 'data-reason="not a Suket"' in bad


def test_a_supervisor_issues_a_suket_from_the_record_page(settings: Settings,
                                                         tmp_path: Path) -> None:
    from printsrv.models import Role, User
    from printsrv.web import create_app
    from printsrv.web.auth_service import hash_password
    from tests.web.conftest import sign_in

    request_id = _queued(settings, tmp_path, 1)[0]
    with unit_of_work(settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == request_id))
        assert record is not None
        record_id = record.id
        for name, role in (("spv1", Role.SUPERVISOR), ("op1", Role.OPERATOR)):
            session.add(User(username=name, role=role, office_id=record.office_id,
                             password_hash=hash_password("kata sandi panjang"),
                             failed_logins=0, active=True))  # fmt: skip
    app = create_app(settings, {"TESTING": True, "WTF_CSRF_ENABLED": False,
                                "SESSION_COOKIE_SECURE": False})  # fmt: skip
    client = app.test_client()
    form = {"head_name": "Drs. AHMAD FAUZI", "head_nip": "197001011990031002"}
    sign_in(client, settings, "op1")
    assert 'id="suket-form"' not in client.get(f"/records/{record_id}").get_data(as_text=True)
    assert client.post(f"/desk/records/{record_id}/suket", data=form).status_code == 403
    sign_in(client, settings, "spv1")
    assert 'id="suket-form"' in client.get(f"/records/{record_id}").get_data(as_text=True)
    pdf = client.post(f"/desk/records/{record_id}/suket", data=form)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    page = client.get(f"/records/{record_id}").get_data(as_text=True)
    assert "470/0001/" in page and 'id="suket-form"' not in page  # one valid Suket
