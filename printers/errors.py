"""Errors raised by :mod:`printers`: one root, three families.

Every error says whether the blank card was consumed (``True``: the card left the hopper and is
spoiled or must be inspected; ``False``: no card was fed; ``None``: unknown, an operator must look)
and whether sending the same card again may succeed once the cause is cleared (``retryable``).
Errors raised after a job was submitted carry the :class:`~printers.api.PrintOutcome`.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from printers.api import PrintOutcome


class _Default(enum.Enum):
    DEFAULT = enum.auto()


_DEFAULT: Final = _Default.DEFAULT


class PrinterError(Exception):
    """Root of every error raised by :mod:`printers`."""

    card_consumed: bool | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        card_consumed: bool | _Default | None = _DEFAULT,
        retryable: bool | _Default = _DEFAULT,
        outcome: PrintOutcome | None = None,
    ) -> None:
        """Override the class defaults for ``card_consumed``/``retryable`` where known."""
        super().__init__(message)
        if card_consumed is not _DEFAULT:
            self.card_consumed = card_consumed
        if retryable is not _DEFAULT:
            self.retryable = retryable
        self.outcome = outcome


class ProfileError(PrinterError):
    """A printer profile file is invalid (unknown key, wrong type, missing value)."""

    card_consumed: bool | None = False


# -- unavailable ---------------------------------------------------------------------------------


class PrinterUnavailableError(PrinterError):
    """The print system or the printer cannot take a card now (no card was fed unless stated)."""

    card_consumed: bool | None = False
    retryable = True


class PrintServerUnavailableError(PrinterUnavailableError):
    """The CUPS scheduler does not answer, or the queue does not exist."""


class QueueRejectingError(PrinterUnavailableError):
    """The queue refuses new jobs (``cupsreject``) or is stopped (``cupsdisable``)."""


class PrinterGoneError(PrinterUnavailableError):
    """The printer went away; if a job was under way its card's fate is unknown."""

    card_consumed: bool | None = None


# -- media ---------------------------------------------------------------------------------------


class MediaError(PrinterError):
    """The printer reported a card, ribbon or cover fault; an operator must act."""

    retryable = True


class MediaJamError(MediaError):
    """A card jammed: it left the hopper and is spoiled."""

    card_consumed: bool | None = True


class RibbonOutError(MediaError):
    """The ribbon (or retransfer film) is used up; the printer checks this before feeding."""

    card_consumed: bool | None = False


class CoverOpenError(MediaError):
    """A cover is open; the printer does not feed a card."""

    card_consumed: bool | None = False


class MediaEmptyError(MediaError):
    """The input hopper is empty."""

    card_consumed: bool | None = False


# -- job failed ----------------------------------------------------------------------------------


class JobFailedError(PrinterError):
    """The job ended (or timed out) without a printed card and without a recognised reason."""

    card_consumed: bool | None = None
    retryable = True


class JobRejectedError(JobFailedError):
    """The print system refused the job (options, format, media); no card was fed."""

    card_consumed: bool | None = False
    retryable = False


class ControlError(PrinterError, ValueError):
    """A control request is invalid (an unknown fault name for the virtual printer); no card
    was fed. Also a :class:`ValueError`, which callers of the control functions catch."""

    card_consumed: bool | None = False
