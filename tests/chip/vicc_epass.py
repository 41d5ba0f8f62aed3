"""Run vsmartcard's ePass emulator (Debian ``vsmartcard-vpicc``) on vpcd with a known MRZ.

Run with Debian's own interpreter, the one the package is built for::

    /usr/bin/python3 tests/chip/vicc_epass.py --port 35963 --dg1 DG1 [--sod SOD]

The card's BAC and secure messaging are vicc's (``virtualsmartcard.cards.ePass.PassportSAM``
and ``ePass_SE`` on ``Iso7816OS``): none of our code answers an APDU. Only the start-up works
around four defects of Debian's 3.3+dfsg-2 package, each of which stops ``vicc -t ePass``
before it answers a single APDU (see ``VICC_DEFECTS`` in test_chip_vicc_realstack.py):

1. its modules lie in ``/usr/lib/python3/site-packages/virtualsmartcard``, which is not on
   Debian's ``sys.path``;
2. ``CryptoUtils`` imports PyCrypto's ``Crypto`` (not in Debian 12) and falls back to the
   Python 2 module ``sha``; Debian's ``python3-pycryptodome`` is the same API under the name
   ``Cryptodome``, so ``Crypto`` is made an alias of it;
3. the ePass card generator is Python 2 code (``raw_input``, ``str`` file names and AIDs,
   ``PIL`` not a dependency, ``TLVutils.pack`` joins ints), so the file system is built here
   with vicc's own classes, laid out as its generator does (application DF ``A0000002471001``,
   EF.COM, EF.DG1; its EF.COM's tag list ``(0x5C, 2, b"6175")`` is fixed to DG1's tag 61);
4. ``-f FILE`` (a saved card) is parsed and ignored, so a card cannot be handed over that way.

This file is not a test; the tests start it as a process, like a card put on a reader.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys

DEBIAN_MODULES = "/usr/lib/python3/site-packages/virtualsmartcard"
_CRYPTO = ("Cipher", "Cipher.DES3", "Cipher.DES", "Cipher.AES", "Cipher.ARC4", "Hash",
           "Hash.HMAC", "Hash.SHA", "Hash.MD5")

#: Python 2 leftovers in Debian's modules on the BAC + secure-messaging path, each a
#: ``str`` where Python 3 needs ``bytes`` (upstream fixed them after 3.3, e.g. 04642a3 "fixed
#: more Python 3 issues"). Applied to the source as it is imported; a replacement that no longer
#: matches stops the card, so a changed package is noticed, not silently half-patched.
PY3_FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "virtualsmartcard.TLVutils": (
        ("        result = result + t\n        result = result + l\n"
         "        result = result + value\n\n    return b\"\".join(result)",
         "        result = result + t\n        result = result + l\n"
         "        result = result + value\n\n    return bytes(result)"),
    ),
    "virtualsmartcard.CryptoUtils": (
        ("        result.append(chr(op(ord(string1[i]), ord(string2[i]))))\n"
         "    return \"\".join(result)",
         "        result.append(op(string1[i], string2[i]))\n    return bytes(result)"),
    ),
    "virtualsmartcard.SEutils": (
        ('return_data = ["", ]', 'return_data = [b"", ]'),
        ('            to_authenticate = ""', '            to_authenticate = b""'),
        ('data="".join(return_data)', 'data=b"".join(return_data)'),
        ('        return_data = ""\n', '        return_data = b""\n'),
        ('if result != "":', 'if result != b"":'),
        ('encrypted = "\\x01" + encrypted', 'encrypted = b"\\x01" + encrypted'),
        # upstream still has this one: value[0] of bytes is an int, so every command with a
        # DO'87' (SELECT of an EF under BAC) answers 6988
        ("padding_indicator = stringtoint(value[0])",
         "padding_indicator = stringtoint(value[0:1])"),
    ),
    "virtualsmartcard.utils": (
        ('self.data = ""', 'self.data = b""'),
    ),
}


class _Py3FixLoader(importlib.machinery.SourceFileLoader):
    def get_data(self, path: str) -> bytes:
        if not path.endswith(".py"):
            raise OSError("no byte code: the source is patched")  # always compile the source
        source = super().get_data(path).decode("utf-8")
        for old, new in PY3_FIXES[self.name]:
            if old not in source:
                raise ImportError(f"{self.name}: Debian's source changed, fix not applied: "
                                  f"{old!r}")
            source = source.replace(old, new)
        return source.encode("utf-8")


class _Py3FixFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object, target: object = None) -> object:
        if name not in PY3_FIXES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)  # type: ignore[arg-type]
        if spec is None or spec.origin is None:
            return None
        return importlib.util.spec_from_file_location(
            name, spec.origin, loader=_Py3FixLoader(name, spec.origin))


def _debian_vicc() -> None:
    """Make Debian's vicc modules importable and run on Python 3 (defects 1 to 3)."""
    sys.dont_write_bytecode = True
    sys.path.insert(0, DEBIAN_MODULES)
    sys.meta_path.insert(0, _Py3FixFinder())
    sys.modules["Crypto"] = importlib.import_module("Cryptodome")
    for name in _CRYPTO:
        sys.modules[f"Crypto.{name}"] = importlib.import_module(f"Cryptodome.{name}")


