"""Card operations shared by personalization and verification (select, read, card facts)."""

from __future__ import annotations

from dataclasses import dataclass

from chip.apdu import CommandApdu, Ins, Sw
from chip.errors import CardState, FileMissingError, MalformedError, StatusWordError, WrongCardError
from chip.lds import LDS_AID, Ef
from chip.tlv import find, parse
from chip.transport import Transport

LIFE_CYCLE_OPERATIONAL = 0x05


def historical_bytes(atr: bytes) -> bytes:
    """The historical bytes of an ATR (after TS, T0 and the interface bytes)."""
    if len(atr) < 2:
        return b""
    t0 = atr[1]
    k = t0 & 0x0F
    pos, y = 2, t0 >> 4
    while True:  # skip interface bytes
        td = None
        for bit in range(4):
            if y & (1 << bit):
                if bit == 3:
                    td = atr[pos] if pos < len(atr) else None
                pos += 1
        if td is None:
            break
        y = td >> 4
    return atr[pos : pos + k]


def compact_tlv(hist: bytes) -> list[tuple[int, bytes]]:
    """(tag, value) of the compact-TLV objects of historical bytes with category indicator
    ``80`` (ISO/IEC 7816-4 §8.1.1); raises ``ValueError`` when they are not well-formed."""
    if not hist or hist[0] != 0x80:
        raise MalformedError("historical bytes without category indicator 80")
    out, i = [], 1
    while i < len(hist):
        tag, length = hist[i] >> 4, hist[i] & 0x0F
        if tag == 0:
            raise MalformedError(f"compact-TLV tag 0 at offset {i}")
        if i + 1 + length > len(hist):
            raise MalformedError(f"compact-TLV tag {tag:X} claims {length} bytes, "
                             f"{len(hist) - i - 1} left")
        out.append((tag, hist[i + 1 : i + 1 + length]))
        i += 1 + length
    return out


def atr_extended_length(atr: bytes) -> bool:
    """True when the ATR's card capabilities (compact TLV tag 7x) announce extended Lc/Le."""
    try:
        objects = compact_tlv(historical_bytes(atr))
    except ValueError:
        return False
    return any(tag == 7 and len(value) >= 3 and bool(value[2] & 0x40) for tag, value in objects)


def atr_command_chaining(atr: bytes) -> bool:
    """True when the ATR's card capabilities (third software function byte, b8) announce
    command chaining (ISO/IEC 7816-4 §8.1.1.2.7); ICAO 9303-11 §9.3.2 lets a terminal chain
    other commands than PACE's GENERAL AUTHENTICATE only when the chip says so."""
    try:
        objects = compact_tlv(historical_bytes(atr))
    except ValueError:
        return False
    return any(tag == 7 and len(value) >= 3 and bool(value[2] & 0x80) for tag, value in objects)


@dataclass(frozen=True)
class CardFacts:
    """What the card says about itself before we write."""

    uid: bytes
    atr: bytes
    life_cycle: int
    used_bytes: int
    free_bytes: int | None
    extended_length: bool
    max_command_data: int
    max_response_data: int
    #: The card's serial from its CPLC (:func:`cplc_identity`), b"" when it has none
    card_identity: bytes = b""
    #: The ATR announces ISO 7816-4 command chaining (what a short-APDU card takes instead)
    command_chaining: bool = False

    @property
    def state(self) -> CardState:
        if self.life_cycle >= LIFE_CYCLE_OPERATIONAL:
            return CardState.LOCKED
        return CardState.PARTIAL if self.used_bytes else CardState.BLANK


def cplc_identity(cplc: bytes) -> bytes:
    """The card's identity for key diversification from its GlobalPlatform CPLC: IC
    fabricator (2) ‖ IC type (2) ‖ IC serial number (4) ‖ IC batch identifier (2), the same
    10 bytes GlobalPlatform cards return as key diversification data. Unlike the ISO 14443
    UID (random on many chips) it never changes. b"" for a short CPLC."""
    if len(cplc) < 18:
        return b""
    return cplc[0:4] + cplc[12:18]


def read_cplc(t: Transport) -> bytes:
    """GET DATA CPLC (``80 CA 9F 7F 00``): the 42-byte CPLC, b"" when the card has none."""
    try:
        resp = t.transmit(CommandApdu(0x80, Ins.GET_DATA, 0x9F, 0x7F, le=256),
                          context="GET DATA CPLC", secure=False)
    except StatusWordError:
        return b""
    return find(resp.data, 0x9F7F) or resp.data


