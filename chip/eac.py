"""Extended Access Control v1 (BSI TR-03110 v1.11; ICAO 9303-11 §6.2): Chip and Terminal
Authentication, both halves.

**Chip Authentication** (id-CA-ECDH-AES-CBC-CMAC-128): the chip made a static P-256 key pair at
personalization (``80 46 00 01``; the private key never leaves it); DG14 carries the public key
(ChipAuthenticationPublicKeyInfo) and is covered by EF.SOD. Under BAC/PACE secure messaging the
terminal sends MSE:Set AT ``00 22 41 A4 {80 OID}`` and GENERAL AUTHENTICATE ``00 86 00 00
{7C {80 ephemeral PK_PCD}}``; the chip answers ``7C 00`` under the old keys and both sides
restart secure messaging (AES, SSC 0) with KS_enc/KS_mac = KDF(x(ECDH), 1/2). A byte copy of
the files lacks the private key: its answers no longer MAC-verify.

**Terminal Authentication**, after CA: MSE:Set DST ``00 22 81 B6 {83 CAR}``, PSO:Verify
Certificate ``00 2A 00 BE`` for each certificate (CVCA link certificates, DV, IS), MSE:Set AT
``00 22 81 A4 {83 CHR}``, GET CHALLENGE (8 bytes), EXTERNAL AUTHENTICATE ``00 82 00 00`` with
the IS signature (ECDSA-SHA-256, plain) over ID_PICC ‖ r_PICC ‖ Comp(PK_PCD), Comp the
x-coordinate of the ephemeral key from CA. ID_PICC depends on how the session was opened
(ICAO 9303-11 §7.1.2, TR-03110-1 §3.5): after BAC the document number with its check digit as
BAC's MRZ information has it (the full 16-digit NIK); after PACE Comp(~PK_PICC), the
x-coordinate of the chip's ephemeral PACE key-agreement key ("dynamic binding"). Only then
does the chip let DG3 be read. A link certificate carries the domain parameters (~434 bytes
under PSO): on a card without extended length that announces command chaining in its ATR,
PSO:Verify Certificate goes as an ISO 7816-4 chain, each link under secure messaging.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from asn1crypto import core, keys
from cryptography.hazmat.primitives.asymmetric import ec

from chip import cvc
from chip.activeauth import DG14_TAG, OID_ACTIVE_AUTHENTICATION, OID_ECDSA_PLAIN_SHA256
from chip.apdu import CommandApdu, chain, status_error
from chip.cardops import CardFacts
from chip.errors import MalformedError, SecureChannelError, VerificationError
from chip.pace import CURVES, PARAM_P256, kdf
from chip.securemessaging import Cipher3, SecureMessaging
from chip.tlv import find, parse, tlv, unwrap
from chip.transport import Transport

OID_PK_ECDH = "0.4.0.127.0.7.2.2.1.2"
OID_CA_ECDH_AES_CBC_CMAC_128 = "0.4.0.127.0.7.2.2.3.2.2"
OID_TA = "0.4.0.127.0.7.2.2.2"
CVCA_FID, CVCA_SFI = 0x011C, 0x1C  # EF.CVCA inside the LDS application
P2_CA_KEY = 0x01  # GENERATE KEY PAIR 80 46 00 01: the Chip Authentication key
PUT_DATA_TRUST_POINT = 0x00A1  # PUT DATA 00A1: A1 { 7F21 CVCA certificate, 5F25 date }


def oid_bytes(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).contents)


def _p256_domain() -> keys.ECDomainParameters:
    """P-256 as explicit ECParameters (prime field, a, b, G uncompressed, order, cofactor)."""
    c = CURVES[PARAM_P256]
    return keys.ECDomainParameters(name="specified", value=keys.SpecifiedECDomain({
        "version": "ecdpVer1",
        "field_id": {"field_type": "prime_field", "parameters": c.p},
        "curve": {"a": c.a.to_bytes(c.size, "big"), "b": c.b.to_bytes(c.size, "big")},
        "base": c.encode(c.g), "order": c.n, "cofactor": 1}))


def ca_subject_public_key_info(public: ec.EllipticCurvePublicKey) -> bytes:
    """The CA key as ICAO 9303-11 §9.2 wants it: SubjectPublicKeyInfo with id-ecPublicKey
    and *explicit* domain parameters (no named curve), the point uncompressed."""
    der: bytes = keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": _p256_domain()},
        "public_key": cvc.point(public)}).dump()
    return der


def dg14(ca_public: ec.EllipticCurvePublicKey | None, *,
         active_authentication: bool = True) -> bytes:
    """DG14 = SecurityInfos: ChipAuthenticationInfo (v1) + ChipAuthenticationPublicKeyInfo
    (id-PK-ECDH, explicit domain parameters) + TerminalAuthenticationInfo (v1) when the chip
    has a CA key; ActiveAuthenticationInfo (ecdsa-plain-SHA256) when it does AA. A DER SET OF:
    the infos sorted by their encodings (which also puts ChipAuthenticationInfo before the
    public key, the order OpenPACE's parser needs)."""
    infos: list[bytes] = []
    if ca_public is not None:
        infos.append(tlv(0x30, cvc.oid_tlv(OID_PK_ECDH) + ca_subject_public_key_info(ca_public)))
        infos.append(tlv(0x30, cvc.oid_tlv(OID_CA_ECDH_AES_CBC_CMAC_128) + tlv(0x02, b"\x01")))
        infos.append(tlv(0x30, cvc.oid_tlv(OID_TA) + tlv(0x02, b"\x01")))
    if active_authentication:
        infos.append(tlv(0x30, cvc.oid_tlv(OID_ACTIVE_AUTHENTICATION) + tlv(0x02, b"\x01")
                         + cvc.oid_tlv(OID_ECDSA_PLAIN_SHA256)))
    return tlv(DG14_TAG, tlv(0x31, b"".join(sorted(infos))))


def _p256_key(spki_der: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 key from a SubjectPublicKeyInfo with explicit (or named) domain parameters;
    :class:`MalformedError` for any other curve."""
    info = keys.PublicKeyInfo.load(spki_der)
    if info["algorithm"]["algorithm"].native != "ec":
        raise MalformedError("the CA key is not an EC key")
    params = info["algorithm"]["parameters"]
    if params.name == "named":
        if params.chosen.native not in ("secp256r1", "1.2.840.10045.3.1.7"):
            raise MalformedError(f"the CA key is on {params.chosen.native}, not P-256")
    elif params.name == "specified":
        if params.dump() != _p256_domain().dump():
            c, got = CURVES[PARAM_P256], params.chosen
            same = (got["field_id"]["parameters"].native == c.p
                    and int.from_bytes(got["curve"]["a"].native, "big") == c.a
                    and int.from_bytes(got["curve"]["b"].native, "big") == c.b
                    and got["base"].native == c.encode(c.g) and got["order"].native == c.n)
            if not same:
                raise MalformedError("the CA key's explicit domain parameters are not P-256")
    else:
        raise MalformedError("the CA key has implicit domain parameters")
    point = info["public_key"].native
    if not isinstance(point, bytes):
        raise MalformedError("the CA key's point is not an octet string")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def ca_public_key(dg14_raw: bytes) -> ec.EllipticCurvePublicKey | None:
    """The chip's CA public key from DG14 when DG14 offers CA with ECDH-AES-128 (else None)."""
    offers, key = False, None
    for tag, info in parse(unwrap(unwrap(dg14_raw, DG14_TAG), 0x31)):
        if tag != 0x30:
            continue
        items = parse(info)
        if not items or items[0][0] != 0x06:
            continue
        oid = items[0][1]
        if oid == oid_bytes(OID_CA_ECDH_AES_CBC_CMAC_128):
            offers = True
        elif oid == oid_bytes(OID_PK_ECDH) and len(items) > 1:
            key = _p256_key(tlv(0x30, items[1][1]))
    return key if offers else None


def generate_on_card(t: Transport) -> ec.EllipticCurvePublicKey:
    """Ask the card (under SCP03) for its Chip Authentication key pair; the public key."""
    resp = t.transmit(CommandApdu(0x80, 0x46, 0x00, P2_CA_KEY, le=256),
                      context="GENERATE KEY PAIR (Chip Authentication)")
    raw = find(find(resp.data, 0x7F49) or b"", 0x86)
    if raw is None:
        raise VerificationError("GENERATE KEY PAIR: no public point in the answer")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def ef_cvca(car: str, second: str | None = None) -> bytes:
    """EF.CVCA: one or two ``42 CAR`` objects, zero-padded to 36 bytes."""
    body = tlv(0x42, car.encode("ascii")) + (tlv(0x42, second.encode("ascii")) if second else b"")
    return body.ljust(36, b"\x00")


def parse_ef_cvca(raw: bytes) -> list[str]:
    return [v.decode("ascii") for tag, v in parse(raw.rstrip(b"\x00")) if tag == 0x42]


def encode_trust_point(cvca: cvc.CvCertificate) -> bytes:
    """What the chip keeps of a CVCA: ``A1 { 42 CHR, 86 public point, 5F24 expiry }`` (P-256
    implied; the expiry disables it for DV certificates once the chip's date passes it)."""
    return tlv(0xA1, tlv(0x42, cvca.chr.encode("ascii")) + tlv(0x86, cvca.public_point)
               + tlv(cvc.TAG_EXPIRATION, cvc.encode_date(cvca.expiration)))


def decode_trust_points(raw: bytes) -> list[cvc.CvCertificate]:
    """The chip's trust points as (body-less) CVCA certificates."""
    out = []
    for tag, value in parse(raw):
        if tag != 0xA1:
            raise MalformedError("trust point is not an A1 template")
        chr_ = (find(value, 0x42) or b"").decode("ascii")
        point = find(value, 0x86) or b""
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # ValueError if bad
        expiry_raw = find(value, cvc.TAG_EXPIRATION)  # absent on cards personalized before
        expiry = cvc.decode_date(expiry_raw) if expiry_raw else dt.date(2099, 12, 31)
        out.append(cvc.CvCertificate(b"", b"", b"", chr_, chr_, point, True, cvc.Role.CVCA,
                                     cvc.READ_DG3 | cvc.READ_DG4, cvc.OID_ID_IS, expiry, expiry))
    return out


def trust_point_command(cvca: cvc.CvCertificate, today: dt.date) -> CommandApdu:
    """PUT DATA ``00A1`` (personalization, under SCP03): the CVCA the chip trusts (its CHR
    and public key) and the chip's first current date."""
    body = encode_trust_point(cvca) + tlv(cvc.TAG_EFFECTIVE, cvc.encode_date(today))
    return CommandApdu(0x80, 0xDA, 0x00, 0xA1, body)


def id_picc(mrz: str) -> bytes:
    """ID_PICC for TA after **BAC** (ICAO 9303-11 §7.1.2): the document number with its check
    digit, as in BAC's MRZ information (a long NIK in full, the check digit over all of it)."""
    from chip.bac import BacKey
    from chip.lds import check_digit

    number = BacKey.from_mrz(mrz).document_number.ljust(9, "<")
    return (number + check_digit(number)).encode("ascii")


def id_picc_pace(session: SecureMessaging) -> bytes:
    """ID_PICC for TA after **PACE** (ICAO 9303-11 §7.1.2, TR-03110-1 §3.5 dynamic binding):
    Comp(~PK_PICC), the x-coordinate of the chip's ephemeral PACE public key."""
    if session.pace_chip_key is None:
        raise SecureChannelError("this session was not opened by PACE")
    return session.pace_chip_key


# -- terminal side ------------------------------------------------------------------------------
@dataclass
class ChipAuthenticationResult:
    """The ephemeral key pair of one CA run (TA signs Comp of its public half)."""

    pk_pcd: bytes  # uncompressed point


def chip_authentication(t: Transport, ca_public: ec.EllipticCurvePublicKey) -> (
        ChipAuthenticationResult):
    """CA with the chip's DG14 key; afterwards ``t`` speaks the new session.
    :class:`SecureChannelError` / :class:`StatusWordError` when the chip fails it."""
    if not isinstance(t.session, SecureMessaging):
        raise SecureChannelError("Chip Authentication needs BAC or PACE first")
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    pk_pcd = cvc.point(ephemeral.public_key())
    t.transmit(CommandApdu(0x00, 0x22, 0x41, 0xA4,
                           tlv(0x80, oid_bytes(OID_CA_ECDH_AES_CBC_CMAC_128))),
               context="MSE:Set AT (Chip Authentication)")
    t.transmit(CommandApdu(0x00, 0x86, 0x00, 0x00, tlv(0x7C, tlv(0x80, pk_pcd)), le=256),
               context="GENERAL AUTHENTICATE (Chip Authentication)")
    shared = ephemeral.exchange(ec.ECDH(), ca_public)
    t.session = SecureMessaging(kdf(shared, 1), kdf(shared, 2), 0, Cipher3.AES)
    return ChipAuthenticationResult(pk_pcd)


@dataclass
class InspectionSystem:
    """What a terminal needs for TA: its chain (link certificates, DV, IS) and the IS key."""

    chain: list[cvc.CvCertificate]  # ordered: [link…], DV, IS
    signer: cvc.CvSigner

    @property
    def certificate(self) -> cvc.CvCertificate:
        return self.chain[-1]


def _verify_certificate(t: Transport, cert: cvc.CvCertificate, facts: CardFacts | None) -> None:
    """PSO:Verify Certificate, chained (ISO 7816-4, CLA b5) when the card takes no extended
    length but announces command chaining and the protected command would not fit."""
    cmd = CommandApdu(0x00, 0x2A, 0x00, 0xBE, cert.pso_data())
    context = f"PSO:Verify Certificate {cert.chr}"
    if facts is None or facts.extended_length:
        t.transmit(cmd, context=context)
        return
    limit = min(facts.max_command_data, 255)
    session = t.session
    piece = session.max_plain_data(limit) if isinstance(session, SecureMessaging) else limit
    if len(cmd.data) <= piece:
        t.transmit(cmd, context=context)
        return
    if not facts.command_chaining:
        raise VerificationError(f"{cert.chr}: {len(cmd.data)} bytes need extended length or "
                                "command chaining, and the chip announces neither")
    for link in chain(cmd, piece):
        t.transmit(link, context=context)


def terminal_authentication(t: Transport, inspection: InspectionSystem, cvca_refs: list[str],
                            ca: ChipAuthenticationResult, id_picc_: bytes, *,
                            facts: CardFacts | None = None) -> None:
    """TA v1 with ``inspection``'s chain, starting at a CVCA named in EF.CVCA. ``id_picc_`` is
    :func:`id_picc` (BAC) or :func:`id_picc_pace` (PACE) of this session; ``facts`` (the
    card's ATR) decide whether long certificates go by command chaining.
    :class:`VerificationError` when the chip trusts none of our chain's roots;
    :class:`StatusWordError` when it refuses a certificate or the signature."""
    chain_ = inspection.chain
    start = next((i for i, c in enumerate(chain_) if c.car in cvca_refs), None)
    if start is None:
        raise VerificationError(f"the chip trusts CVCA {cvca_refs}, our chain starts at "
                                f"{chain_[0].car}")
    for cert in chain_[start:]:
        t.transmit(CommandApdu(0x00, 0x22, 0x81, 0xB6, tlv(0x83, cert.car.encode("ascii"))),
                   context=f"MSE:Set DST {cert.car}")
        _verify_certificate(t, cert, facts)
    t.transmit(CommandApdu(0x00, 0x22, 0x81, 0xA4,
                           tlv(0x83, inspection.certificate.chr.encode("ascii"))),
               context="MSE:Set AT (Terminal Authentication)")
    r_picc = t.transmit(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8),
                        context="GET CHALLENGE (Terminal Authentication)").data
    message = id_picc_ + r_picc + ca.pk_pcd[1:33]
    signature = cvc.plain_signature(inspection.signer.sign(message))
    resp = t.transmit(CommandApdu(0x00, 0x82, 0x00, 0x00, signature),
                      context="EXTERNAL AUTHENTICATE (Terminal Authentication)")
    if resp.sw != SW_OK:  # 6300: the chip did not verify our signature (ICAO 9303-11 §7.1.5.5)
        raise status_error(resp.sw, "EXTERNAL AUTHENTICATE (Terminal Authentication): "
                                    "signature refused")


# -- card side ----------------------------------------------------------------------------------
SW_OK, SW_SECURITY, SW_CONDITIONS, SW_NOT_FOUND, SW_WRONG_DATA = (
    0x9000, 0x6982, 0x6985, 0x6A88, 0x6A80)
SW_SIGNATURE_FAILED = 0x6300  # EXTERNAL AUTHENTICATE: "signature verification failed"


@dataclass
class EacCardState:
    """The chip's volatile EAC state for one session."""

    ca_pending: bool = False
    pk_pcd: bytes | None = None  # the terminal's ephemeral key after CA
    dst_key: cvc.CvCertificate | None = None  # the certificate whose key verifies the next one
    rights: int = 0x3F  # AND of the chain's CHATs so far
    verified: cvc.CvCertificate | None = None  # the last certificate verified (IS at the end)
    ta_chr: str | None = None
    challenge: bytes | None = None
    terminal_authenticated: bool = False
    effective_rights: int = 0  # the rights TA granted (bit 0: DG3)
    chain: list[cvc.CvCertificate] = field(default_factory=list)


def ecdh_session(private: ec.EllipticCurvePrivateKey, pk_pcd: bytes) -> SecureMessaging:
    """The chip's new session after CA."""
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pk_pcd)
    except ValueError as exc:
        raise SecureChannelError("CA: the terminal's key is not a P-256 point") from exc
    shared = private.exchange(ec.ECDH(), peer)
    return SecureMessaging(kdf(shared, 1), kdf(shared, 2), 0, Cipher3.AES)


