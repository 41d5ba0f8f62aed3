"""PACE v2 (ICAO Doc 9303-11 §4.4, worked example App. G.1): ECDH Generic Mapping, AES-128.

Password: the 6-digit CAN printed on the card (reference 02) or the MRZ (reference 01, f(π) =
SHA-1(MRZ_information)). K_π = SHA-1(f(π) ‖ 00000003)[:16]. The chip sends a nonce s
encrypted under K_π (AES-CBC, IV 0); mapping: H = ECDH of the mapping keys, G' = s·G + H;
key agreement on G'; K = x(shared point); KS_enc/KS_mac = SHA-1(K ‖ 00000001/2)[:16];
tokens = AES-CMAC(KS_mac, 7F49 { 06 OID, 86 other party's public point })[:8]. Secure
messaging afterwards: AES, SSC 0 (16 bytes).

The elliptic-curve arithmetic (point addition for G') is done here in plain Python because
the mapping needs it; the curves are NIST P-256 (parameter id 12) and brainpoolP256r1 (13).
Terminal: :func:`perform_pace`; card: :class:`PaceCard`; EF.CardAccess: :func:`card_access`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chip.apdu import CommandApdu
from chip.errors import MalformedError, SecureChannelError
from chip.securemessaging import Cipher3, SecureMessaging, aes_cmac8
from chip.tlv import find, tlv
from chip.transport import Transport

OID_PACE_ECDH_GM_AES_128 = "0.4.0.127.0.7.2.2.4.2.2"
PASSWORD_MRZ, PASSWORD_CAN = 0x01, 0x02
PARAM_P256, PARAM_BRAINPOOL_P256 = 12, 13
CARD_ACCESS_FID, CARD_ACCESS_SFI = 0x011C, 0x1C


@dataclass(frozen=True)
class CanKey:
    """The card access number printed on the card: the PACE password a terminal is given."""

    can: str

    def __repr__(self) -> str:
        return "CanKey(<redacted>)"


def read_card_access(t: Transport) -> bytes:
    """EF.CardAccess by SFI from the current DF/MF (public, read in the clear)."""
    return t.transmit(CommandApdu(0x00, 0xB0, 0x80 | CARD_ACCESS_SFI, 0x00, le=256),
                      context="READ EF.CardAccess", secure=False).data


def perform_pace_can(t: Transport, key: CanKey) -> SecureMessaging:
    """PACE with the CAN, with the curve EF.CardAccess names."""
    return perform_pace(t, key.can, PASSWORD_CAN, param_id=parse_card_access(read_card_access(t)))


@dataclass(frozen=True)
class Curve:
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def g(self) -> tuple[int, int]:
        return self.gx, self.gy

    @property
    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8

    def on_curve(self, pt: tuple[int, int]) -> bool:
        x, y = pt
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0

    def add(self, p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        (x1, y1), (x2, y2) = p1, p2
        if x1 == x2 and (y1 + y2) % self.p == 0:
            return None
        if p1 == p2:
            lam = (3 * x1 * x1 + self.a) * pow(2 * y1, -1, self.p) % self.p
        else:
            lam = (y2 - y1) * pow(x2 - x1, -1, self.p) % self.p
        x3 = (lam * lam - x1 - x2) % self.p
        return x3, (lam * (x1 - x3) - y1) % self.p

    def mul(self, k: int, pt: tuple[int, int]) -> tuple[int, int]:
        result: tuple[int, int] | None = None
        addend: tuple[int, int] | None = pt
        while k:
            if k & 1:
                result = self.add(result, addend)
            addend = self.add(addend, addend)
            k >>= 1
        if result is None:
            raise SecureChannelError("PACE: point at infinity")
        return result

    def encode(self, pt: tuple[int, int]) -> bytes:
        return b"\x04" + pt[0].to_bytes(self.size, "big") + pt[1].to_bytes(self.size, "big")

    def decode(self, raw: bytes) -> tuple[int, int]:
        if len(raw) != 1 + 2 * self.size or raw[0] != 0x04:
            raise SecureChannelError("PACE: malformed public point")
        pt = (int.from_bytes(raw[1 : 1 + self.size], "big"), int.from_bytes(raw[1 + self.size :],
                                                                             "big"))
        if not self.on_curve(pt):
            raise SecureChannelError("PACE: public point not on the curve")
        return pt


_P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
CURVES = {
    PARAM_P256: Curve(
        _P256_P, _P256_P - 3,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    PARAM_BRAINPOOL_P256: Curve(
        0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
        0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
        0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
        0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
        0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
        0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7),
}


def _oid_der(oid: str) -> bytes:
    parts = [int(x) for x in oid.split(".")]
    body = bytes((40 * parts[0] + parts[1],))
    for n in parts[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        body += bytes(reversed(chunk))
    return body


PACE_OID_BYTES = _oid_der(OID_PACE_ECDH_GM_AES_128)


def card_access(param_id: int = PARAM_P256) -> bytes:
    """EF.CardAccess: SET { PACEInfo { OID, version 2, parameterId } }."""
    info = tlv(0x06, PACE_OID_BYTES) + tlv(0x02, b"\x02") + tlv(0x02, bytes((param_id,)))
    return tlv(0x31, tlv(0x30, info))


def parse_card_access(raw: bytes) -> int:
    """The parameter id of the ECDH-GM-AES-128 PACEInfo; :class:`SecureChannelError` if none."""
    try:
        info = find(find(raw, 0x31) or b"", 0x30) or b""
        if find(info, 0x06) != PACE_OID_BYTES:
            raise SecureChannelError("EF.CardAccess offers no PACE ECDH-GM AES-128")
        values = [v for t, v in _items(info) if t == 0x02]
        return values[1][0] if len(values) > 1 else PARAM_P256
    except (ValueError, IndexError) as exc:
        raise SecureChannelError(f"EF.CardAccess unreadable: {exc}") from exc


def _items(buf: bytes) -> list[tuple[int, bytes]]:
    from chip.tlv import parse

    return parse(buf)


def kdf(secret: bytes, counter: int) -> bytes:
    """ICAO 9303-11 §9.7.1 for AES-128: SHA-1(secret ‖ counter)[:16]."""
    return hashlib.sha1(secret + counter.to_bytes(4, "big")).digest()[:16]


def password_key(password: str, reference: int) -> bytes:
    """K_π from the CAN (digits as they are) or the MRZ information (SHA-1 of it first)."""
    if reference == PASSWORD_CAN:
        if not (password.isdigit() and len(password) == 6):
            raise MalformedError("the CAN is 6 digits")
        return kdf(password.encode("ascii"), 3)
    return kdf(hashlib.sha1(password.encode("ascii")).digest(), 3)


def _aes_cbc0(key: bytes, data: bytes, *, decrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def _token(ks_mac: bytes, curve: Curve, point: tuple[int, int]) -> bytes:
    return aes_cmac8(ks_mac, tlv(0x7F49, tlv(0x06, PACE_OID_BYTES) + tlv(0x86,
                                                                      curve.encode(point))))


def _session_keys(curve: Curve, shared: tuple[int, int]) -> tuple[bytes, bytes]:
    k = shared[0].to_bytes(curve.size, "big")
    return kdf(k, 1), kdf(k, 2)


def _random_scalar(curve: Curve) -> int:
    return int.from_bytes(os.urandom(curve.size + 8), "big") % (curve.n - 1) + 1


def _ga(data: bytes, last: bool) -> CommandApdu:
    return CommandApdu(0x00 if last else 0x10, 0x86, 0x00, 0x00, tlv(0x7C, data), le=256)


def perform_pace(t: Transport, password: str, reference: int = PASSWORD_CAN, *,
                 param_id: int = PARAM_P256,
                 scalar: Callable[[str], int] | None = None) -> SecureMessaging:
    """Run PACE on ``t`` and put the AES session on it. ``scalar`` (tests only) chooses the
    terminal's private keys for the "mapping" and "agreement" steps."""
    curve = CURVES[param_id]
    choose = scalar or (lambda _step: _random_scalar(curve))
    t.session = None
    mse = (tlv(0x80, PACE_OID_BYTES) + tlv(0x83, bytes((reference,)))
           + tlv(0x84, bytes((param_id,))))
    t.transmit(CommandApdu(0x00, 0x22, 0xC1, 0xA4, mse), context="MSE:Set AT (PACE)",
               secure=False)
    z = find(find(t.transmit(_ga(b"", False), context="PACE nonce", secure=False).data, 0x7C)
             or b"", 0x80)
    if z is None or len(z) != 16:
        raise SecureChannelError("PACE: no encrypted nonce")
    s = int.from_bytes(_aes_cbc0(password_key(password, reference), z, decrypt=True), "big")
    sk_map = choose("mapping")
    resp = t.transmit(_ga(tlv(0x81, curve.encode(curve.mul(sk_map, curve.g))), False),
                      context="PACE map", secure=False)
    pk_map_ic = curve.decode(find(find(resp.data, 0x7C) or b"", 0x82) or b"")
    h = curve.mul(sk_map, pk_map_ic)
    g_mapped = curve.add(curve.mul(s, curve.g), h)
    if g_mapped is None:
        raise SecureChannelError("PACE: mapped generator at infinity")
    sk = choose("agreement")
    pk_ifd = curve.mul(sk, g_mapped)
    resp = t.transmit(_ga(tlv(0x83, curve.encode(pk_ifd)), False), context="PACE key agreement",
                      secure=False)
    pk_ic = curve.decode(find(find(resp.data, 0x7C) or b"", 0x84) or b"")
    if pk_ic == pk_ifd:
        raise SecureChannelError("PACE: chip echoed our public key")
    ks_enc, ks_mac = _session_keys(curve, curve.mul(sk, pk_ic))
    resp = t.transmit(_ga(tlv(0x85, _token(ks_mac, curve, pk_ic)), True),
                      context="PACE mutual authentication", secure=False)
    if resp.sw != 0x9000:  # 63xx: a wrong password (the chip sees it only now)
        raise SecureChannelError(f"PACE: the chip refused the password (SW {resp.sw:04X})")
    token_ic = find(find(resp.data, 0x7C) or b"", 0x86)
    if token_ic is None or not hmac.compare_digest(token_ic, _token(ks_mac, curve, pk_ifd)):
        raise SecureChannelError("PACE: chip token mismatch")
    sm = SecureMessaging(ks_enc, ks_mac, 0, Cipher3.AES,
                         pace_chip_key=pk_ic[0].to_bytes(curve.size, "big"))
    t.session = sm
    return sm


