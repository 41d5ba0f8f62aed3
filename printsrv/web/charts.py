"""Charts as SVG drawn on the server: no script and no CDN (offices may be offline).

Each function takes plain numbers and labels (already in the reader's language) and returns
markup to put in a page; every text in it is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

ISSUED_COLOUR = "#0b3d91"
SPOILED_COLOUR = "#c0392b"
THRESHOLD_COLOUR = "#e67e22"


def _svg(width: int, height: int, body: list[str], title: str, css: str = "chart") -> Markup:
    return Markup(
        f'<svg class="{css}" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: object, *, anchor: str = "start", size: int = 10,
          cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{klass}>'
            f"{escape(str(text))}</text>")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10ⁿ)."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return float(m * step)
    return float(10 * step)


def daily_cards(days: Sequence[tuple[date, int, int]], *, title: str, issued_label: str,
                spoiled_label: str) -> Markup:
    """Cards issued and spoiled per day: a stacked bar per ``(day, issued, spoiled)``."""
    width, height, left, bottom, top = 640, 200, 36, 30, 22
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = _nice_max(max((i + s for _, i, s in days), default=0))
    body = [_text(left, 12, title, size=11, cls="chart-title"),
            f'<rect x="{left + plot_w - 150}" y="4" width="9" height="9" fill="{ISSUED_COLOUR}"/>',
            _text(left + plot_w - 138, 12, issued_label),
            f'<rect x="{left + plot_w - 70}" y="4" width="9" height="9" fill="{SPOILED_COLOUR}"/>',
            _text(left + plot_w - 58, 12, spoiled_label)]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    'stroke="#ddd"/>')
        body.append(_text(left - 4, y + 3, f"{peak * frac:g}", anchor="end"))
    n = max(len(days), 1)
    slot = plot_w / n
    bar = max(slot * 0.7, 1)
    for k, (day, issued, spoiled) in enumerate(days):
        x = left + k * slot + (slot - bar) / 2
        h_i, h_s = plot_h * issued / peak, plot_h * spoiled / peak
        y_i = top + plot_h - h_i
        body.append(f'<rect class="bar-issued" data-day="{day.isoformat()}" data-n="{issued}" '
                    f'x="{x:.1f}" y="{y_i:.1f}" width="{bar:.1f}" height="{h_i:.1f}" '
                    f'fill="{ISSUED_COLOUR}"><title>{day:%d-%m} {escape(issued_label)}: '
                    f"{issued}</title></rect>")
        body.append(f'<rect class="bar-spoiled" data-day="{day.isoformat()}" data-n="{spoiled}" '
                    f'x="{x:.1f}" y="{y_i - h_s:.1f}" width="{bar:.1f}" height="{h_s:.1f}" '
                    f'fill="{SPOILED_COLOUR}"><title>{day:%d-%m} {escape(spoiled_label)}: '
                    f"{spoiled}</title></rect>")
        if n <= 16 or k % max(n // 8, 1) == 0:
            body.append(_text(x + bar / 2, height - bottom + 12, f"{day:%d-%m}", anchor="middle",
                              size=9))
    if not days:
        body.append(_text(left + plot_w / 2, top + plot_h / 2, "—", anchor="middle"))
    return _svg(width, height, body, title)


@dataclass(frozen=True)
class RateBar:
    """One subject's spoilage: label, rate (0..1), cards made, spoiled, above the threshold."""

    label: str
    rate: float
    cards: int
    spoiled: int
    flagged: bool