def _tlv(tag: int, value: bytes) -> bytes:
    """BER-TLV (vicc's ``TLVutils.pack`` ends in ``b"".join(bytes)``: TypeError on Python 3)."""
    size = len(value)
    length = bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")
    return tag.to_bytes(2 if tag > 0xFF else 1, "big") + length + value


def build_card(dg1: bytes, sod: bytes | None) -> tuple[object, object]:
    """vicc's ePass file system and SAM, as ``CardGenerator.__generate_ePass`` lays them out."""
    from virtualsmartcard.cards.ePass import PassportSAM  # type: ignore[import-not-found]
    from virtualsmartcard.SmartcardFilesystem import (  # type: ignore[import-not-found]
        DF,
        MF,
        TransparentStructureEF,
    )

    mf = MF()
    df = DF(parent=mf, fid=4, dfname=b"\xa0\x00\x00\x02G\x10\x01", bertlv_data=[])
    com = _tlv(0x60, _tlv(0x5F01, b"0107") + _tlv(0x5F36, b"040000") + _tlv(0x5C, b"\x61"))
    df.append(TransparentStructureEF(parent=df, fid=0x011E, filedescriptor=0, data=com))
    df.append(TransparentStructureEF(parent=df, fid=0x0101, filedescriptor=0, data=dg1))
    if sod is not None:  # vicc's generator puts an empty EF.SOD at 010D; ICAO's FID is 011D
        df.append(TransparentStructureEF(parent=df, fid=0x011D, filedescriptor=0, data=sod))
    mf.append(df)
    return mf, PassportSAM(mf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=35963)
    parser.add_argument("--dg1", required=True, help="EF.DG1 (61 5F1F MRZ), a TD3 MRZ")
    parser.add_argument("--sod", help="EF.SOD to put at 011D")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    _debian_vicc()
    from virtualsmartcard import VirtualSmartcard  # type: ignore[import-not-found]

    with open(args.dg1, "rb") as fh:
        dg1 = fh.read()
    sod = None
    if args.sod:
        with open(args.sod, "rb") as fh:
            sod = fh.read()
    mf, sam = build_card(dg1, sod)
    # The generator's interactive ePass path is bypassed: getCard returns our card.
    VirtualSmartcard.CardGenerator.getCard = lambda self: (mf, sam)
    vicc = VirtualSmartcard.VirtualICC(
        None, "ePass", "localhost", args.port,
        logginglevel=logging.DEBUG if args.verbose else logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        vicc.run()


if __name__ == "__main__":
    main()
