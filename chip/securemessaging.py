"""ICAO Doc 9303-11 §9.8 secure messaging (3DES after BAC, AES after PACE), both sides.

A :class:`SecureMessaging` holds KS_enc, KS_mac and the send sequence counter (SSC). The
terminal calls :meth:`~SecureMessaging.wrap_command` / :meth:`~SecureMessaging.unwrap_response`,
the card (our simulator) :meth:`~SecureMessaging.unwrap_command` /
:meth:`~SecureMessaging.wrap_response`. The SSC is incremented before every command and every
response. Data objects: ``87`` (padding indicator 01 + encrypted data; ``85`` for odd INS),
``97`` (Le), ``99`` (status word), ``8E`` (MAC, 8 bytes). Any MAC or format mismatch raises
:class:`~chip.errors.SecureChannelError`; both sides then drop the session.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from chip.apdu import CommandApdu, ResponseApdu
from chip.errors import SecureChannelError
from chip.tlv import parse, tlv

SM_CLA = 0x0C  # CLA bits: secure messaging, header authenticated


def _des3(key16: bytes) -> TripleDES:
    return TripleDES(key16 + key16[:8])  # two-key 3DES as a 24-byte key (K1 K2 K1)


def des3_cbc(key16: bytes, data: bytes, *, iv: bytes = bytes(8), decrypt: bool = False) -> bytes:
    """Two-key 3DES in CBC mode (no padding)."""
    cipher = Cipher(_des3(key16), modes.CBC(iv))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def _des_ecb(key8: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key8 * 3), modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def pad(data: bytes, block: int) -> bytes:
    """ISO/IEC 9797-1 padding method 2 (``80 00 …``), always at least one byte."""
    data += b"\x80"
    return data + bytes(-len(data) % block)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise SecureChannelError("bad padding in secure-messaging data")
    return stripped[:-1]


def retail_mac(key16: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (the "retail MAC"); ``data`` padded already."""
    ka, kb = key16[:8], key16[8:16]
    h = bytes(8)
    for i in range(0, len(data), 8):
        block = bytes(a ^ b for a, b in zip(h, data[i : i + 8], strict=True))
        h = _des_ecb(ka, block)
    return _des_ecb(ka, _des_ecb(kb, h, decrypt=True))


