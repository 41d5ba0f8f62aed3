"""Fitting text into a box: shrink down to the minimum size, then wrap to the allowed lines.

Nothing is ever truncated: a value that fits in no allowed way is refused by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from printsrv.layout.fonts import MM_PER_PT, FontFace
from printsrv.layout.template import Box

SIZE_STEP_PT = 0.25
#: Cap height of upper-case text relative to the size, used to centre a line in its slot.
CAP_HEIGHT = 0.72


@dataclass(frozen=True)
class FittedLine:
    """One line of text placed on the card: its box (mm, top-left origin) and baseline."""

    text: str
    box: Box
    baseline_y: float


@dataclass(frozen=True)
class FittedText:
    size: float  # pt
    lines: tuple[FittedLine, ...]


def _wrap(words: list[str], widths: list[float], space: float, limit: float) -> list[list[str]]:
    """Greedy wrap of ``words`` (widths in em) at ``limit`` em; a long word gets its own line."""
    lines: list[list[str]] = []
    current: list[str] = []
    used = 0.0
    for word, width in zip(words, widths, strict=True):
        if current and used + space + width <= limit:
            current.append(word)
            used += space + width
        else:
            if current:
                lines.append(current)
            current, used = [word], width
    if current:
        lines.append(current)
    return lines


def _sizes(style_size: float, min_size: float) -> list[float]:
    """Sizes from ``style_size`` down to ``min_size`` on the size grid; computed from the step
    count (not by repeated subtraction) so float drift never yields a size below the minimum."""
    sizes: list[float] = []
    steps = 0
    while (size := style_size - steps * SIZE_STEP_PT) >= min_size - 1e-9:
        sizes.append(max(size, min_size))
        steps += 1
    if not sizes or sizes[-1] > min_size:
        sizes.append(min_size)
    return sizes


#: Distinct (text, font, box, style) fittings kept per process: labels and the common values
#: (religion, status, occupation, dates) repeat on most cards of a batch.
FIT_CACHE_SIZE = 8192


@lru_cache(maxsize=FIT_CACHE_SIZE)
def fit_text(
    text: str, face: FontFace, box: Box, size: float, min_size: float, leading: float,
    max_lines: int, align: str,
) -> FittedText | None:  # fmt: skip
    """Place ``text`` in ``box``, or return None when it cannot fit.

    First one line at the largest size from ``size`` down to ``min_size``; then 2..``max_lines``
    lines, each again from the largest size down. Lines are ``size * leading`` high, stacked from
    the top of the box; words are never broken. The result is immutable and cached per
    argument tuple (the same text in the same box fits the same way).
    """
    words = text.split()
    if not words:
        return FittedText(size, ())
    widths = [face.width_em(w) for w in words]
    space = face.width_em(" ")
    full = sum(widths) + space * (len(words) - 1)
    box_w_pt = box.w / MM_PER_PT
    box_h_pt = box.h / MM_PER_PT
    chosen: tuple[float, list[list[str]]] | None = None
    # One line: the size is solved directly, then rounded down to the size grid.
    fit_size = min(size, box_w_pt / full, box_h_pt / leading)
    if fit_size >= min_size - 1e-9:
        steps = int((size - fit_size) / SIZE_STEP_PT + 0.999999)
        snapped = max(min_size, size - steps * SIZE_STEP_PT)
        chosen = (snapped, [words])
    else:
        for n in range(2, max_lines + 1):
            for s in _sizes(size, min_size):
                if n * s * leading > box_h_pt + 1e-9:
                    continue
                wrapped = _wrap(words, widths, space, box_w_pt / s)
                if len(wrapped) <= n and all(
                    face.width_em(" ".join(line)) * s <= box_w_pt + 1e-9 for line in wrapped
                ):
                    chosen = (s, wrapped)
                    break
            if chosen:
                break
    if chosen is None:
        return None
    s, wrapped = chosen
    line_h = s * leading * MM_PER_PT
    placed = []
    for i, line_words in enumerate(wrapped):
        line = " ".join(line_words)
        w = face.width_em(line) * s * MM_PER_PT
        if align == "center":
            x = box.x + (box.w - w) / 2
        elif align == "right":
            x = box.x + box.w - w
        else:
            x = box.x
        top = box.y + i * line_h
        baseline = top + (line_h + CAP_HEIGHT * s * MM_PER_PT) / 2
        placed.append(FittedLine(line, Box(x, top, w, line_h), baseline))
    return FittedText(s, tuple(placed))
