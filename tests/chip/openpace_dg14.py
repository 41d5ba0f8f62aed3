"""Read a DG14 with OpenPACE (``libeac``, Debian ``libeac3``), a parser we did not write.

``python tests/chip/openpace_dg14.py DG14_FILE`` prints JSON: ``ok`` (OpenPACE's
``EAC_CTX_init_ef_cardaccess`` accepted the SecurityInfos), ``public_key`` (hex of the CA
public point OpenPACE decoded from ChipAuthenticationPublicKeyInfo, through
``CA_STEP2_get_eph_pubkey``, which hands out the key in the CA context) and ``text``
(``EAC_CTX_print_private``: the CA context's OID and version as OpenPACE understood them).
Run as its own process so that the system OpenSSL libeac links against never meets the one
inside ``cryptography``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
from pathlib import Path


class BufMem(ctypes.Structure):
    """OpenSSL's ``BUF_MEM``."""

    _fields_ = [("length", ctypes.c_size_t), ("data", ctypes.c_void_p),
                ("max", ctypes.c_size_t), ("flags", ctypes.c_ulong)]


def main(path: str) -> int:
    raw = Path(path).read_bytes()
    if raw[:1] == b"\x6e":  # strip DG14's tag 6E: OpenPACE reads the SecurityInfos SET
        length = raw[1]
        start = 2 if length < 0x80 else 2 + (length & 0x7F)
        raw = raw[start:]
    eac = ctypes.CDLL("libeac.so.3")
    crypto = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    eac.EAC_init()
    eac.EAC_CTX_new.restype = ctypes.c_void_p
    eac.EAC_CTX_init_ef_cardaccess.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
    eac.CA_STEP2_get_eph_pubkey.restype = ctypes.POINTER(BufMem)
    eac.CA_STEP2_get_eph_pubkey.argtypes = [ctypes.c_void_p]
    eac.EAC_CTX_print_private.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    eac.EAC_CTX_clear_free.argtypes = [ctypes.c_void_p]
    crypto.BIO_s_mem.restype = ctypes.c_void_p
    crypto.BIO_new.restype = ctypes.c_void_p
    crypto.BIO_new.argtypes = [ctypes.c_void_p]
    crypto.BIO_ctrl.restype = ctypes.c_long
    crypto.BIO_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    crypto.BIO_free.argtypes = [ctypes.c_void_p]

    ctx = eac.EAC_CTX_new()
    ok = eac.EAC_CTX_init_ef_cardaccess(raw, len(raw), ctx) == 1
    public_key = ""
    text = ""
    if ok:
        buf = eac.CA_STEP2_get_eph_pubkey(ctx)
        if buf:
            public_key = ctypes.string_at(buf.contents.data, buf.contents.length).hex()
        bio = crypto.BIO_new(crypto.BIO_s_mem())
        eac.EAC_CTX_print_private(bio, ctx, 0)
        pointer = ctypes.c_char_p()
        size = crypto.BIO_ctrl(bio, 3, 0, ctypes.byref(pointer))  # BIO_CTRL_INFO
        text = ctypes.string_at(pointer, size).decode("ascii", "replace")
        crypto.BIO_free(bio)
    eac.EAC_CTX_clear_free(ctx)
    print(json.dumps({"ok": ok, "public_key": public_key, "text": text}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
