"""JSON as a batch may carry it, and nothing more: objects with unique keys, integers of at
most 18 digits, nesting at most 32 deep. A batch that needs more is hostile or broken, and is
refused with the reason, never with a traceback (``RecursionError`` on 200,000 brackets, the
interpreter's 4,300-digit guard, or the last of two equal keys silently winning)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from json.decoder import scanstring  # type: ignore[attr-defined]
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


@contextmanager
def _refusals(text: str) -> Iterator[None]:
    """Check ``text``'s nesting first, then turn the decoder's errors into
    :class:`StrictJsonError` (what both parsers here refuse, worded once)."""
    if text.count("[") + text.count("{") > MAX_DEPTH:  # only then is a scan worth it
        _depth_ok(text)
    try:
        yield
    except StrictJsonError:
        raise
    except RecursionError as exc:  # pragma: no cover - the depth scan comes first
        raise StrictJsonError(f"nested deeper than {MAX_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"malformed JSON: {exc.msg} at column {exc.colno}") from exc


def loads(text: str) -> Any:
    """Parse ``text``; :class:`StrictJsonError` (a ``ValueError``) says what is refused."""
    with _refusals(text):
        return json.loads(text, object_pairs_hook=_pairs, parse_int=_int)


class Streamed:
    """What :func:`loads_streaming` leaves in place of the object it streamed."""

    def __init__(self, count: int) -> None:
        self.count = count


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_int=_int)


def _ws(text: str, at: int) -> int:
    match = _WS.match(text, at)
    return match.end() if match else at


def _expect(text: str, at: int, char: str, what: str) -> None:
    if text[at:at + 1] != char:
        raise json.JSONDecodeError(f"Expecting {what}", text, at)


def loads_streaming(
    text: str, stream_key: str, sink: Callable[[list[tuple[str, Any]]], None],
    batch: int = 10_000,
) -> Any:
    """:func:`loads`, except that the object under the top-level key ``stream_key`` is never
    built: its members go to ``sink`` in lists of up to ``batch`` (key, value) pairs, each
    value parsed strictly, and :class:`Streamed` stands in its place. ``sink`` checks that
    its keys are unique (it holds them), raising :class:`StrictJsonError`."""
    start = _ws(text, 0)
    if text[start:start + 1] != "{":
        return loads(text)
    with _refusals(text):
        out: dict[str, Any] = {}
        end = _object(text, start, lambda key, at: _top_value(
            text, key, at, out, stream_key, sink, batch))
        end = _ws(text, end)
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
        return out


def _object(text: str, at: int, value: Callable[[str, int], int]) -> int:
    """Walk the object that starts at ``at``: ``value(key, position)`` parses each member's
    value and gives the position after it. Returns the position after the closing brace."""
    at = _ws(text, at + 1)
    if text[at:at + 1] == "}":
        return at + 1
    while True:
        _expect(text, at, '"', "property name enclosed in double quotes")
        key, at = scanstring(text, at + 1, True)
        at = _ws(text, at)
        _expect(text, at, ":", "':' delimiter")
        at = _ws(text, value(key, _ws(text, at + 1)))
        if text[at:at + 1] == ",":
            at = _ws(text, at + 1)
            continue
        _expect(text, at, "}", "',' delimiter")
        return at + 1


def _top_value(text: str, key: str, at: int, out: dict[str, Any], stream_key: str,
               sink: Callable[[list[tuple[str, Any]]], None], batch: int) -> int:
    if key in out:
        raise StrictJsonError(f"duplicate key {key[:40]!r}")
    if key != stream_key or text[at:at + 1] != "{":
        out[key], end = _DECODER.raw_decode(text, at)
        return int(end)
    pairs: list[tuple[str, Any]] = []
    count = 0

    def member(name: str, where: int) -> int:
        nonlocal pairs, count
        if text[where:where + 1] == '"':
            value, end = scanstring(text, where + 1, True)
        else:
            value, end = _DECODER.raw_decode(text, where)
        pairs.append((name, value))
        count += 1
        if len(pairs) >= batch:
            sink(pairs)
            pairs = []
        return int(end)

    end = _object(text, at, member)
    if pairs:
        sink(pairs)
    out[key] = Streamed(count)
    return end
