"""GlobalPlatform SCP03 (Card Specification 2.3 Amendment D): KDF, cryptograms, wrapping.

Both sides live here: :class:`Scp03Session` holds the session keys and the counters shared by
the host wrapper (:meth:`wrap_command` / :meth:`unwrap_response`) and the card simulator
(:meth:`unwrap_command` / :meth:`wrap_response`). Any MAC mismatch raises
:class:`~chip.errors.SecureChannelError`; the caller must drop the session.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from chip.apdu import CommandApdu, ResponseApdu
from chip.errors import MalformedError, SecureChannelError


class DerivationConstant(IntEnum):
    CARD_CRYPTOGRAM = 0x00
    HOST_CRYPTOGRAM = 0x01
    CARD_CHALLENGE = 0x02
    S_ENC = 0x04
    S_MAC = 0x06
    S_RMAC = 0x07


class SecurityLevel(IntFlag):
    C_MAC = 0x01
    C_DECRYPTION = 0x02
    R_MAC = 0x10
    R_ENCRYPTION = 0x20


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def kdf(key: bytes, constant: int, context: bytes, bits: int) -> bytes:
    """NIST SP 800-108 counter-mode KDF with AES-CMAC, SCP03 derivation data layout."""
    out = b""
    i = 1
    while len(out) * 8 < bits:
        label = b"\x00" * 11 + bytes((constant, 0)) + bits.to_bytes(2, "big") + bytes((i,))
        out += aes_cmac(key, label + context)
        i += 1
    return out[: bits // 8]


def key_check_value(key: bytes) -> bytes:
    """GlobalPlatform AES KCV: first 3 bytes of AES(key, 16 x 01)."""
    return _aes_ecb(key, b"\x01" * 16)[:3]


def pad80(data: bytes, block: int = 16) -> bytes:
    data += b"\x80"
    return data + b"\x00" * (-len(data) % block)


def unpad80(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise SecureChannelError("bad padding in secure message")
    return stripped[:-1]


@dataclass(frozen=True)
class StaticKeys:
    """A card's SCP03 static keyset."""

    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int = 0x30


