"""Ports of the chip library as :class:`typing.Protocol`s.

The application implements the key ports with its PKCS#11 token; :mod:`chip.softkeys` ships
software stand-ins. Card channels are implemented by :class:`chip.pcsc.PcscChannel` (real
PC/SC) and :class:`chip.simulator.card.SimulatedChannel` (in memory).
"""

from __future__ import annotations

from typing import Protocol


class DocumentSigner(Protocol):
    """The document-signer key that signs EF.SOD."""

    @property
    def certificate_der(self) -> bytes: ...  # document-signer X.509 certificate (DER)

    def sign(self, data: bytes) -> bytes: ...  # ECDSA P-256 over SHA-256(data), DER (r,s)


class KeyDiversifier(Protocol):
    """A master key that never leaves its token; per-card keys are CMACs computed inside it."""

    def cmac(self, data: bytes) -> bytes: ...  # AES-CMAC(master key, data) -> 16 bytes


class CardChannel(Protocol):
    """A connected card: raw APDU bytes in, raw response (data + SW) out."""

    @property
    def atr(self) -> bytes: ...

    @property
    def reader_name(self) -> str: ...

    def transmit(self, apdu: bytes) -> bytes: ...  # raises ReaderError / TransmitError

    def close(self) -> None: ...
