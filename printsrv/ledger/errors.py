"""Ledger errors."""

from __future__ import annotations

from printsrv.errors import StateError


class LedgerError(StateError):
    """A ledger action is not allowed (wrong state, unknown serial, missing approval).

    ``serial`` names the blank concerned when there is one.
    """

    def __init__(self, message: str, *, serial: str | None = None) -> None:
        super().__init__(message)
        self.serial = serial
