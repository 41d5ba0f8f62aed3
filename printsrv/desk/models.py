"""A card handed over at the desk: who took it, on whose authority, and who gave it."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.models import Base, utcnow


class CardCollection(Base):
    """One handover of a printed card (*tanda terima*). ``printed_by`` is the operator of the
    station that issued it, kept for the two-person rule's anomaly flag."""

    __tablename__ = "card_collection"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_number: Mapped[str] = mapped_column(String(40), unique=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id"), index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    office_code: Mapped[str] = mapped_column(String(16), index=True)
    collector_name: Mapped[str] = mapped_column(String(120))
    relation: Mapped[str] = mapped_column(String(20))  # owner, spouse, parent, child, sibling…
    collector_nik: Mapped[str] = mapped_column(String(16))
    authorization: Mapped[str | None] = mapped_column(String(80))  # surat kuasa number
    signature_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    officer: Mapped[str] = mapped_column(String(64))
    witness: Mapped[str | None] = mapped_column(String(64))
    printed_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Suket(Base):
    """A *Surat Keterangan pengganti KTP-el* issued while the office had no blanks; revoked
    when the real card is issued (:mod:`printsrv.desk.suket`)."""

    __tablename__ = "suket"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id"), index=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    office_code: Mapped[str] = mapped_column(String(16))
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    issue_day: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    head_name: Mapped[str] = mapped_column(String(120))
    head_nip: Mapped[str] = mapped_column(String(32))
    head_title: Mapped[str] = mapped_column(String(160))
    qr_text: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(120))


class IkdActivation(Base):
    """Digital KTP (IKD) activations an office made on one day (imported or entered)."""

    __tablename__ = "ikd_activation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    office_code: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    activations: Mapped[int]
    source: Mapped[str] = mapped_column(String(120))  # the CSV file, or "form"
    entered_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (UniqueConstraint("office_code", "day"),)
