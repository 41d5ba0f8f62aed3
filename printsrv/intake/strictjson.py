"""JSON as a batch may carry it, and nothing more: objects with unique keys, integers of at
most 18 digits, nesting at most 32 deep. A batch that needs more is hostile or broken, and is
refused with the reason, never with a traceback (``RecursionError`` on 200,000 brackets, the
interpreter's 4,300-digit guard, or the last of two equal keys silently winning)."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
MAX_INT_DIGITS = 18


class StrictJsonError(ValueError):
    """Why a JSON text is refused."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise StrictJsonError(f"integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _depth_ok(text: str) -> None:
    """Refuse deep nesting before parsing (the parser would recurse once per bracket)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise StrictJsonError(f"nested deeper than {MAX_DEPTH} levels")
        elif ch in "]}":
            depth -= 1


def loads(text: str) -> Any:
    """Parse ``text``; :class:`StrictJsonError` (a ``ValueError``) says what is refused."""
    if text.count("[") + text.count("{") > MAX_DEPTH:  # only then is a scan worth it
        _depth_ok(text)
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_int=_int)
    except StrictJsonError:
        raise
    except RecursionError as exc:  # pragma: no cover - the depth scan comes first
        raise StrictJsonError(f"nested deeper than {MAX_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"malformed JSON: {exc.msg} at column {exc.colno}") from exc
