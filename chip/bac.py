"""Basic Access Control (ICAO Doc 9303-11 §4.3, worked example in Appendix D), both sides.

The access key comes from the MRZ: MRZ_information = document number ‖ check digit ‖ birth
date ‖ check digit ‖ expiry ‖ check digit. A document number longer than 9 characters (our
16-digit NIK, TD1 long-number rule) enters in full with the check digit computed over all of
it (the one in the optional data), as JMRTD and other readers do. K_seed = SHA-1(…)[:16];
K_enc, K_mac = KDF(K_seed, 1 / 2) with KDF(K, c) = SHA-1(K ‖ c)[:16], DES parity adjusted.

Terminal: :func:`perform_bac` (GET CHALLENGE, EXTERNAL AUTHENTICATE) returns the 3DES
:class:`~chip.securemessaging.SecureMessaging` to put on the transport. Card:
:class:`BacCard`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from chip.apdu import CommandApdu
from chip.errors import DataError, SecureChannelError
from chip.lds import check_digit
from chip.securemessaging import Cipher3, SecureMessaging, des3_cbc, pad, retail_mac
from chip.transport import Transport

INS_GET_CHALLENGE = 0x84
INS_MUTUAL_AUTHENTICATE = 0x82  # EXTERNAL AUTHENTICATE, CLA 00


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's lowest bit so that the byte has odd parity (DES keys)."""
    out = bytearray()
    for b in key:
        high = b & 0xFE
        out.append(high | (bin(high).count("1") % 2 == 0))
    return bytes(out)


def kdf(seed: bytes, counter: int) -> bytes:
    """ICAO 9303-11 §9.7.1 key derivation for 3DES: SHA-1(seed ‖ counter)[:16], parity set."""
    return adjust_parity(hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()[:16])


@dataclass(frozen=True)
class BacKey:
    """The MRZ fields that make the BAC key (dates as in the MRZ: YYMMDD or ``<<<<<<``)."""

    document_number: str
    birth_date: str
    expiry: str

    def __repr__(self) -> str:  # the key material is personal data
        return "BacKey(<redacted>)"

    def mrz_information(self) -> str:
        number = self.document_number.ljust(9, "<")
        return (number + check_digit(number) + self.birth_date + check_digit(self.birth_date)
                + self.expiry + check_digit(self.expiry))

    def key_seed(self) -> bytes:
        return hashlib.sha1(self.mrz_information().encode("ascii")).digest()[:16]

    def keys(self) -> tuple[bytes, bytes]:
        """(K_enc, K_mac)."""
        seed = self.key_seed()
        return kdf(seed, 1), kdf(seed, 2)

    @classmethod
    def from_mrz(cls, mrz: str) -> BacKey:
        """From a TD1 (3 × 30) or TD3 (2 × 44) MRZ; long document numbers included."""
        mrz = mrz.replace("\n", "")
        if len(mrz) == 90:
            line1, line2 = mrz[:30], mrz[30:60]
            number = line1[5:14]
            if line1[14] == "<" and line1[15] != "<":  # long number: rest + check in optional
                overflow = line1[15:30].split("<", 1)[0]
                number += overflow[:-1]
            return cls(number.rstrip("<"), line2[0:6], line2[8:14])
        if len(mrz) == 88:
            line2 = mrz[44:]
            return cls(line2[0:9].rstrip("<"), line2[13:19], line2[21:27])
        raise DataError(f"MRZ has {len(mrz)} characters; expected TD1 (90) or TD3 (88)")


