"""Checks on a card document before a blank is risked on it."""

from __future__ import annotations

import re
from typing import Final

from printers.errors import JobRejectedError

_PAGE: Final = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def count_pages(data: bytes) -> int | None:
    """Pages of a PDF whose page objects are plain (``None``: not a PDF or not countable).

    PDFs that keep page objects in compressed object streams are not counted.
    """
    if not data.startswith(b"%PDF-"):
        return None
    found = len(_PAGE.findall(data))
    return found or None


def check_card_document(data: bytes, *, duplex: bool, printer: str) -> None:
    """Refuse what would waste blanks: not a PDF, or more pages than card sides.

    A two-page PDF sent one-sided prints two cards. Raises :class:`JobRejectedError`
    (no card consumed).
    """
    if not data.startswith(b"%PDF-"):
        raise JobRejectedError(f"{printer}: document is not a PDF", card_consumed=False)
    pages = count_pages(data)
    sides = 2 if duplex else 1
    if pages is not None and pages > sides:
        raise JobRejectedError(
            f"{printer}: document has {pages} pages but a {'duplex' if duplex else 'simplex'} "
            f"card has {sides} side(s)",
            card_consumed=False,
        )
