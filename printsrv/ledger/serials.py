"""Blank serial numbers: a prefix (carton/series, e.g. ``KTP2026-``) and a zero-padded number.

A range ``first..last`` shares the prefix and the width of the number; blanks are ordered by
``(prefix, number)`` — the hopper is loaded and used in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from printsrv.ledger.errors import LedgerError

#: Default serial form: an upper-case prefix ending in ``-`` (or none) and 4–12 digits.
SERIAL_PATTERN = re.compile(r"^(?P<prefix>[A-Z0-9]{0,20}-?)(?P<number>[0-9]{4,12})$")
#: The most blanks one receive/transfer/load command may name (a carton holds far fewer).
MAX_RANGE = 100_000


@dataclass(frozen=True, order=True)
class Serial:
    prefix: str
    number: int
    width: int

    def __str__(self) -> str:
        return f"{self.prefix}{self.number:0{self.width}d}"


def parse_serial(text: str) -> Serial:
    """Parse ``text``; :class:`LedgerError` when it is not a blank serial."""
    match = SERIAL_PATTERN.match(text.strip().upper())
    if not match:
        raise LedgerError(
            f"{text!r} is not a blank serial (expected e.g. KTP2026-00000001)", serial=text
        )
    digits = match["number"]
    return Serial(match["prefix"], int(digits), len(digits))


def serial_range(first: str, last: str) -> list[str]:
    """Every serial from ``first`` to ``last`` inclusive, in order."""
    a, b = parse_serial(first), parse_serial(last)
    if (a.prefix, a.width) != (b.prefix, b.width):
        raise LedgerError(f"{first} and {last} are not of the same series", serial=last)
    if b.number < a.number:
        raise LedgerError(f"range {first}..{last} is reversed", serial=last)
    if b.number - a.number + 1 > MAX_RANGE:
        raise LedgerError(f"range {first}..{last} is larger than {MAX_RANGE} blanks", serial=last)
    return list(iter_range(a, b))


def iter_range(a: Serial, b: Serial) -> Iterator[str]:
    for n in range(a.number, b.number + 1):
        yield str(Serial(a.prefix, n, a.width))
