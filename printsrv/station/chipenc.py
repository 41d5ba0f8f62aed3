"""The real encoder: the chip library over PC/SC, keys from the token.

:func:`holder_for` maps a record's :class:`~printsrv.cardinput.CardInput` to the chip's
:class:`chip.lds.HolderData`; KIA cards have no chip and are passed through.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from chip.errors import CardState, ChipError, ReaderError, VerificationError
from printsrv.cardinput import CardInput
from printsrv.config import Settings
from printsrv.station import reasons
from printsrv.station.devices import ChipResult, StationConfig


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def holder_for(card: CardInput) -> Any:
    """The chip's holder data for ``card`` (a :class:`chip.lds.HolderData`)."""
    from chip.lds import HolderData

    f = card.fields
    birth = _date(f.get("tanggal_lahir", "")) or dt.date(1900, 1, 1)
    expiry_text = f.get("berlaku_hingga", "SEUMUR HIDUP")
    sex = {"LAKI-LAKI": "M", "PEREMPUAN": "F"}.get(f.get("jenis_kelamin", ""), "<")
    kab = f.get("kabupaten_kota", "")
    return HolderData(
        document_number=card.nik,
        name=f.get("nama", ""),
        birth_date=birth,
        sex=sex,
        expiry=None if expiry_text == "SEUMUR HIDUP" else _date(expiry_text),
        place_of_birth=f.get("tempat_lahir", ""),
        address=(
            f.get("alamat", ""),
            f"{f.get('rt', '')}/{f.get('rw', '')}",
            f.get("kel_desa", ""),
            f.get("kecamatan", ""),
            kab,
            f.get("provinsi", ""),
        ),
        issuing_authority=f"DISDUKCAPIL {kab}".strip()[:60],
        issue_date=card.issue_date,
        photo_jpeg=card.photo_jpeg,
        signature_image=card.signature_png,
        finger_right_index_fmr=card.finger_right_index_fmr,
        finger_left_index_fmr=card.finger_left_index_fmr,
        nationality="IDN" if f.get("kewarganegaraan", "WNI") == "WNI" else f.get("negara", "<<<"),
        occupation=f.get("pekerjaan", ""),
        personal_summary=(
            f"AGAMA={f.get('agama', '')};STATUS={f.get('status_perkawinan', '')};"
            f"GOLDARAH={f.get('golongan_darah', '')}"
        ),
    )


class PcscEncoder:
    """Personalize and verify the card in a PC/SC reader with the token's keys.

    ``keys`` is an open :class:`printsrv.keys.KeyStore`; ``on_present`` moves a blank to the
    encoder (for the virtual station: insert a fresh simulated card).
    """

    def __init__(
        self,
        settings: Settings,
        config: StationConfig,
        keys: Any = None,
        on_present: Any = None,
        on_close: Any = None,
        card_wait: float = 10.0,
    ) -> None:
        self.settings = settings
        self.config = config
        self.reader = config.reader or ""
        self.keys = keys
        self.on_present = on_present
        self.on_close = on_close
        self.card_wait = card_wait
        self._pkeys: Any = None
        self._csca: bytes | None = None

    def bind_keys(self, keys: Any) -> None:
        """Use the open key store ``keys`` (the daemon opens it once)."""
        self.keys = keys
        self._pkeys = None

    def _personalization_keys(self) -> Any:
        from chip.personalization import PersonalizationKeys

        if self._pkeys is None:
            if self.keys is None:
                raise ReaderError("no key store bound to the encoder", card_state=CardState.BLANK)
            self._pkeys = PersonalizationKeys(
                signer=self.keys.document_signer(),
                scp03_master=self.keys.scp03_master(),
                biometric_master=self.keys.biometric_master(),
            )
            self._csca = self.keys.csca_certificate_der()
        return self._pkeys

    def ready(self) -> str | None:
        from chip.pcsc import list_readers

        try:
            readers = list_readers()
        except ChipError as exc:
            return f"{reasons.PCSC_GONE}{exc}"
        if self.reader not in readers:
            return f"{reasons.READER_GONE}{self.reader!r}"
        return None

    def present_blank(self, serial: str) -> None:
        from chip.pcsc import wait_for_card

        if self.on_present is not None:
            self.on_present(serial)
        deadline = time.monotonic() + self.card_wait
        while not wait_for_card(self.reader, timeout=0.5):
            if time.monotonic() > deadline:
                raise ReaderError(
                    f"no card in {self.reader!r} after {self.card_wait:.0f} s",
                    card_state=CardState.BLANK,
                )

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()

    def personalize(self, card: CardInput, *, blank_serial: str) -> ChipResult:
        if card.card_type == "KIA":
            return ChipResult(uid="", details={"chip": False})
        from chip.pcsc import PcscChannel
        from chip.personalization import personalize
        from chip.verification import verify_card

        keys = self._personalization_keys()
        holder = holder_for(card)
        try:
            channel = PcscChannel(self.reader)
        except ChipError as exc:
            exc.card_state = CardState.BLANK
            raise
        try:
            result = personalize(channel, holder, keys)
            fingers = [
                x for x in (card.finger_right_index_fmr, card.finger_left_index_fmr) if x
            ]
            report = verify_card(channel, self._csca, keys.biometric_master, fingers or None)
        finally:
            channel.close()
        if not report.ok:
            raise VerificationError(
                f"chip verification failed: {report.as_dict().get('problems')}",
                card_state=CardState.LOCKED,
            )
        return ChipResult(
            uid=result.chip_uid,
            details={"apdus": result.apdus, "seconds": round(result.seconds, 3)},
        )

    def probe(self) -> CardState:
        from chip.pcsc import PcscChannel
        from chip.personalization import probe_card_state

        with PcscChannel(self.reader) as channel:
            return probe_card_state(channel)
