"""*Surat Keterangan pengganti KTP-el* (Suket): the paper an office issues for a queued record
when it has no blanks, with a QR code anyone can check offline.

The QR code carries ``KTPSKT1.<payload>.<signature>`` (base64url): the payload is canonical JSON
of the Suket's number, NIK, name, birth, office, issue day and validity; the signature is ECDSA
P-256 by the token's ``suket-signer`` key, whose public key (``keys/suket-signer.pem``) is all a
checker needs. A Suket is revoked when the real card is issued: the ``suket`` consumer of the
outbox does it, and every online check (``/verify``, ``suket verify``) runs it first.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from printsrv import audit, outbox
from printsrv.audit_tags import DeskTag
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.desk.models import Suket
from printsrv.errors import InvalidValue, PrintSrvError, StateError
from printsrv.localtime import local_date, office_zone
from printsrv.models import Record, RecordState
from printsrv.offices import office_code

PREFIX = "KTPSKT1"
VALID_MONTHS = 6
CONSUMER = "suket"
ISSUE_TAG = DeskTag.SUKET_ISSUE
REVOKE_TAG = DeskTag.SUKET_REVOKE


class SuketError(PrintSrvError):
    """A Suket cannot be issued, or a QR text is not a Suket we signed."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise InvalidValue(f"no day {day.day} in {year}-{month:02d}")


def blanks_on_hand(session: Session, record: Record) -> int:
    """Blanks of the record's stock type the record's office holds (store, hoppers)."""
    from printsrv.ledger.models import ON_HAND, Blank
    from printsrv.products import product

    stock = product(record.card_type).blank_stock
    count = session.scalar(
        select(func.count()).select_from(Blank).where(
            Blank.office_id == record.office_id,
            Blank.state.in_(ON_HAND),
            Blank.stock_type == stock,
        )
    )
    return int(count or 0)


def issue(
    session: Session,
    keys: Any,
    record: Record,
    *,
    by: str,
    head_name: str,
    head_nip: str,
    head_title: str = "Kepala Dinas Kependudukan dan Pencatatan Sipil",
) -> Suket:
    """Issue a Suket for a queued record whose office has no blank of its stock type."""
    if record.state not in (RecordState.QUEUED, RecordState.HELD):
        raise StateError(f"record {record.request_id} is {record.state.value}: a Suket is only "
                         "for a record waiting for a blank")  # fmt: skip
    if not head_name.strip() or not head_nip.strip():
        raise SuketError("the head of office's name and NIP are required (--head-name, --head-nip)")
    on_hand = blanks_on_hand(session, record)
    if on_hand:
        raise SuketError(f"office has {on_hand} blanks on hand: print the card instead")
    if session.scalar(select(Suket.id).where(Suket.record_id == record.id,
                                             Suket.revoked_at.is_(None))):  # fmt: skip
        raise SuketError(f"record {record.request_id} already has a valid Suket")
    code = office_code(session, record.office_id)
    today = local_date(code)
    year_count = session.scalar(select(func.count()).select_from(Suket).where(
        Suket.office_code == code, Suket.number.endswith(f"/{today.year}"))) or 0
    number = f"470/{year_count + 1:04d}/{code}/{today.year}"
    data = record.data or {}
    payload = {
        "no": number,
        "nik": record.nik,
        "nama": record.nama,
        "lahir": f"{data.get('tempat_lahir', '')}, {data.get('tanggal_lahir', '')}",
        "kantor": code,
        "terbit": today.isoformat(),
        "berlaku": _add_months(today, VALID_MONTHS).isoformat(),
    }
    body = canonical(payload)
    signature = keys.suket_signer().sign(body)
    suket = Suket(
        number=number, record_id=record.id, request_id=record.request_id, office_code=code,
        issued_by=by, issued_at=datetime.now(UTC), issue_day=today,
        valid_until=date.fromisoformat(payload["berlaku"]), head_name=head_name.strip(),
        head_nip=head_nip.strip(), head_title=head_title.strip(),
        qr_text=f"{PREFIX}.{_b64(body)}.{_b64(signature)}",
    )  # fmt: skip
    session.add(suket)
    session.flush()
    audit.record(session, ISSUE_TAG, actor=by, office_code=code, subject=record.request_id,
                 details={"number": number, "valid_until": payload["berlaku"]})  # fmt: skip
    return suket


