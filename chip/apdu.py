"""ISO/IEC 7816-4 command and response APDUs, instruction codes and the status-word table."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from chip import errors

MAX_SHORT_DATA = 255
MAX_EXTENDED_DATA = 65535
CLA_CHAINING = 0x10  # ISO/IEC 7816-4 §5.1.1: b5 of CLA, "command is not the last of a chain"
SW_LAST_OF_CHAIN_EXPECTED = 0x6883


class Ins(IntEnum):
    """Instruction bytes used by the personalization sequence and the simulator."""

    SELECT = 0xA4
    CREATE_FILE = 0xE0
    UPDATE_BINARY = 0xD6
    UPDATE_BINARY_ODD = 0xD7
    READ_BINARY = 0xB0
    READ_BINARY_ODD = 0xB1
    GET_DATA = 0xCA
    ACTIVATE_FILE = 0x44
    GET_RESPONSE = 0xC0
    INITIALIZE_UPDATE = 0x50
    EXTERNAL_AUTHENTICATE = 0x82
    HASH_FILE = 0x2A  # PERFORM SECURITY OPERATION: HASH, proprietary P1-P2 (see docs/chip.md)


class Sw(IntEnum):
    """Status words we produce or react to."""

    OK = 0x9000
    END_OF_FILE = 0x6282
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    CONDITIONS = 0x6985
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    NOT_ENOUGH_MEMORY = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    FILE_EXISTS = 0x6A89
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU; ``le`` is the expected response length (256/65536 mean "all")."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def needs_extended(self) -> bool:
        return self.extended or len(self.data) > MAX_SHORT_DATA or (self.le or 0) > 256

    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def lc_field(self) -> bytes:
        """Encoded Lc (empty when there is no data)."""
        if not self.data:
            return b""
        if self.needs_extended():
            return b"\x00" + len(self.data).to_bytes(2, "big")
        return bytes((len(self.data),))

    def le_field(self) -> bytes:
        if self.le is None:
            return b""
        if self.needs_extended():
            le = b"\x00\x00" if self.le >= 65536 else self.le.to_bytes(2, "big")
            return le if self.data else b"\x00" + le
        return b"\x00" if self.le >= 256 else bytes((self.le,))

    def encode(self) -> bytes:
        if len(self.data) > MAX_EXTENDED_DATA:
            raise errors.MalformedError(f"APDU data too long: {len(self.data)}")
        return self.header() + self.lc_field() + self.data + self.le_field()

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse the four ISO cases, short and extended; ``ValueError`` when malformed."""
        if len(raw) < 4:
            raise errors.MalformedError("APDU shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        if body[0] != 0:  # short with data
            lc = body[0]
            data = body[1 : 1 + lc]
            rest = body[1 + lc :]
            if len(data) != lc or len(rest) > 1:
                raise errors.MalformedError("bad short Lc")
            return cls(cla, ins, p1, p2, data, (rest[0] or 256) if rest else None)
        if len(body) == 3:  # extended, Le only
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536,
                       extended=True)
        lc = int.from_bytes(body[1:3], "big")
        data = body[3 : 3 + lc]
        rest = body[3 + lc :]
        if lc == 0 or len(data) != lc or len(rest) not in (0, 2):
            raise errors.MalformedError("bad extended Lc")
        le = (int.from_bytes(rest, "big") or 65536) if rest else None
        return cls(cla, ins, p1, p2, data, le, extended=True)


def chain(cmd: CommandApdu, piece: int) -> list[CommandApdu]:
    """ISO/IEC 7816-4 command chaining: ``cmd``'s data in pieces of at most ``piece`` bytes,
    every command but the last with CLA bit b5 (``10``) set; same INS, P1, P2. Under secure
    messaging each piece is wrapped on its own (the transport does that per command)."""
    if piece <= 0:
        raise errors.MalformedError("chain piece size must be positive")
    data = cmd.data
    parts = [data[i : i + piece] for i in range(0, len(data), piece)] or [b""]
    return [CommandApdu(cmd.cla | (CLA_CHAINING if i < len(parts) - 1 else 0), cmd.ins,
                        cmd.p1, cmd.p2, part, cmd.le if i == len(parts) - 1 else None)
            for i, part in enumerate(parts)]


