"""Indonesian mobile numbers in E.164 (``+628…``)."""

from __future__ import annotations

import re

from printsrv.errors import PrintSrvError


class InvalidPhone(PrintSrvError, ValueError):
    """A number that is not an Indonesian mobile number in any form we know."""


_SEPARATORS = re.compile(r"[\s\-().]")
#: Indonesian mobile numbers: 8 then 8 to 11 more digits (``08xx`` nationally).
_MOBILE = re.compile(r"8[1-9]\d{7,10}")


def normalise(raw: str) -> str:
    """``0812-3456-7890``, ``62812…``, ``+62 812…`` → ``+62812…``; raises :class:`InvalidPhone`."""
    digits = _SEPARATORS.sub("", raw or "")
    if digits.startswith("+"):
        if not digits.startswith("+62"):
            raise InvalidPhone(f"{_shown(raw)}: not an Indonesian number (+62)")
        national = digits[3:]
    elif digits.startswith("62"):
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        national = digits
    if not _MOBILE.fullmatch(national):
        raise InvalidPhone(f"{_shown(raw)}: not an Indonesian mobile number (+628…, 9–12 digits)")
    return "+62" + national


def _shown(raw: str) -> str:
    return repr(raw[:32])
