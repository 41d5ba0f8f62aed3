"""Error root of :mod:`chip` and its families.

Every error carries ``card_state``: what the station may do with the card afterwards.
``BLANK`` means nothing was written (retry on the same card is allowed), ``PARTIAL`` means
files were written but the card is not locked (spoil), ``LOCKED`` means the card is
locked (after a good personalization, or already before we touched it), ``FOREIGN`` means it
is not one of our blanks (untouched), ``UNKNOWN`` means the link
died while a write or the lock was in flight (spoil unless a probe proves it blank).
"""

from __future__ import annotations

from enum import StrEnum


class CardState(StrEnum):
    """What is known about the card after an operation."""

    BLANK = "blank"
    PARTIAL = "partial"
    PERSONALIZED = "personalized"
    LOCKED = "locked"
    FOREIGN = "foreign"  # not one of our blanks; untouched
    UNKNOWN = "unknown"


class ChipError(Exception):
    """Root of every error raised by :mod:`chip`."""

    def __init__(self, message: str, *, card_state: CardState = CardState.UNKNOWN) -> None:
        super().__init__(message)
        self.card_state = card_state

    @property
    def retryable(self) -> bool:
        """True when the same card may be personalized again (nothing was written)."""
        return self.card_state is CardState.BLANK

    def __str__(self) -> str:
        return f"{super().__str__()} [card {self.card_state.value}]"


class ReaderError(ChipError):
    """PC/SC service, reader or card not available (no card, card removed, pcscd gone)."""


class CardRemovedError(ReaderError):
    """The card left the field or the link was torn during an exchange."""


class TransmitError(ChipError):
    """An APDU could not be exchanged (transport failure, malformed response)."""


class StatusWordError(ChipError):
    """The card answered with an error status word; ``sw`` holds it."""

    def __init__(
        self, message: str, *, sw: int, card_state: CardState = CardState.UNKNOWN
    ) -> None:
        super().__init__(message, card_state=card_state)
        self.sw = sw


class WrongLengthError(StatusWordError):
    """6700 / 6Cxx: the card refused the length of a command or response."""


class SecurityStatusError(StatusWordError):
    """6982: secure channel missing or broken."""


class ConditionsNotSatisfiedError(StatusWordError):
    """6985: the card's life cycle forbids the command (e.g. it is locked)."""


class WrongDataError(StatusWordError):
    """6A80 / 6A86 / 6B00: malformed command data or parameters."""


class FileMissingError(StatusWordError):
    """6A82 / 6A88: file or application not found."""


class NotEnoughMemoryError(StatusWordError):
    """6A84: the card's memory is full."""


class MemoryFailureError(StatusWordError):
    """6581 / 6Fxx: the card could not write its memory."""


class UnsupportedCommandError(StatusWordError):
    """6D00 / 6E00: instruction or class not supported."""


class SecureChannelError(ChipError):
    """SCP03 authentication failed, or a MAC did not verify (session aborted)."""


class WrongCardError(ChipError):
    """The card in the reader is not an e-KTP blank (no LDS application, unknown ATR)."""


class CardLockedError(ChipError):
    """The card is already personalized and locked: it can never be written again."""


class NotBlankError(ChipError):
    """The card already holds files but is not locked (an earlier, interrupted attempt)."""


class CapacityError(ChipError):
    """The data does not fit the card's free memory (checked before any write)."""


class DataError(ChipError):
    """The holder data cannot be encoded (bad date, MRZ, image)."""


class HostError(ChipError):
    """Something on the host side failed mid-personalization (key token, encoder, a bug);
    wraps the original exception so the card state is still reported."""


class VerificationError(ChipError):
    """Read-back, hash, signature or chain check failed."""


class MalformedError(ChipError, ValueError):
    """Bytes that should hold a chip structure (an APDU, a TLV object, an LDS file, the SOD, a
    face record) do not, or a value does not fit its field. Also a :class:`ValueError`, which
    the parsers' callers catch; says nothing about a card unless raised during a write."""

    def __str__(self) -> str:
        return Exception.__str__(self)