class CommandChain:
    """The card's half of command chaining for one instruction: :meth:`feed` each command;
    it answers None while the chain goes on (the card replies 9000) and the whole command
    once the last link (CLA b5 clear) arrives."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._head: tuple[int, int, int] | None = None
        self._data = b""

    @property
    def pending(self) -> bool:
        return self._head is not None

    def reset(self) -> None:
        self._head, self._data = None, b""

    def feed(self, cmd: CommandApdu) -> CommandApdu | None:
        """None: more to come. :class:`~chip.errors.MalformedError` when the chain is broken
        (another INS/P1/P2 mid-chain) or grows past ``limit``; the chain is dropped then."""
        head = (cmd.ins, cmd.p1, cmd.p2)
        if self._head is not None and self._head != head:
            self.reset()
            raise errors.MalformedError("command chain interrupted")
        data = self._data + cmd.data
        if len(data) > self.limit:
            self.reset()
            raise errors.MalformedError("command chain too long")
        if cmd.cla & CLA_CHAINING:
            self._head, self._data = head, data
            return None
        self.reset()
        return CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, data, cmd.le,
                           extended=len(data) > MAX_SHORT_DATA)


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """Response data and status word."""

    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise errors.TransmitError(f"response too short ({len(raw)} bytes)")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


# One table from status word to (exception class, meaning), as pyscard's ISO7816_4ErrorChecker.
STATUS_WORDS: dict[int, tuple[type[errors.StatusWordError], str]] = {
    Sw.MEMORY_FAILURE: (errors.MemoryFailureError, "memory failure"),
    Sw.WRONG_LENGTH: (errors.WrongLengthError, "wrong length"),
    Sw.SECURITY_STATUS: (errors.SecurityStatusError, "security status not satisfied"),
    Sw.AUTH_METHOD_BLOCKED: (errors.SecurityStatusError, "authentication method blocked"),
    Sw.CONDITIONS: (errors.ConditionsNotSatisfiedError, "conditions of use not satisfied"),
    Sw.WRONG_DATA: (errors.WrongDataError, "wrong data"),
    Sw.FUNCTION_NOT_SUPPORTED: (errors.UnsupportedCommandError, "function not supported"),
    Sw.FILE_NOT_FOUND: (errors.FileMissingError, "file or application not found"),
    Sw.NOT_ENOUGH_MEMORY: (errors.NotEnoughMemoryError, "not enough memory"),
    Sw.INCORRECT_P1P2: (errors.WrongDataError, "incorrect P1-P2"),
    Sw.REFERENCED_DATA_NOT_FOUND: (errors.FileMissingError, "referenced data not found"),
    Sw.FILE_EXISTS: (errors.ConditionsNotSatisfiedError, "file already exists"),
    Sw.WRONG_P1P2: (errors.WrongDataError, "wrong P1-P2"),
    Sw.INS_NOT_SUPPORTED: (errors.UnsupportedCommandError, "instruction not supported"),
    Sw.CLA_NOT_SUPPORTED: (errors.UnsupportedCommandError, "class not supported"),
    Sw.NO_PRECISE_DIAGNOSIS: (errors.MemoryFailureError, "no precise diagnosis"),
}


def status_error(sw: int, context: str = "") -> errors.StatusWordError:
    """The exception for an error status word (ranges 6Cxx, 63Cx, 6Fxx included)."""
    cls: type[errors.StatusWordError]
    if sw in STATUS_WORDS:
        cls, meaning = STATUS_WORDS[sw]
    elif sw >> 8 == 0x6C:
        cls, meaning = errors.WrongLengthError, f"wrong Le, card offers {sw & 0xFF}"
    elif sw >> 8 == 0x6F:
        cls, meaning = errors.MemoryFailureError, "no precise diagnosis"
    elif sw >> 8 in (0x64, 0x65):
        cls, meaning = errors.MemoryFailureError, "execution error, memory changed"
    else:
        cls, meaning = errors.StatusWordError, "unexpected status"
    where = f"{context}: " if context else ""
    return cls(f"{where}SW {sw:04X} ({meaning})", sw=sw)


def is_success(sw: int) -> bool:
    """9000 and the warnings 62xx/63xx count as processed."""
    return sw == Sw.OK or sw >> 8 in (0x62, 0x63)
