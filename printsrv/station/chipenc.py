"""The real encoder: the chip library over PC/SC, keys from the token.

The record → chip mapping is :func:`printsrv.products.holder_data`, the one ``run.py chip
personalize`` uses too; KIA cards have no chip and are passed through.
"""

from __future__ import annotations

import time
from typing import Any

from chip.errors import CardState, ChipError, ReaderError, VerificationError
from printsrv.cardinput import CardInput
from printsrv.config import Settings
from printsrv.products import holder_data
from printsrv.station import reasons
from printsrv.station.devices import ChipResult, StationConfig


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
        self._signer_version = 0
        self._csca: bytes | None = None
        self._inspection: Any = None

    def bind_keys(self, keys: Any) -> None:
        """Use the open key store ``keys`` (the daemon opens it once)."""
        self.keys = keys
        self._pkeys = None

    def _personalization_keys(self) -> Any:
        from chip.personalization import PersonalizationKeys

        if self.keys is None:
            raise ReaderError("no key store bound to the encoder", card_state=CardState.BLANK)
        version = self.keys.document_signer_version()
        if version != self._signer_version:  # 'keys rotate-ds' ran: take the new signer
            self._pkeys, self._signer_version = None, version
        if self._pkeys is None:
            self._pkeys = PersonalizationKeys(
                signer=self.keys.document_signer(),
                scp03_master=self.keys.scp03_master(),
                biometric_master=self.keys.biometric_master(),
                cvca_certificate=self.keys.cvca_certificate(),
            )
            self._csca = self.keys.csca_certificate_der()
            # the station's verify is an EAC inspection system: it passes TA to check DG3
            self._inspection = self.keys.inspection_system()
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
        from chip.bac import BacKey
        from chip.lds import td1_mrz
        from chip.pace import CanKey
        from chip.pcsc import PcscChannel
        from chip.personalization import personalize
        from chip.verification import verify_card

        keys = self._personalization_keys()
        holder = holder_data(card)
        try:
            channel = PcscChannel(self.reader)
        except ChipError as exc:
            exc.card_state = CardState.BLANK
            raise
        try:
            result = personalize(channel, holder, keys, can=card.card_access_number)
            fingers = [
                x for x in (card.finger_right_index_fmr, card.finger_left_index_fmr) if x
            ]
            # the verify reads as a terminal would: PACE with the CAN, else BAC from the MRZ
            access: BacKey | CanKey = (CanKey(card.card_access_number) if card.card_access_number
                                       else BacKey.from_mrz(td1_mrz(holder)))
            report = verify_card(channel, self._csca, keys.biometric_master, fingers or None,
                                 access=access, inspection=self._inspection)
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
