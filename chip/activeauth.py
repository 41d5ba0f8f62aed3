"""Active Authentication (ICAO Doc 9303-11 §6.1) with ECDSA P-256: DG15 and the check.

At personalization the card makes its key pair (GENERATE ASYMMETRIC KEY PAIR, ``80 46``) and
answers the public point; DG15 (tag ``6F``) holds it as a SubjectPublicKeyInfo and EF.SOD covers
DG15. The terminal sends INTERNAL AUTHENTICATE (``00 88 00 00 08`` + a fresh 8-byte challenge)
under secure messaging; the card answers an ECDSA-SHA-256 signature in plain ``r ‖ s`` form
(BSI TR-03111). A byte copy of the files onto another chip lacks the private key and fails.
"""

from __future__ import annotations

import os

from asn1crypto import core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from chip.apdu import CommandApdu
from chip.errors import StatusWordError, VerificationError
from chip.tlv import find, parse, tlv, unwrap
from chip.transport import Transport

INS_GENERATE_KEY_PAIR = 0x46
INS_INTERNAL_AUTHENTICATE = 0x88
DG14_TAG, DG15_TAG = 0x6E, 0x6F
OID_ACTIVE_AUTHENTICATION = "2.23.136.1.1.5"  # id-icao-mrtd-security-aaProtocolObject
OID_ECDSA_PLAIN_SHA256 = "0.4.0.127.0.7.1.1.4.1.3"  # BSI TR-03111 ecdsa-plain-SHA256


def _oid(dotted: str) -> bytes:
    return tlv(0x06, core.ObjectIdentifier(dotted).contents)


def dg14() -> bytes:
    """DG14 = SecurityInfos { ActiveAuthenticationInfo { aa OID, version 1, ecdsa-plain-SHA256 } },
    which ICAO 9303-11 §6.1 requires when AA uses ECDSA."""
    info = tlv(0x30, _oid(OID_ACTIVE_AUTHENTICATION) + tlv(0x02, b"\x01")
               + _oid(OID_ECDSA_PLAIN_SHA256))
    return tlv(DG14_TAG, tlv(0x31, info))


def dg14_signature_algorithm(dg14_raw: bytes) -> str | None:
    """The signature algorithm OID DG14 names for Active Authentication (None if absent)."""
    aa = core.ObjectIdentifier(OID_ACTIVE_AUTHENTICATION).contents
    for tag, info in parse(unwrap(unwrap(dg14_raw, DG14_TAG), 0x31)):
        oids = [value for t, value in parse(info) if t == 0x06] if tag == 0x30 else []
        if len(oids) > 1 and oids[0] == aa:
            return str(core.ObjectIdentifier.load(tlv(0x06, oids[1])).dotted)
    return None


def generate_on_card(t: Transport) -> bytes:
    """Ask the card (under SCP03) for a new AA key pair; returns DG15 for its public key."""
    resp = t.transmit(CommandApdu(0x80, INS_GENERATE_KEY_PAIR, 0x00, 0x00, le=256),
                      context="GENERATE KEY PAIR (Active Authentication)")
    point = find(find(resp.data, 0x7F49) or b"", 0x86)
    if point is None:
        raise VerificationError("GENERATE KEY PAIR: no public point in the answer")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    return dg15(public)


def dg15(public: ec.EllipticCurvePublicKey) -> bytes:
    spki = public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return tlv(DG15_TAG, spki)


def public_key(dg15_raw: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(unwrap(dg15_raw, DG15_TAG))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationError("DG15 holds a key we do not support (ECDSA only)")
    return key


def check(t: Transport, dg15_raw: bytes) -> str | None:
    """INTERNAL AUTHENTICATE with a random challenge; None when the signature verifies,
    else the problem (a clone, or a card without the key)."""
    key = public_key(dg15_raw)
    challenge = os.urandom(8)
    try:
        resp = t.transmit(CommandApdu(0x00, INS_INTERNAL_AUTHENTICATE, 0, 0, challenge, le=256),
                          context="INTERNAL AUTHENTICATE", secure=True)
    except StatusWordError as exc:
        return f"Active Authentication failed: {exc}"
    size = (key.curve.key_size + 7) // 8
    sig = resp.data
    if len(sig) != 2 * size:
        return f"Active Authentication failed: signature of {len(sig)} bytes"
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"),
                               int.from_bytes(sig[size:], "big"))
    try:
        key.verify(der, challenge, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "Active Authentication failed: the chip's signature does not match DG15 (clone?)"
    return None