def spoilage_rates(bars: Sequence[RateBar], *, title: str, threshold: float | None,
                   threshold_label: str, median: float | None = None,
                   median_label: str = "") -> Markup:
    """Spoilage rate per subject (station or operator) as horizontal bars, with the outlier
    threshold drawn as a dashed line (and the median, when given)."""
    row, left, right, top = 18, 150, 60, 24
    width = 640
    plot_w = width - left - right
    height = top + row * max(len(bars), 1) + 24
    top_rate = max([b.rate for b in bars] + [threshold or 0, median or 0, 0.05])
    scale = _nice_max(top_rate * 100) / 100

    def x_of(rate: float) -> float:
        return left + plot_w * rate / scale

    body = [_text(0, 12, title, size=11, cls="chart-title")]
    for k, b in enumerate(bars):
        y = top + k * row
        colour = SPOILED_COLOUR if b.flagged else ISSUED_COLOUR
        body.append(_text(left - 6, y + 12, b.label, anchor="end"))
        body.append(
            f'<rect class="rate{" flagged" if b.flagged else ""}" data-subject="{escape(b.label)}"'
            f' data-rate="{b.rate:.4f}" x="{left}" y="{y + 3}" '
            f'width="{max(x_of(b.rate) - left, 0.5):.1f}" height="{row - 6}" fill="{colour}">'
            f"<title>{escape(b.label)}: {b.spoiled}/{b.cards}</title></rect>")
        body.append(_text(x_of(b.rate) + 4, y + 12, f"{b.rate:.0%} ({b.spoiled}/{b.cards})",
                          size=9))
    bottom = top + row * max(len(bars), 1)
    if median is not None:
        body.append(f'<line class="median" x1="{x_of(median):.1f}" x2="{x_of(median):.1f}" '
                    f'y1="{top - 4}" y2="{bottom}" stroke="#888" stroke-dasharray="2 2"/>')
        body.append(_text(x_of(median), bottom + 11, f"{median_label} {median:.0%}",
                          anchor="middle", size=9))
    if threshold is not None:
        body.append(f'<line class="threshold" data-rate="{threshold:.4f}" '
                    f'x1="{x_of(threshold):.1f}" x2="{x_of(threshold):.1f}" y1="{top - 4}" '
                    f'y2="{bottom}" stroke="{THRESHOLD_COLOUR}" stroke-width="2" '
                    'stroke-dasharray="6 3"/>')
        body.append(_text(x_of(threshold), bottom + 21, f"{threshold_label} {threshold:.0%}",
                          anchor="middle", size=9))
    if not bars:
        body.append(_text(left, top + 12, "—"))
    return _svg(width, height, body, title)


def level_forecast(points: Sequence[tuple[float, float]], forecast: Sequence[tuple[float, float]],
                   *, title: str, x_labels: Sequence[tuple[float, str]], y_max: float,
                   measured_label: str, forecast_label: str) -> Markup:
    """A level over time (``(x, level)``, x in days from the first point) as a line, and its
    forecast as a dashed line on to where it runs out."""
    width, height, left, bottom, top = 640, 190, 44, 30, 22
    plot_w, plot_h = width - left - 10, height - bottom - top
    xs = [x for x, _ in [*points, *forecast]] or [0.0]
    x_min, x_max = min(xs), max(max(xs), min(xs) + 1)
    y_top = float(y_max) if y_max > 0 else 1.0

    def xy(x: float, y: float) -> str:
        return (f"{left + plot_w * (x - x_min) / (x_max - x_min):.1f},"
                f"{top + plot_h * (1 - max(y, 0) / y_top):.1f}")

    body = [_text(left, 12, title, size=11, cls="chart-title"),
            f'<line x1="{left + plot_w - 190}" x2="{left + plot_w - 172}" y1="9" y2="9" '
            f'stroke="{ISSUED_COLOUR}" stroke-width="2"/>',
            _text(left + plot_w - 168, 12, measured_label),
            f'<line x1="{left + plot_w - 90}" x2="{left + plot_w - 72}" y1="9" y2="9" '
            f'stroke="{THRESHOLD_COLOUR}" stroke-width="2" stroke-dasharray="5 3"/>',
            _text(left + plot_w - 68, 12, forecast_label)]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    'stroke="#ddd"/>')
        body.append(_text(left - 4, y + 3, f"{y_top * frac:g}", anchor="end"))
    if points:
        body.append(f'<polyline class="measured" fill="none" stroke="{ISSUED_COLOUR}" '
                    f'stroke-width="2" points="{" ".join(xy(x, y) for x, y in points)}"/>')
    if forecast:
        body.append(f'<polyline class="forecast" fill="none" stroke="{THRESHOLD_COLOUR}" '
                    f'stroke-width="2" stroke-dasharray="6 3" '
                    f'points="{" ".join(xy(x, y) for x, y in forecast)}"/>')
    for x, text in x_labels:
        px = left + plot_w * (x - x_min) / (x_max - x_min)
        body.append(_text(px, height - bottom + 12, text, anchor="middle", size=9))
    if not points:
        body.append(_text(left + plot_w / 2, top + plot_h / 2, "—", anchor="middle"))
    return _svg(width, height, body, title)