class EacCard:
    """The chip's TA logic over its trust points and current date (both persisted by the
    caller). Each method answers a status word."""

    def __init__(self, trust_points: list[cvc.CvCertificate], current_date: dt.date) -> None:
        self.trust_points = trust_points
        self.current_date = current_date

    def set_dst(self, state: EacCardState, data: bytes) -> int:
        car = (find(data, 0x83) or b"").decode("ascii", "replace")
        if state.pk_pcd is None:
            return SW_CONDITIONS  # TA only after CA
        trust = next((tp for tp in self.trust_points if tp.chr == car), None)
        if trust is not None:  # a chain starts (again) at a trust point
            state.dst_key, state.rights, state.chain = trust, trust.rights, [trust]
            return SW_OK
        if state.verified is not None and state.verified.chr == car:
            state.dst_key = state.verified
            return SW_OK
        return SW_NOT_FOUND

    def verify_certificate(self, state: EacCardState, data: bytes) -> int:
        issuer = state.dst_key
        if issuer is None:
            return SW_CONDITIONS
        try:
            cert = cvc.parse_pso(data)
        except MalformedError:
            return SW_WRONG_DATA
        if cert.car != issuer.chr or cert.chat_oid != cvc.OID_ID_IS:
            return SW_WRONG_DATA
        if not cert.signed_by(issuer.public_key):
            return SW_SECURITY
        # ICAO 9303-11 §7.1.4.3.3: expired CVCA link certificates are accepted, expired DV
        # and terminal certificates are not.
        if cert.role is not cvc.Role.CVCA and cert.expiration < self.current_date:
            return SW_SECURITY
        if cert.role is cvc.Role.IS and issuer.role not in (cvc.Role.DV_DOMESTIC,
                                                            cvc.Role.DV_FOREIGN):
            return SW_SECURITY
        if cert.role in (cvc.Role.DV_DOMESTIC, cvc.Role.DV_FOREIGN) and (
                issuer.role is not cvc.Role.CVCA):
            return SW_SECURITY
        # §7.1.4.3.4: an expired trust point no longer verifies DV certificates (it still
        # verifies the link certificate to its successor).
        if cert.role is not cvc.Role.CVCA and issuer.role is cvc.Role.CVCA and (
                issuer.expiration < self.current_date):
            return SW_SECURITY
        # ICAO 9303-11 §7.1.4.3.3/§7.1.4.3.6: CVCA link certificates, DV certificates and
        # "accurate" terminal certificates (issued by a domestic DV) advance the chip's date.
        accurate = cert.role in (cvc.Role.CVCA, cvc.Role.DV_DOMESTIC, cvc.Role.DV_FOREIGN) or (
            cert.role is cvc.Role.IS and issuer.role is cvc.Role.DV_DOMESTIC)
        if accurate and cert.effective > self.current_date:
            self.current_date = cert.effective
        if cert.role is cvc.Role.CVCA:  # a link certificate: a new trust point, two at most
            if all(tp.chr != cert.chr for tp in self.trust_points):
                self.trust_points = [*self.trust_points, cert][-2:]
            state.verified, state.dst_key = cert, None
            return SW_OK
        state.rights &= cert.rights
        state.verified, state.dst_key = cert, None
        state.chain.append(cert)
        return SW_OK

    def set_at(self, state: EacCardState, data: bytes) -> int:
        chr_ = (find(data, 0x83) or b"").decode("ascii", "replace")
        if state.verified is None or state.verified.role is not cvc.Role.IS or (
                state.verified.chr != chr_):
            return SW_NOT_FOUND
        state.ta_chr = chr_
        return SW_OK

    def external_authenticate(self, state: EacCardState, signature: bytes,
                              id_picc_: bytes) -> int:
        cert, challenge = state.verified, state.challenge
        state.challenge = None
        if state.terminal_authenticated:  # one TA per session (ICAO 9303-11 §7.1.3)
            return SW_SECURITY
        if cert is None or challenge is None or state.ta_chr != cert.chr or state.pk_pcd is None:
            return SW_CONDITIONS
        message = id_picc_ + challenge + state.pk_pcd[1:33]
        if not cvc.verify_plain(cert.public_key, signature, message):
            return SW_SIGNATURE_FAILED
        state.terminal_authenticated = True
        state.effective_rights = state.rights
        return SW_OK