@dataclass(frozen=True)
class Check:
    """What a QR text says, and whether it holds."""

    ok: bool
    reason: str  # "valid", "expired", "revoked", "forged", "not a Suket"
    payload: dict[str, Any]


def load_public_key(settings: Settings) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key((settings.keys_dir / "suket-signer.pem").read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def check_offline(text: str, key: ec.EllipticCurvePublicKey, today: date) -> Check:
    """Check a QR text with the public key alone (no database): signature and validity."""
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return Check(False, "not a Suket", {})
    try:
        body, signature = _unb64(parts[1]), _unb64(parts[2])
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Check(False, "not a Suket", {})
    if not isinstance(payload, dict):
        return Check(False, "not a Suket", {})
    try:
        key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return Check(False, "forged", payload)
    if canonical(payload) != body:
        return Check(False, "forged", payload)
    try:
        valid_until = date.fromisoformat(str(payload.get("berlaku")))
    except ValueError:
        return Check(False, "forged", payload)
    if today > valid_until:
        return Check(False, "expired", payload)
    return Check(True, "valid", payload)


def check(settings: Settings, text: str) -> Check:
    """The offline check, then the server's books: revoked once the real card is issued."""
    result = check_offline(text, load_public_key(settings), date.today())
    if not result.ok:
        return result
    revoke_issued(settings)
    with unit_of_work(settings) as session:
        row = session.scalar(select(Suket).where(Suket.number == result.payload["no"]))
        if row is None:
            return Check(False, "forged", result.payload)  # signed, but not in our books
        if row.revoked_at is not None:
            return Check(False, "revoked", result.payload)
    return result


def revoke_issued(settings: Settings) -> int:
    """The ``suket`` outbox consumer: revoke every Suket whose record's card was issued."""
    with unit_of_work(settings) as session:
        outbox.register(session, CONSUMER)
    revoked = 0

    def handle(session: Session, events: list[outbox.Event]) -> None:
        nonlocal revoked
        for event in events:
            if event.payload.get("to") != "issued":
                continue
            request_id = event.payload["request_id"]
            rows = session.execute(
                update(Suket)
                .where(Suket.request_id == request_id, Suket.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC), revoked_reason="card issued")
                .returning(Suket.number)
            ).all()
            for (number,) in rows:
                audit.record(session, REVOKE_TAG, actor="suket", office_code=event.office_code,
                             subject=request_id, details={"number": number,
                                                          "reason": "card issued"})  # fmt: skip
            revoked += len(rows)

    while outbox.deliver(lambda: unit_of_work(settings), CONSUMER, handle,
                         topics=[outbox.Topic.RECORD_STATE]):  # fmt: skip
        pass
    return revoked


