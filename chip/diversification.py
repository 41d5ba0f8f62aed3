"""Per-card keys derived from token master keys (AN10922-style AES-CMAC diversification).

Input to the token's CMAC: one constant byte naming the key's purpose, then the
diversification input ``M = UID ‖ AID ‖ system identifier`` (plus the document number for the
biometric key). CMAC's own 80-padding covers short inputs, so the token needs nothing but plain
AES-CMAC. The same function runs on the card side (simulator) from the demo master key.
"""

from __future__ import annotations

from chip.api import KeyDiversifier
from chip.errors import MalformedError
from chip.lds import LDS_AID
from chip.scp03 import StaticKeys

SYSTEM_IDENTIFIER = b"KTP-EL"


class KeyPurpose:
    SCP03_ENC = 0x01
    SCP03_MAC = 0x02
    SCP03_DEK = 0x03
    BIOMETRIC = 0x20


def diversification_input(uid: bytes, extra: bytes = b"") -> bytes:
    """``M`` for a card: its UID, the LDS AID and our system identifier (+ ``extra``)."""
    return bytes((len(uid),)) + uid + LDS_AID + SYSTEM_IDENTIFIER + extra


def derive_key(master: KeyDiversifier, purpose: int, uid: bytes, extra: bytes = b"") -> bytes:
    """One AES-128 per-card key: CMAC(master, purpose ‖ M)."""
    key = master.cmac(bytes((purpose,)) + diversification_input(uid, extra))
    if len(key) != 16:
        raise MalformedError("KeyDiversifier.cmac must return 16 bytes")
    return key


def scp03_static_keys(master: KeyDiversifier, uid: bytes, kvn: int = 0x30) -> StaticKeys:
    """The card's SCP03 static ENC/MAC/DEK keys."""
    return StaticKeys(
        enc=derive_key(master, KeyPurpose.SCP03_ENC, uid),
        mac=derive_key(master, KeyPurpose.SCP03_MAC, uid),
        dek=derive_key(master, KeyPurpose.SCP03_DEK, uid),
        kvn=kvn,
    )


def biometric_key(master: KeyDiversifier, uid: bytes, document_number: str) -> bytes:
    """The per-card key for DG3 (UID and document number bind it to one card and holder)."""
    return derive_key(master, KeyPurpose.BIOMETRIC, uid, document_number.encode("ascii"))
