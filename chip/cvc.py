"""Card-verifiable certificates for EAC Terminal Authentication (BSI TR-03110 part 3, App. C).

A CV certificate is ``7F21 { 7F4E body, 5F37 signature }``; the body holds the profile
identifier ``5F29`` (00), the certification authority reference ``42`` (CAR), the public key
``7F49`` (OID id-TA-ECDSA-SHA-256 and the point ``86``; a CVCA certificate also carries the
domain parameters ``81``..``87``), the holder reference ``5F20`` (CHR), the holder
authorization ``7F4C`` (CHAT: role OID id-IS and one byte of rights), the effective date
``5F25`` and the expiration date ``5F24`` (six unpacked BCD digits YYMMDD). The signature is
ECDSA-SHA-256 in plain ``r ‖ s`` form (BSI TR-03111) over the DER of the body.

CHAT for id-IS (one byte): bits 7-6 the role (11 CVCA, 10 DV official domestic, 01 DV
non-official/foreign, 00 inspection system); bit 1 read DG4 (iris); bit 0 read DG3
(fingerprints). Effective rights are the AND of every certificate of the chain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from asn1crypto import core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from chip.errors import MalformedError
from chip.pace import CURVES, PARAM_P256
from chip.tlv import find, parse, tlv

OID_ID_IS = "0.4.0.127.0.7.3.1.2.1"  # id-roles.1: inspection system (eMRTD)
OID_TA_ECDSA_SHA_256 = "0.4.0.127.0.7.2.2.2.2.3"
TAG_CV_CERT, TAG_BODY, TAG_SIGNATURE = 0x7F21, 0x7F4E, 0x5F37
TAG_CAR, TAG_CHR, TAG_PUBLIC_KEY, TAG_CHAT = 0x42, 0x5F20, 0x7F49, 0x7F4C
TAG_EFFECTIVE, TAG_EXPIRATION, TAG_PROFILE = 0x5F25, 0x5F24, 0x5F29

READ_DG3, READ_DG4 = 0x01, 0x02


class Role(IntEnum):
    """The two role bits of an id-IS CHAT."""

    CVCA = 0b11
    DV_DOMESTIC = 0b10
    DV_FOREIGN = 0b01
    IS = 0b00


class CvSigner(Protocol):
    """A CV PKI key that signs: ECDSA P-256 over SHA-256(data), DER (r, s)."""

    def sign(self, data: bytes) -> bytes: ...


def oid_tlv(dotted: str) -> bytes:
    return tlv(0x06, core.ObjectIdentifier(dotted).contents)


def encode_date(d: dt.date) -> bytes:
    """YYMMDD as six bytes of unpacked BCD (one digit per byte)."""
    return bytes(int(c) for c in d.strftime("%y%m%d"))


def decode_date(raw: bytes) -> dt.date:
    if len(raw) != 6 or any(b > 9 for b in raw):
        raise MalformedError("CV certificate date is not six BCD digits")
    return dt.date(2000 + raw[0] * 10 + raw[1], raw[2] * 10 + raw[3], raw[4] * 10 + raw[5])


def point(public: ec.EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)


def _public_key_do(public: ec.EllipticCurvePublicKey, domain: bool) -> bytes:
    body = oid_tlv(OID_TA_ECDSA_SHA_256)
    if domain:  # CVCA: the domain parameters, inherited by every certificate below it
        c = CURVES[PARAM_P256]
        size = c.size
        body += (tlv(0x81, c.p.to_bytes(size, "big")) + tlv(0x82, c.a.to_bytes(size, "big"))
                 + tlv(0x83, c.b.to_bytes(size, "big")) + tlv(0x84, c.encode(c.g))
                 + tlv(0x85, c.n.to_bytes(size, "big")))
        body += tlv(0x86, point(public)) + tlv(0x87, b"\x01")
    else:
        body += tlv(0x86, point(public))
    return tlv(TAG_PUBLIC_KEY, body)


def verify_plain(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` (plain r ‖ s) is ECDSA-SHA-256 over ``data`` by ``key``."""
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def plain_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass(frozen=True)
class CvCertificate:
    """One parsed CV certificate (``raw`` is its full 7F21 encoding)."""

    raw: bytes
    body: bytes  # the 7F4E TLV, what the signature covers
    signature: bytes
    car: str
    chr: str
    public_point: bytes
    has_domain_parameters: bool
    role: Role
    rights: int  # the CHAT byte without the role bits
    chat_oid: str
    effective: dt.date
    expiration: dt.date

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.public_point)

    @property
    def chat(self) -> int:
        return (int(self.role) << 6) | self.rights

    def signed_by(self, issuer_key: ec.EllipticCurvePublicKey) -> bool:
        return verify_plain(issuer_key, self.signature, self.body)

    def pso_data(self) -> bytes:
        """What PSO:Verify Certificate carries: the body and the signature, no 7F21."""
        return self.body + tlv(TAG_SIGNATURE, self.signature)


