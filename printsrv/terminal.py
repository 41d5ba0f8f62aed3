"""Plain-text output for the terminal: aligned tables and ``key: value`` blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "—"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of one kind as an aligned table with a header line (``—`` for a missing value)."""
    if not rows:
        return "(none)"
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def record(data: Mapping[str, Any]) -> str:
    """A ``key: value`` block; list values as indented tables under their key."""
    width = max((len(k) for k, v in data.items() if not _is_rows(v)), default=0)
    out: list[str] = []
    for key, value in data.items():
        if _is_rows(value):
            out.append(f"\n{key}:")
            out.extend("  " + line for line in table(value).splitlines())
        else:
            out.append(f"{key.ljust(width)}  {_cell(value)}")
    return "\n".join(out)


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)
