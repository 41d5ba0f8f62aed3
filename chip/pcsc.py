"""PC/SC backend (pyscard): the only module of :mod:`chip` that imports :mod:`smartcard`.

Uses the low-level ``smartcard.scard`` API so that every PC/SC result code can be translated
into a :class:`~chip.errors.ChipError` family (``raise ... from``).
"""

from __future__ import annotations

import time

from smartcard import scard

from chip.errors import CardRemovedError, ReaderError, TransmitError

_NO_SERVICE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED,
               getattr(scard, "SCARD_E_NO_READERS_AVAILABLE", 0x8010002E)}
_REMOVED = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD,
            scard.SCARD_W_RESET_CARD, scard.SCARD_W_UNPOWERED_CARD,
            scard.SCARD_E_COMM_DATA_LOST if hasattr(scard, "SCARD_E_COMM_DATA_LOST") else 0,
            scard.SCARD_F_COMM_ERROR, scard.SCARD_E_NOT_TRANSACTED,
            scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_UNKNOWN_READER}


class PcscError(ReaderError):
    """A PC/SC call failed; ``code`` is the PC/SC result."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _describe(code: int) -> str:
    try:
        text = scard.SCardGetErrorMessage(code)
    except Exception:
        text = ""
    return f"{text.strip()} (0x{code & 0xFFFFFFFF:08X})"


def _check(code: int, what: str) -> None:
    if code == scard.SCARD_S_SUCCESS:
        return
    if code in _NO_SERVICE:
        raise PcscError(f"{what}: PC/SC service or readers unavailable: {_describe(code)}", code)
    if code in _REMOVED:
        raise CardRemovedError(f"{what}: card or reader gone: {_describe(code)}")
    raise PcscError(f"{what}: {_describe(code)}", code)


def _context() -> int:
    try:
        code, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    except Exception as exc:  # pyscard raises its own exceptions on some failures
        raise ReaderError(f"cannot reach pcscd: {exc}") from exc
    _check(code, "SCardEstablishContext")
    return int(ctx)


def list_readers() -> list[str]:
    """Names of the PC/SC readers; :class:`ReaderError` when pcscd is not running."""
    ctx = _context()
    try:
        code, readers = scard.SCardListReaders(ctx, [])
        if code in (scard.SCARD_E_NO_READERS_AVAILABLE,):
            return []
        _check(code, "SCardListReaders")
        return list(readers)
    finally:
        scard.SCardReleaseContext(ctx)


def card_present(reader: str) -> bool:
    """True when ``reader`` reports a card in its field."""
    ctx = _context()
    try:
        code, states = scard.SCardGetStatusChange(
            ctx, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if code != scard.SCARD_S_SUCCESS:
            return False
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT) and not bool(
            states[0][1] & scard.SCARD_STATE_MUTE)
    finally:
        scard.SCardReleaseContext(ctx)


def wait_for_card(reader: str, timeout: float = 5.0) -> bool:
    """Poll until a card is present in ``reader`` (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if card_present(reader):
                return True
        except ReaderError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


class PcscChannel:
    """An exclusive PC/SC connection to the card on one reader (a ``CardChannel``)."""

    def __init__(self, reader: str, *, exclusive: bool = True) -> None:
        self._reader = reader
        self._ctx = _context()
        self._card = 0
        try:
            code, readers = scard.SCardListReaders(self._ctx, [])
            if code == scard.SCARD_S_SUCCESS and reader not in readers:
                raise ReaderError(f"no reader named {reader!r} (have: {', '.join(readers)})")
            _check(code, "SCardListReaders")
            share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
            code, card, protocol = scard.SCardConnect(
                self._ctx, reader, share, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
            _check(code, f"connect to {reader!r}")
            self._card = card
            self._pci = (scard.SCARD_PCI_T1 if protocol == scard.SCARD_PROTOCOL_T1
                         else scard.SCARD_PCI_T0)
            self._protocol = protocol
            code, _name, _state, _proto, atr = scard.SCardStatus(card)
            _check(code, "SCardStatus")
            self._atr = bytes(atr)
        except BaseException:
            self.close()
            raise

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def reader_name(self) -> str:
        return self._reader

    def transmit(self, apdu: bytes) -> bytes:
        try:
            code, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        except Exception as exc:  # pyscard's SWIG layer raises on malformed buffers
            raise TransmitError(f"SCardTransmit failed: {exc}") from exc
        _check(code, "transmit")
        if len(response) < 2:
            # vpcd (and some readers) report success with an empty answer when the card's
            # link dies mid-exchange: the command's effect on the card is unknown.
            raise CardRemovedError(f"card link lost: {len(response)}-byte response")
        return bytes(response)

    def close(self) -> None:
        if self._card:
            scard.SCardDisconnect(self._card, scard.SCARD_RESET_CARD)
            self._card = 0
        if self._ctx:
            scard.SCardReleaseContext(self._ctx)
            self._ctx = 0

    def __enter__(self) -> PcscChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