@dataclass
class Scp03Session:
    """Session keys and chaining state after INITIALIZE UPDATE."""

    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes
    context: bytes
    level: SecurityLevel = SecurityLevel.C_MAC
    mac_chain: bytes = b"\x00" * 16
    counter: int = 0  # encryption counter, incremented before each command after EXT AUTH
    authenticated: bool = field(default=False)

    @classmethod
    def derive(cls, keys: StaticKeys, host_challenge: bytes, card_challenge: bytes) -> Scp03Session:
        ctx = host_challenge + card_challenge
        bits = len(keys.enc) * 8
        return cls(
            s_enc=kdf(keys.enc, DerivationConstant.S_ENC, ctx, bits),
            s_mac=kdf(keys.mac, DerivationConstant.S_MAC, ctx, bits),
            s_rmac=kdf(keys.mac, DerivationConstant.S_RMAC, ctx, bits),
            context=ctx,
        )

    def card_cryptogram(self) -> bytes:
        return kdf(self.s_mac, DerivationConstant.CARD_CRYPTOGRAM, self.context, 64)

    def host_cryptogram(self) -> bytes:
        return kdf(self.s_mac, DerivationConstant.HOST_CRYPTOGRAM, self.context, 64)

    # -- host side ---------------------------------------------------------------------------
    def external_authenticate(self, level: SecurityLevel) -> CommandApdu:
        """The EXTERNAL AUTHENTICATE command; the session then applies ``level``."""
        cmd = CommandApdu(0x80, 0x82, int(level), 0x00, self.host_cryptogram())
        wrapped = self._mac_command(cmd)
        self.level = level
        self.authenticated = True
        return wrapped

    def _mac_command(self, cmd: CommandApdu) -> CommandApdu:
        data = cmd.data
        ext = cmd.needs_extended() or len(data) + 8 > 255
        macced = CommandApdu(cmd.cla | 0x04, cmd.ins, cmd.p1, cmd.p2, data + b"\x00" * 8,
                             cmd.le, extended=ext)
        mac_input = self.mac_chain + macced.header() + macced.lc_field() + data
        self.mac_chain = aes_cmac(self.s_mac, mac_input)
        return CommandApdu(macced.cla, cmd.ins, cmd.p1, cmd.p2, data + self.mac_chain[:8],
                           cmd.le, extended=ext)

    def wrap_command(self, cmd: CommandApdu) -> CommandApdu:
        """Encrypt (C-DECRYPTION) and MAC one command."""
        self.counter += 1
        data = cmd.data
        if self.level & SecurityLevel.C_DECRYPTION and data:
            icv = _aes_ecb(self.s_enc, self.counter.to_bytes(16, "big"))
            data = _aes_cbc(self.s_enc, icv, pad80(data))
        ext = cmd.needs_extended() or len(data) + 8 > 255
        return self._mac_command(
            CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, data, cmd.le, extended=ext)
        )

    def unwrap_response(self, resp: ResponseApdu) -> ResponseApdu:
        """Check R-MAC and decrypt R-ENCRYPTION; error status words come back unprotected."""
        if not self.level & SecurityLevel.R_MAC or not _protected(resp.sw):
            return resp
        if len(resp.data) < 8:
            raise SecureChannelError(f"response without R-MAC (SW {resp.sw:04X})")
        body, mac = resp.data[:-8], resp.data[-8:]
        expected = aes_cmac(self.s_rmac, self.mac_chain + body + resp.sw.to_bytes(2, "big"))
        if not hmac.compare_digest(expected[:8], mac):
            raise SecureChannelError("R-MAC mismatch: session aborted")
        if self.level & SecurityLevel.R_ENCRYPTION and body:
            if len(body) % 16:
                raise SecureChannelError("encrypted response not block aligned")
            icv = _aes_ecb(self.s_enc, b"\x80" + self.counter.to_bytes(15, "big"))
            body = unpad80(_aes_cbc(self.s_enc, icv, body, decrypt=True))
        return ResponseApdu(body, resp.sw)

    # -- card side ---------------------------------------------------------------------------
    def verify_external_authenticate(self, cmd: CommandApdu) -> None:
        """Card: check the host cryptogram and C-MAC of EXTERNAL AUTHENTICATE."""
        if len(cmd.data) != 16 or not cmd.cla & 0x04:
            raise SecureChannelError("malformed EXTERNAL AUTHENTICATE")
        self._check_command_mac(cmd)
        if not hmac.compare_digest(cmd.data[:8], self.host_cryptogram()):
            raise SecureChannelError("host cryptogram mismatch")
        self.level = SecurityLevel(cmd.p1)
        self.authenticated = True

    def _check_command_mac(self, cmd: CommandApdu) -> bytes:
        if len(cmd.data) < 8:
            raise SecureChannelError("command without C-MAC")
        body, mac = cmd.data[:-8], cmd.data[-8:]
        mac_input = self.mac_chain + cmd.header() + cmd.lc_field() + body
        chain = aes_cmac(self.s_mac, mac_input)
        if not hmac.compare_digest(chain[:8], mac):
            raise SecureChannelError("C-MAC mismatch")
        self.mac_chain = chain
        return body

    def unwrap_command(self, cmd: CommandApdu) -> CommandApdu:
        """Card: verify the C-MAC and decrypt the data of a wrapped command."""
        self.counter += 1
        if not cmd.cla & 0x04:
            raise SecureChannelError("command outside the secure channel")
        body = self._check_command_mac(cmd)
        if self.level & SecurityLevel.C_DECRYPTION and body:
            if len(body) % 16:
                raise SecureChannelError("encrypted command not block aligned")
            icv = _aes_ecb(self.s_enc, self.counter.to_bytes(16, "big"))
            body = unpad80(_aes_cbc(self.s_enc, icv, body, decrypt=True))
        return CommandApdu(cmd.cla & ~0x04 & 0xFF, cmd.ins, cmd.p1, cmd.p2, body, cmd.le,
                           extended=cmd.extended)

    def wrap_response(self, resp: ResponseApdu) -> ResponseApdu:
        """Card: encrypt and R-MAC a response (success and warning status words only)."""
        if not self.level & SecurityLevel.R_MAC or not _protected(resp.sw):
            return resp
        body = resp.data
        if self.level & SecurityLevel.R_ENCRYPTION and body:
            icv = _aes_ecb(self.s_enc, b"\x80" + self.counter.to_bytes(15, "big"))
            body = _aes_cbc(self.s_enc, icv, pad80(body))
        mac = aes_cmac(self.s_rmac, self.mac_chain + body + resp.sw.to_bytes(2, "big"))
        return ResponseApdu(body + mac[:8], resp.sw)