def _aes(key: bytes, data: bytes, *, iv: bytes | None = None, decrypt: bool = False) -> bytes:
    mode = modes.ECB() if iv is None else modes.CBC(iv)
    cipher = Cipher(algorithms.AES(key), mode)
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def aes_cmac8(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()[:8]


class Cipher3(Enum):
    DES3 = "3DES"
    AES = "AES"


@dataclass
class SecureMessaging:
    """Session keys and SSC of one BAC or PACE session."""

    ks_enc: bytes
    ks_mac: bytes
    ssc: int
    cipher: Cipher3 = Cipher3.DES3
    #: After PACE: x of the chip's ephemeral key-agreement public key, Comp(~PK_PICC), which
    #: Terminal Authentication signs as ID_PICC (TR-03110 "dynamic binding"); None after BAC
    pace_chip_key: bytes | None = None

    def max_plain_data(self, limit: int = 255) -> int:
        """The largest command data (no Le) whose protected form — DO 87 with padding and
        the padding indicator, DO 8E — still fits a data field of ``limit`` bytes."""
        def wrapped(n: int) -> int:
            value = 1 + (n // self.block + 1) * self.block  # 01 ‖ padded ciphertext
            return 1 + (1 if value < 128 else 2 if value < 256 else 3) + value + 10
        n = limit
        while n > 0 and wrapped(n) > limit:
            n -= 1
        return n

    @property
    def block(self) -> int:
        return 8 if self.cipher is Cipher3.DES3 else 16

    def _ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.block, "big")

    def _encrypt(self, data: bytes, *, decrypt: bool = False) -> bytes:
        if self.cipher is Cipher3.DES3:
            return des3_cbc(self.ks_enc, data, decrypt=decrypt)
        iv = _aes(self.ks_enc, self._ssc_bytes())
        return _aes(self.ks_enc, data, iv=iv, decrypt=decrypt)

    def _mac(self, data: bytes) -> bytes:
        n = pad(self._ssc_bytes() + data, self.block)
        if self.cipher is Cipher3.DES3:
            return retail_mac(self.ks_mac, n)
        return aes_cmac8(self.ks_mac, n)

    # -- terminal side ---------------------------------------------------------------------
    def wrap_command(self, cmd: CommandApdu) -> CommandApdu:
        """The protected form of ``cmd`` (CLA 0C, DO 87/85, 97, 8E; Le 00)."""
        self.ssc += 1
        header = bytes((cmd.cla | SM_CLA, cmd.ins, cmd.p1, cmd.p2))
        body = b""
        if cmd.data:
            enc = self._encrypt(pad(cmd.data, self.block))
            body += tlv(0x85, enc) if cmd.ins & 1 else tlv(0x87, b"\x01" + enc)
        if cmd.le is not None:
            le = cmd.le
            if cmd.needs_extended():
                body += tlv(0x97, b"\x00\x00" if le >= 65536 else le.to_bytes(2, "big"))
            else:
                body += tlv(0x97, b"\x00" if le >= 256 else bytes((le,)))
        mac = self._mac(pad(header, self.block) + body)
        body += tlv(0x8E, mac)
        extended = len(body) > 255 or cmd.needs_extended()
        return CommandApdu(header[0], cmd.ins, cmd.p1, cmd.p2, body,
                           65536 if extended else 256, extended=extended)

    def unwrap_response(self, resp: ResponseApdu) -> ResponseApdu:
        """Check DO 8E over DO 87/99, decrypt; raise :class:`SecureChannelError` on mismatch."""
        self.ssc += 1
        try:
            items = parse(resp.data)
        except ValueError as exc:
            raise SecureChannelError("malformed secure-messaging response") from exc
        objects = dict(items)
        mac = objects.get(0x8E)
        if mac is None:
            raise SecureChannelError(f"response without MAC (SW {resp.sw:04X})")
        covered = b"".join(tlv(tag, value) for tag, value in items if tag in (0x85, 0x87, 0x99))
        if not hmac.compare_digest(self._mac(covered), mac):
            raise SecureChannelError("response MAC mismatch")
        sw = int.from_bytes(objects.get(0x99, resp.sw.to_bytes(2, "big")), "big")
        data = b""
        if 0x87 in objects:
            if objects[0x87][:1] != b"\x01":
                raise SecureChannelError("unknown padding indicator in DO 87")
            data = unpad(self._encrypt(objects[0x87][1:], decrypt=True))
        elif 0x85 in objects:
            data = unpad(self._encrypt(objects[0x85], decrypt=True))
        return ResponseApdu(data, sw)

    # -- card side -------------------------------------------------------------------------
    def unwrap_command(self, cmd: CommandApdu) -> CommandApdu:
        """The plain command inside a protected one; :class:`SecureChannelError` on mismatch."""
        self.ssc += 1
        try:
            items = parse(cmd.data)
        except ValueError as exc:
            raise SecureChannelError("malformed secure-messaging command") from exc
        objects = dict(items)
        mac = objects.get(0x8E)
        if mac is None or items[-1][0] != 0x8E:
            raise SecureChannelError("command without MAC")
        covered = b"".join(tlv(tag, value) for tag, value in items
                           if tag in (0x85, 0x87, 0x97))
        header = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2))
        if not hmac.compare_digest(self._mac(pad(header, self.block) + covered), mac):
            raise SecureChannelError("command MAC mismatch")
        data = b""
        if 0x87 in objects:
            data = unpad(self._encrypt(objects[0x87][1:], decrypt=True))
        elif 0x85 in objects:
            data = unpad(self._encrypt(objects[0x85], decrypt=True))
        le: int | None = None
        if 0x97 in objects:
            raw_le = objects[0x97]
            le = int.from_bytes(raw_le, "big") or (256 if len(raw_le) == 1 else 65536)
        return CommandApdu(cmd.cla & ~SM_CLA & 0xFF, cmd.ins, cmd.p1, cmd.p2, data, le,
                           extended=len(data) > 255 or (le or 0) > 256)

    def wrap_response(self, resp: ResponseApdu, *, odd: bool = False) -> ResponseApdu:
        self.ssc += 1
        body = b""
        if resp.data:
            enc = self._encrypt(pad(resp.data, self.block))
            body += tlv(0x85, enc) if odd else tlv(0x87, b"\x01" + enc)
        body += tlv(0x99, resp.sw.to_bytes(2, "big"))
        return ResponseApdu(body + tlv(0x8E, self._mac(body)), resp.sw)