def _session(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> SecureMessaging:
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
    ssc = int.from_bytes(rnd_ic[4:] + rnd_ifd[4:], "big")
    return SecureMessaging(kdf(seed, 1), kdf(seed, 2), ssc, Cipher3.DES3)


def authenticate_command(key: BacKey, rnd_ic: bytes, rnd_ifd: bytes,
                         k_ifd: bytes) -> CommandApdu:
    """EXTERNAL AUTHENTICATE with E_IFD ‖ M_IFD."""
    k_enc, k_mac = key.keys()
    e_ifd = des3_cbc(k_enc, rnd_ifd + rnd_ic + k_ifd)
    m_ifd = retail_mac(k_mac, pad(e_ifd, 8))
    return CommandApdu(0x00, INS_MUTUAL_AUTHENTICATE, 0, 0, e_ifd + m_ifd, le=0x28)


def finish_terminal(key: BacKey, response: bytes, rnd_ic: bytes, rnd_ifd: bytes,
                    k_ifd: bytes) -> SecureMessaging:
    """Check the card's E_IC ‖ M_IC and derive the session."""
    k_enc, k_mac = key.keys()
    if len(response) != 40:
        raise SecureChannelError(f"BAC: card answered {len(response)} bytes, expected 40")
    e_ic, m_ic = response[:32], response[32:]
    if not hmac.compare_digest(retail_mac(k_mac, pad(e_ic, 8)), m_ic):
        raise SecureChannelError("BAC: card MAC mismatch (wrong card or MRZ)")
    r = des3_cbc(k_enc, e_ic, decrypt=True)
    if r[:8] != rnd_ic or r[8:16] != rnd_ifd:
        raise SecureChannelError("BAC: card did not return our challenge")
    return _session(k_ifd, r[16:32], rnd_ic, rnd_ifd)


def perform_bac(t: Transport, key: BacKey) -> SecureMessaging:
    """Run BAC on ``t`` and put the session on it; :class:`SecureChannelError` on failure
    (a wrong MRZ shows as ``6300``/``6982`` from the card, raised as its status error)."""
    t.session = None
    rnd_ic = t.transmit(CommandApdu(0x00, INS_GET_CHALLENGE, 0, 0, le=8),
                        context="GET CHALLENGE", secure=False).data
    if len(rnd_ic) != 8:
        raise SecureChannelError(f"GET CHALLENGE returned {len(rnd_ic)} bytes")
    rnd_ifd, k_ifd = os.urandom(8), os.urandom(16)
    resp = t.transmit(authenticate_command(key, rnd_ic, rnd_ifd, k_ifd),
                      context="BAC EXTERNAL AUTHENTICATE", secure=False)
    sm = finish_terminal(key, resp.data, rnd_ic, rnd_ifd, k_ifd)
    t.session = sm
    return sm


class BacCard:
    """The chip's half: holds K_enc/K_mac and the last challenge."""

    def __init__(self, k_enc: bytes, k_mac: bytes) -> None:
        self._k_enc, self._k_mac = k_enc, k_mac
        self._rnd_ic: bytes | None = None

    def get_challenge(self, rnd_ic: bytes | None = None) -> bytes:
        self._rnd_ic = rnd_ic or os.urandom(8)
        return self._rnd_ic

    def mutual_authenticate(self, data: bytes,
                            k_ic: bytes | None = None) -> tuple[bytes, SecureMessaging]:
        """E_IC ‖ M_IC and the session; :class:`SecureChannelError` when the terminal fails."""
        rnd_ic, self._rnd_ic = self._rnd_ic, None  # a challenge serves once
        if rnd_ic is None or len(data) != 40:
            raise SecureChannelError("BAC: no challenge or wrong length")
        e_ifd, m_ifd = data[:32], data[32:]
        if not hmac.compare_digest(retail_mac(self._k_mac, pad(e_ifd, 8)), m_ifd):
            raise SecureChannelError("BAC: terminal MAC mismatch")
        s = des3_cbc(self._k_enc, e_ifd, decrypt=True)
        rnd_ifd, k_ifd = s[:8], s[16:32]
        if s[8:16] != rnd_ic:
            raise SecureChannelError("BAC: terminal did not return the challenge")
        k_ic = k_ic or os.urandom(16)
        e_ic = des3_cbc(self._k_enc, rnd_ic + rnd_ifd + k_ic)
        reply = e_ic + retail_mac(self._k_mac, pad(e_ic, 8))
        return reply, _session(k_ifd, k_ic, rnd_ic, rnd_ifd)
