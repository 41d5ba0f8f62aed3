"""DG3: finger minutiae (ISO/IEC 19794-2 "FMR\\0" records) encrypted per card.

Each finger becomes one 7F60 instance: the biometric header A1 in clear, then an enciphered
biometric data block 7F2E holding::

    06  OID aes128-GCM (2.16.840.1.101.3.4.1.6)
    80  key id of the biometric master key (e.g. "KTP-BIO-1")
    81  diversification input M (UID ‖ AID ‖ "KTP-EL" ‖ document number, see diversification)
    82  12-byte nonce
    83  ciphertext ‖ 16-byte GCM tag

The GCM additional data is ``A1 header ‖ key id``, so a header swapped between fingers fails.
The per-card key is CMAC(master, 20 ‖ M) computed inside the token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from asn1crypto import core
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chip.api import KeyDiversifier
from chip.diversification import KeyPurpose, derive_key, diversification_input
from chip.errors import DataError, VerificationError
from chip.lds import biometric_group, biometric_header, biometric_instances
from chip.tlv import parse, tlv

AES128_GCM_OID = "2.16.840.1.101.3.4.1.6"
DEFAULT_KEY_ID = b"KTP-BIO-1"
FINGER_RIGHT_INDEX = 0x09  # BIT subtype: right (01) | pointer finger (08)
FINGER_LEFT_INDEX = 0x0A  # left (02) | pointer finger (08)
FORMAT_FINGER_MINUTIAE = 0x0002
_OID_DER = core.ObjectIdentifier(AES128_GCM_OID).dump()


@dataclass(frozen=True)
class Finger:
    subtype: int
    fmr: bytes


def _key(master: KeyDiversifier, uid: bytes, document_number: str) -> bytes:
    return derive_key(master, KeyPurpose.BIOMETRIC, uid, document_number.encode("ascii"))


def encrypt_dg3(
    fingers: list[Finger],
    master: KeyDiversifier,
    uid: bytes,
    document_number: str,
    key_id: bytes = DEFAULT_KEY_ID,
) -> bytes:
    """DG3 with every finger record encrypted under the card's biometric key."""
    if not fingers:
        raise DataError("DG3 needs at least one fingerprint record")
    key = AESGCM(_key(master, uid, document_number))
    div = diversification_input(uid, document_number.encode("ascii"))
    instances = []
    for finger in fingers:
        if not finger.fmr.startswith(b"FMR\x00"):
            raise DataError("fingerprint is not an ISO/IEC 19794-2 minutiae record")
        header = biometric_header(0x08, FORMAT_FINGER_MINUTIAE, finger.subtype)
        nonce = os.urandom(12)
        sealed = key.encrypt(nonce, finger.fmr, header + key_id)
        block = _OID_DER + tlv(0x80, key_id) + tlv(0x81, div) + tlv(0x82, nonce) + tlv(0x83, sealed)
        instances.append(header + tlv(0x7F2E, block))
    return biometric_group(0x63, instances)


def decrypt_dg3(
    data: bytes, master: KeyDiversifier, uid: bytes, document_number: str
) -> list[Finger]:
    """Decrypt every finger of DG3; :class:`VerificationError` when anything fails."""
    try:
        instances = biometric_instances(data, 0x63)
    except ValueError as exc:
        raise VerificationError(f"DG3 malformed: {exc}") from exc
    key = AESGCM(_key(master, uid, document_number))
    fingers = []
    for header, items in instances:
        block = items.get(0x7F2E)
        if block is None:
            raise VerificationError("DG3 finger block is not enciphered")
        fields = dict(parse(block))
        try:
            if fields.get(0x06) != _OID_DER[2:]:
                raise VerificationError("DG3: unknown encryption algorithm")
            fmr = key.decrypt(fields[0x82], fields[0x83], header + fields[0x80])
        except (KeyError, InvalidTag) as exc:
            raise VerificationError("DG3 finger block does not decrypt with this key") from exc
        subtype = dict(parse(parse(header)[0][1])).get(0x82, b"\x00")[0]
        fingers.append(Finger(subtype, fmr))
    return fingers