def _protected(sw: int) -> bool:
    return sw == 0x9000 or sw >> 8 in (0x62, 0x63)


@dataclass(frozen=True)
class InitializeUpdateResponse:
    """Parsed INITIALIZE UPDATE response."""

    diversification_data: bytes
    kvn: int
    scp: int
    i_param: int
    card_challenge: bytes
    card_cryptogram: bytes
    sequence_counter: bytes | None

    @classmethod
    def parse(cls, data: bytes) -> InitializeUpdateResponse:
        if len(data) not in (29, 32):
            raise SecureChannelError(f"INITIALIZE UPDATE response of {len(data)} bytes")
        if data[11] != 0x03:
            raise SecureChannelError(f"card offers SCP{data[11]:02X}, not SCP03")
        return cls(data[:10], data[10], data[11], data[12], data[13:21], data[21:29],
                   data[29:32] if len(data) == 32 else None)

    def encode(self) -> bytes:
        return (self.diversification_data + bytes((self.kvn, self.scp, self.i_param))
                + self.card_challenge + self.card_cryptogram + (self.sequence_counter or b""))


def initialize_update(kvn: int, host_challenge: bytes) -> CommandApdu:
    return CommandApdu(0x80, 0x50, kvn, 0x00, host_challenge, le=256)


def open_host_session(
    keys: StaticKeys, host_challenge: bytes, response: bytes
) -> tuple[Scp03Session, InitializeUpdateResponse]:
    """Host: derive the session from an INITIALIZE UPDATE response and check the card."""
    iu = InitializeUpdateResponse.parse(response)
    session = Scp03Session.derive(keys, host_challenge, iu.card_challenge)
    if not hmac.compare_digest(session.card_cryptogram(), iu.card_cryptogram):
        raise SecureChannelError("card cryptogram mismatch: wrong keys or not our card")
    return session, iu


# -- PUT KEY (GlobalPlatform 2.3 §11.8, Amendment D key data fields) ---------------------------
PUT_KEY = 0xD8
_AES_KEY_TYPE = 0x88


def put_key_command(dek: bytes, old_kvn: int, new_kvn: int, keys: tuple[bytes, ...]) -> CommandApdu:
    """PUT KEY replacing key set ``old_kvn`` by ``keys`` (ENC, MAC, DEK) as ``new_kvn``: each
    key AES-CBC-encrypted under the static DEK (zero ICV), followed by its KCV."""
    body = bytes((new_kvn,))
    for key in keys:
        if len(key) % 16:
            raise MalformedError("AES key length must be a multiple of 16")
        encrypted = _aes_cbc(dek, b"\x00" * 16, key)
        body += (bytes((_AES_KEY_TYPE, 1 + len(encrypted), len(key))) + encrypted
                 + b"\x03" + key_check_value(key))
    return CommandApdu(0x80, PUT_KEY, old_kvn, 0x81, body, le=256)


def parse_put_key(dek: bytes, data: bytes) -> tuple[int, list[bytes]]:
    """Card side: (new KVN, clear keys) of a PUT KEY body; raises ``ValueError`` when a key
    data field is malformed or a KCV does not match."""
    if not data:
        raise MalformedError("empty PUT KEY")
    new_kvn, pos, keys = data[0], 1, []
    while pos < len(data):
        if data[pos] != _AES_KEY_TYPE or pos + 3 > len(data):
            raise MalformedError("not an AES key data field")
        field_len, key_len = data[pos + 1], data[pos + 2]
        encrypted = data[pos + 3:pos + 2 + field_len]
        if len(encrypted) != key_len or key_len % 16:
            raise MalformedError("bad key length")
        key = _aes_cbc(dek, b"\x00" * 16, encrypted, decrypt=True)
        kcv_at = pos + 2 + field_len
        kcv = data[kcv_at + 1:kcv_at + 4]
        if data[kcv_at:kcv_at + 1] != b"\x03" or kcv != key_check_value(key):
            raise MalformedError("key check value does not match")
        keys.append(key)
        pos = kcv_at + 4
    return new_kvn, keys