def read_uid(t: Transport) -> bytes:
    """The chip UID through the PC/SC contactless pseudo-APDU ``FF CA 00 00 00``."""
    return t.transmit(CommandApdu(0xFF, Ins.GET_DATA, 0, 0, le=256), context="GET UID").data


def select_application(t: Transport) -> bytes:
    """SELECT the LDS application and return its FCP; :class:`WrongCardError` if absent."""
    try:
        resp = t.transmit(CommandApdu(0x00, Ins.SELECT, 0x04, 0x04, LDS_AID, le=256),
                          context="SELECT LDS application", secure=False)
    except (FileMissingError, StatusWordError) as exc:
        raise WrongCardError("no e-KTP LDS application on this card",
                             card_state=CardState.FOREIGN) from exc
    return find(resp.data, 0x62) or b""


def card_facts(t: Transport, atr: bytes) -> CardFacts:
    """UID, life cycle, used/free memory and buffer sizes (application selected)."""
    try:
        uid = read_uid(t)
    except StatusWordError as exc:
        raise WrongCardError("card does not report a UID", card_state=CardState.FOREIGN) from exc
    fcp = dict(parse(select_application(t)))
    identity = cplc_identity(read_cplc(t))
    life_cycle = fcp.get(0x8A, b"\x03")[0]
    used = int.from_bytes(fcp.get(0x81, b"\x00"), "big")
    free: int | None = None
    try:
        res = t.transmit(CommandApdu(0x80, Ins.GET_DATA, 0xFF, 0x21, le=256), secure=False)
        body = find(res.data, 0xFF21)
        free_raw = find(body, 0x82) if body else None
        free = int.from_bytes(free_raw, "big") if free_raw else None
    except StatusWordError:
        free = None
    ext = atr_extended_length(atr)
    max_cmd = max_resp = 255
    if ext:
        max_resp = 256
        try:
            res = t.transmit(CommandApdu(0x00, Ins.GET_DATA, 0x7F, 0x66, le=256), secure=False)
            values = [v for tag, v in parse(find(res.data, 0x7F66) or b"") if tag == 0x02]
            if len(values) >= 2:
                max_cmd = int.from_bytes(values[0], "big")
                max_resp = int.from_bytes(values[1], "big")
        except StatusWordError:
            ext = False
    return CardFacts(uid, atr, life_cycle, used, free, ext, max_cmd, max_resp, identity,
                     atr_command_chaining(atr))


def select_ef(t: Transport, ef: Ef, *, secure: bool = False) -> int:
    """SELECT an EF by FID and return its size from the FCP."""
    resp = t.transmit(CommandApdu(0x00, Ins.SELECT, 0x02, 0x04,
                                  ef.value.fid.to_bytes(2, "big"), le=256),
                      context=f"SELECT {ef.value.name}", secure=secure)
    size = find(find(resp.data, 0x62) or b"", 0x80)
    if size is None:
        raise StatusWordError(f"{ef.value.name}: FCP without size", sw=Sw.WRONG_DATA)
    return int.from_bytes(size, "big")


def read_ef(t: Transport, ef: Ef, facts: CardFacts, *, secure: bool = False) -> bytes:
    """Read a whole EF in the largest chunks the card returns."""
    size = select_ef(t, ef, secure=secure)
    out = bytearray()
    # Wrapped responses carry padding and an R-MAC: leave room for them.
    room = facts.max_response_data - (48 if secure else 0)
    while len(out) < size:
        want = min(room, size - len(out))
        offset = len(out)
        if offset < 0x8000:
            cmd = CommandApdu(0x00, Ins.READ_BINARY, offset >> 8, offset & 0xFF, le=want,
                              extended=facts.extended_length and want > 256)
            chunk = t.transmit(cmd, context=f"READ {ef.value.name}", secure=secure).data
        else:
            do54 = bytes((0x54, 3)) + offset.to_bytes(3, "big")
            cmd = CommandApdu(0x00, Ins.READ_BINARY_ODD, 0, 0, do54, le=min(want + 4, 65536),
                              extended=facts.extended_length)
            data = t.transmit(cmd, context=f"READ {ef.value.name}", secure=secure).data
            chunk = find(data, 0x53) or b""
        if not chunk:
            break
        out += chunk
    return bytes(out)
