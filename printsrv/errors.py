"""The error root of the application and its families.

Only the edges (CLI, web error handlers, the station's per-card unit of work) turn these into
messages for people.
"""

from __future__ import annotations

from collections.abc import Sequence


class PrintSrvError(Exception):
    """Root of every error raised by :mod:`printsrv`."""

    retryable: bool = False


class InvalidValue(PrintSrvError, ValueError):
    """A value is malformed or out of range (a month, a region code, a password, an audit
    tag). Also a :class:`ValueError`, which the callers of the parsers catch."""


class ConfigError(PrintSrvError):
    """The configuration is invalid (unknown key, wrong type, missing file)."""


class KeyStoreError(PrintSrvError):
    """The PKCS#11 token or a key in it is missing or unusable."""


class IntakeError(PrintSrvError):
    """A batch cannot be imported; ``problems`` lists every reason found."""

    def __init__(self, message: str, problems: Sequence[object] | None = None) -> None:
        super().__init__(message)
        self.problems: list[object] = list(problems or [])


class NotFound(PrintSrvError):
    """A requested object (record, batch, office) does not exist."""


class StateError(PrintSrvError):
    """An action is not allowed in the object's current state."""
