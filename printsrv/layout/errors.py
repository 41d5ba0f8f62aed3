"""Errors of the card-face layout: a bad template, or a record that cannot be rendered."""

from __future__ import annotations

from pathlib import Path

from printsrv.errors import PrintSrvError


class TemplateError(PrintSrvError):
    """A template file is invalid; ``path``, ``line`` and ``key`` locate the mistake."""

    def __init__(self, path: Path, line: int | None, key: str, reason: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {reason}")
        self.path, self.line, self.key, self.reason = path, line, key, reason


class RenderError(PrintSrvError):
    """A record cannot be put on the card; ``field`` names the record field at fault.

    Raised for a value that does not fit its box even at the minimum size and allowed lines,
    a missing field, or an unusable photo/signature (``field`` is then ``photo``/``signature``).
    The record should go to a supervisor; retrying does not help.
    """

    def __init__(self, field: str, reason: str, element: str | None = None) -> None:
        where = f" (element {element!r})" if element and element != field else ""
        super().__init__(f"field {field}{where}: {reason}")
        self.field, self.reason, self.element = field, reason, element