def issue(signer: CvSigner, car: str, chr_: str, public: ec.EllipticCurvePublicKey,
          role: Role, rights: int, effective: dt.date, expiration: dt.date) -> CvCertificate:
    """A CV certificate for ``public`` signed by ``signer`` (the CAR's key). CVCA certificates
    (self-signed or link) carry the domain parameters."""
    if not (1 <= len(car) <= 16 and 1 <= len(chr_) <= 16):
        raise MalformedError("CAR and CHR are 1..16 characters")
    if expiration < effective:
        raise MalformedError("a CV certificate expires after it becomes effective")
    chat = tlv(TAG_CHAT, oid_tlv(OID_ID_IS) + tlv(0x53, bytes(((int(role) << 6) | rights,))))
    body = tlv(TAG_BODY, tlv(TAG_PROFILE, b"\x00") + tlv(TAG_CAR, car.encode("ascii"))
               + _public_key_do(public, role is Role.CVCA) + tlv(TAG_CHR, chr_.encode("ascii"))
               + chat + tlv(TAG_EFFECTIVE, encode_date(effective))
               + tlv(TAG_EXPIRATION, encode_date(expiration)))
    signature = plain_signature(signer.sign(body))
    return parse_cv_certificate(tlv(TAG_CV_CERT, body + tlv(TAG_SIGNATURE, signature)))


def parse_cv_certificate(raw: bytes) -> CvCertificate:
    """Parse a ``7F21`` CV certificate; :class:`MalformedError` when it is not one of ours."""
    outer = find(raw, TAG_CV_CERT)
    if outer is None:
        raise MalformedError("not a CV certificate (no 7F21)")
    return parse_pso(outer)


def parse_pso(data: bytes, *, raw: bytes | None = None) -> CvCertificate:
    """Parse the body ‖ signature form that PSO:Verify Certificate carries."""
    try:
        items = parse(data)
        body_value = dict(items)[TAG_BODY]
        signature = dict(items)[TAG_SIGNATURE]
        fields = dict(parse(body_value))
        if fields.get(TAG_PROFILE) != b"\x00":
            raise MalformedError("CV certificate profile identifier is not 0")
        key = dict(parse(fields[TAG_PUBLIC_KEY]))
        chat = dict(parse(fields[TAG_CHAT]))
        chat_oid = str(core.ObjectIdentifier.load(tlv(0x06, chat[0x06])).dotted)
        if key.get(0x06) != core.ObjectIdentifier(OID_TA_ECDSA_SHA_256).contents:
            raise MalformedError("CV certificate key is not id-TA-ECDSA-SHA-256")
        rights = chat[0x53]
        if len(rights) != 1:
            raise MalformedError("CHAT for id-IS is one byte")
        body = tlv(TAG_BODY, body_value)
        return CvCertificate(
            raw if raw is not None else tlv(TAG_CV_CERT, data), body, signature,
            fields[TAG_CAR].decode("ascii"), fields[TAG_CHR].decode("ascii"), key[0x86],
            0x81 in key, Role(rights[0] >> 6), rights[0] & 0x3F, chat_oid,
            decode_date(fields[TAG_EFFECTIVE]), decode_date(fields[TAG_EXPIRATION]))
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise MalformedError(f"CV certificate unreadable: {exc}") from exc


def chain_problem(chain: list[CvCertificate], trust: CvCertificate,
                  today: dt.date) -> str | None:
    """Check ``chain`` (DV, then IS; link certificates first) from ``trust`` at ``today``
    the way the chip does; None when it holds (terminals use it to fail early)."""
    issuer = trust
    for cert in chain:
        if cert.car != issuer.chr:
            return f"{cert.chr}: issued by {cert.car}, not {issuer.chr}"
        if not cert.signed_by(issuer.public_key):
            return f"{cert.chr}: signature does not verify with {issuer.chr}"
        if cert.expiration < today:
            return f"{cert.chr}: expired on {cert.expiration}"
        issuer = cert
    return None

