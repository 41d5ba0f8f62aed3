"""What the card face and the chip need of one record: plain data, biometrics decrypted in memory.

This is the contract between the data layer (which decrypts) and the renderer / chip writer
(which never touch the database). Instances must not be logged or persisted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, repr=False)
class CardInput:
    """One record ready for the card: ``fields`` are the record's JSON fields as imported."""

    request_id: str
    fields: dict[str, str]
    photo_jpeg: bytes
    signature_png: bytes
    finger_right_index_fmr: bytes | None = None
    finger_left_index_fmr: bytes | None = None
    issue_date: date = field(default_factory=date.today)
    card_access_number: str | None = None  # the CAN (PACE password), printed on the card

    @property
    def card_type(self) -> str:
        return self.fields.get("card_type", "KTP-EL")

    @property
    def nik(self) -> str:
        return self.fields["nik"]

    def __repr__(self) -> str:  # never leak personal data into logs or tracebacks
        return f"CardInput(request_id={self.request_id!r}, card_type={self.card_type!r})"