def suket_pdf(session: Session, keys: Any, suket: Suket, *, actor: str) -> bytes:
    """The Suket as an A4 PDF: letterhead, the holder's data and photo (decrypted for this, an
    audit event), validity, the signed QR code and the head of office's signature block."""
    import io

    import segno
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from printsrv.models import Office
    from printsrv.paperwork import markup
    from printsrv.records import card_input_for

    record = session.get_one(Record, suket.record_id)
    office = session.scalar(select(Office).where(Office.code == suket.office_code))
    regency = office.parent.name if office is not None and office.parent else ""
    card = card_input_for(session, keys, record, actor=actor, purpose="suket")
    data = record.data or {}
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=15 * mm,
        bottomMargin=15 * mm, title=f"Surat Keterangan {suket.number}", author="ktp-printsrv",
    )
    styles = getSampleStyleSheet()
    body, title = styles["BodyText"], styles["Title"]
    center = body.clone("center", alignment=1)
    story: list[Any] = [
        Paragraph(f"<b>PEMERINTAH {markup(regency.replace('DISDUKCAPIL ', 'KABUPATEN '))}</b>",
                  center),
        Paragraph("<b>DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL</b>", center),
        Paragraph(markup(f"{suket.office_code} {office.name if office else ''}"), center),
        Spacer(1, 2 * mm),
        Table([[""]], colWidths=[170 * mm], style=TableStyle(
            [("LINEABOVE", (0, 0), (-1, 0), 1.5, "#000000")])),
        Paragraph("SURAT KETERANGAN PENGGANTI KTP-EL", title),
        Paragraph(f"Nomor: {markup(suket.number)}", center),
        Spacer(1, 4 * mm),
        Paragraph("Yang bertanda tangan di bawah ini menerangkan bahwa:", body),
    ]  # fmt: skip
    fields = [
        ("NIK", record.nik), ("Nama", record.nama),
        ("Tempat/Tgl Lahir", f"{data.get('tempat_lahir', '')}, {data.get('tanggal_lahir', '')}"),
        ("Jenis Kelamin", data.get("jenis_kelamin", "")),
        ("Alamat", data.get("alamat", "")),
        ("RT/RW", f"{data.get('rt', '')}/{data.get('rw', '')}"),
        ("Kel/Desa", data.get("kel_desa", "")), ("Kecamatan", data.get("kecamatan", "")),
        ("Agama", data.get("agama", "")), ("Status Perkawinan", data.get("status_perkawinan", "")),
        ("Pekerjaan", data.get("pekerjaan", "")),
        ("Kewarganegaraan", data.get("kewarganegaraan", "")),
    ]  # fmt: skip
    rows = [[k, ":", Paragraph(markup(str(v)), body)] for k, v in fields]
    photo = Image(io.BytesIO(card.photo_jpeg), width=30 * mm, height=40 * mm) if (
        card.photo_jpeg) else ""
    story.append(Table([[Table(rows, colWidths=[38 * mm, 4 * mm, 88 * mm]), photo]],
                       colWidths=[132 * mm, 38 * mm],
                       style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")])))  # fmt: skip
    zone = office_zone(suket.office_code)
    story += [
        Spacer(1, 4 * mm),
        Paragraph(
            "telah melakukan perekaman data KTP-el dan datanya telah tercatat dalam database "
            "kependudukan. Karena blangko KTP-el belum tersedia, surat keterangan ini berlaku "
            f"sebagai pengganti KTP-el sampai dengan <b>{suket.valid_until:%d-%m-%Y}</b> atau "
            "sampai KTP-el diterbitkan, mana yang lebih dahulu.", body),
        Spacer(1, 6 * mm),
    ]  # fmt: skip
    qr = io.BytesIO()
    segno.make(suket.qr_text, error="m").save(qr, kind="png", scale=3, border=2)
    qr.seek(0)
    signature = Table([
        [f"Diterbitkan di {suket.office_code}, {suket.issue_day:%d-%m-%Y}"],
        [suket.head_title],
        [""],
        [Paragraph(f"<b><u>{markup(suket.head_name)}</u></b>", center)],
        [f"NIP. {suket.head_nip}"],
    ], rowHeights=[None, None, 22 * mm, None, None],
        style=TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"),
                          ("FONTSIZE", (0, 0), (-1, -1), 9)]))  # fmt: skip
    story.append(Table([[Image(qr, width=38 * mm, height=38 * mm), signature]],
                       colWidths=[60 * mm, 110 * mm],
                       style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")])))  # fmt: skip
    story += [
        Spacer(1, 3 * mm),
        Paragraph("Periksa keaslian: pindai kode QR dan buka halaman /verify server Dukcapil, "
                  "atau periksa tanpa jaringan dengan kunci publik suket-signer.pem. "
                  f"Dicetak {zone.format(datetime.now(UTC))}.",
                  body.clone("small", fontSize=7.5, leading=9)),
    ]  # fmt: skip
    doc.build(story)
    return buf.getvalue()
