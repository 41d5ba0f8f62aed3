"""BER-TLV encoding (ISO/IEC 7816-4 / ICAO 9303-10): tags up to 3 bytes, definite lengths."""

from __future__ import annotations

from collections.abc import Iterator

from chip.errors import MalformedError


def encode_tag(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(body) > 4:
        raise MalformedError(f"length too large: {n}")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, value: bytes) -> bytes:
    """One TLV object."""
    return encode_tag(tag) + encode_length(len(value)) + value


def is_constructed(tag: int) -> bool:
    first = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")[0]
    return bool(first & 0x20)


def read_tag(buf: bytes, pos: int) -> tuple[int, int]:
    """Tag at ``pos`` and the position after it; ``ValueError`` when truncated."""
    if pos >= len(buf):
        raise MalformedError("truncated tag")
    first = buf[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(buf):
                raise MalformedError("truncated tag")
            b = buf[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
            if tag > 0xFFFFFF:
                raise MalformedError("tag too long")
    return tag, pos


def read_length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise MalformedError("truncated length")
    first = buf[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    n = first & 0x7F
    if n == 0 or n > 4 or pos + n > len(buf):
        raise MalformedError("bad length")
    return int.from_bytes(buf[pos : pos + n], "big"), pos + n


def read_header(buf: bytes) -> tuple[int, int, int]:
    """(tag, header size, value length) of the TLV at the start of ``buf`` (may be partial)."""
    tag, pos = read_tag(buf, 0)
    length, pos = read_length(buf, pos)
    return tag, pos, length


def iter_tlv(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """Iterate the (tag, value) pairs at one level; ``ValueError`` on malformed input."""
    pos = 0
    while pos < len(buf):
        tag, pos = read_tag(buf, pos)
        length, pos = read_length(buf, pos)
        if pos + length > len(buf):
            raise MalformedError("value runs past the end")
        yield tag, buf[pos : pos + length]
        pos += length


def parse(buf: bytes) -> list[tuple[int, bytes]]:
    return list(iter_tlv(buf))


def find(buf: bytes, tag: int) -> bytes | None:
    """Value of the first ``tag`` at this level, or None."""
    for t, v in iter_tlv(buf):
        if t == tag:
            return v
    return None


def unwrap(buf: bytes, tag: int) -> bytes:
    """Value of a single TLV that must have ``tag`` and fill ``buf`` exactly."""
    items = parse(buf)
    if len(items) != 1 or items[0][0] != tag:
        raise MalformedError(f"expected one {tag:X} object")
    return items[0][1]