class PaceCard:
    """The chip's half of PACE with one stored password (the CAN)."""

    def __init__(self, can: str, param_id: int = PARAM_P256) -> None:
        self._k_pi = password_key(can, PASSWORD_CAN)
        self._curve = CURVES[param_id]
        self._step = 0
        self._s = 0
        self._sk = 0
        self._g: tuple[int, int] | None = None
        self._pk_ifd: tuple[int, int] | None = None

    def set_at(self, data: bytes) -> None:
        if find(data, 0x80) != PACE_OID_BYTES or find(data, 0x83) != bytes((PASSWORD_CAN,)):
            raise SecureChannelError("PACE: unsupported protocol or password")
        self._step = 1

    def general_authenticate(self, data: bytes) -> tuple[bytes, SecureMessaging | None]:
        """One GENERAL AUTHENTICATE step: (dynamic authentication data, session when done)."""
        curve, body = self._curve, find(data, 0x7C)
        if body is None:
            raise SecureChannelError("PACE: no 7C template")
        if self._step == 1:
            self._s = _random_scalar(curve) % (1 << 128)
            nonce = self._s.to_bytes(16, "big")
            self._step = 2
            return tlv(0x7C, tlv(0x80, _aes_cbc0(self._k_pi, nonce, decrypt=False))), None
        if self._step == 2:
            pk_map_ifd = curve.decode(find(body, 0x81) or b"")
            sk_map = _random_scalar(curve)
            self._g = curve.add(curve.mul(self._s, curve.g), curve.mul(sk_map, pk_map_ifd))
            self._step = 3
            return tlv(0x7C, tlv(0x82, curve.encode(curve.mul(sk_map, curve.g)))), None
        if self._step == 3 and self._g is not None:
            self._pk_ifd = curve.decode(find(body, 0x83) or b"")
            self._sk = _random_scalar(curve)
            self._step = 4
            return tlv(0x7C, tlv(0x84, curve.encode(curve.mul(self._sk, self._g)))), None
        if self._step == 4 and self._g is not None and self._pk_ifd is not None:
            self._step = 0
            pk_ic = curve.mul(self._sk, self._g)
            ks_enc, ks_mac = _session_keys(curve, curve.mul(self._sk, self._pk_ifd))
            token = find(body, 0x85) or b""
            if not hmac.compare_digest(token, _token(ks_mac, curve, pk_ic)):
                raise SecureChannelError("PACE: terminal token mismatch (wrong CAN)")
            reply = tlv(0x7C, tlv(0x86, _token(ks_mac, curve, self._pk_ifd)))
            return reply, SecureMessaging(ks_enc, ks_mac, 0, Cipher3.AES,
                                          pace_chip_key=pk_ic[0].to_bytes(curve.size, "big"))
        self._step = 0
        raise SecureChannelError("PACE: step out of order")
