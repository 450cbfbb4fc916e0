"""Charts as SVG strings: small pure functions for self-contained pages and reports.

Every chart is one ``<svg>`` element with inline presentation attributes (no CSS, no script,
no external resource), so it can be dropped into any HTML page or saved as a ``.svg`` file.
Every piece of text that reaches the SVG — titles, labels, series names — is XML-escaped
here; callers pass plain strings. Values must be finite numbers: NaN or infinity raise
``ValueError`` rather than drawing something misleading. Empty data draws the frame and a
"no data" note instead of failing, because an empty month is a legitimate answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000")
_FONT = 'font-family="system-ui, sans-serif"'
_INK = "#222"
_GRID = "#ddd"
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 56, 16, 48, 44


@dataclass(frozen=True)
class Series:
    """A named list of values (one histogram outline, one colour)."""

    name: str
    values: Sequence[float]


@dataclass(frozen=True)
class Point:
    """One scatter point; points with the same ``series`` share a colour and a legend entry."""

    x: float
    y: float
    label: str = ""
    series: str = ""


def number(value: float) -> str:
    """A short human label for a tick: ``1200`` → ``1.2k``, ``0.25`` → ``0.25``."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if magnitude >= 10_000:
        return f"{value / 1000:.3g}k"
    if magnitude >= 1 or value == 0:
        return f"{value:.4g}"
    return f"{value:.2g}"


def color(index: int) -> str:
    """The palette colour for the ``index``-th series (cycles)."""
    return PALETTE[index % len(PALETTE)]


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    value_label: str = "",
    width: int = 640,
    height: int = 320,
    value_format: Callable[[float], str] = number,
) -> str:
    """Vertical bars, one per ``(label, value)``, with the value written above each bar.

    Negative values are drawn below the zero line. Raises ``ValueError`` on a non-finite value.
    """
    values = [_finite(v) for _, v in bars]
    frame = _Frame(width, height, title)
    if not bars:
        return frame.empty()
    low, high, ticks = _ticks(min(0.0, *values), max(0.0, *values))
    frame.y_axis(low, high, ticks, value_format, value_label)
    slot = frame.plot_width / len(bars)
    bar_width = max(1.0, slot * 0.7)
    zero = frame.y(0.0, low, high)
    for i, ((label, _), value) in enumerate(zip(bars, values, strict=True)):
        x = frame.left + slot * i + (slot - bar_width) / 2
        top = frame.y(value, low, high)
        y, h = min(top, zero), abs(zero - top)
        frame.add(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{h:.1f}" '
            f'fill="{color(i)}"><title>{escape(label)}: {escape(value_format(value))}</title>'
            "</rect>"
        )
        frame.text(x + bar_width / 2, y - 4, value_format(value), anchor="middle", size=11)
        frame.text(x + bar_width / 2, frame.bottom + 16, label, anchor="middle", size=11)
    return frame.render()


def histogram(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str = "",
    bins: int = 20,
    width: int = 640,
    height: int = 320,
    x_format: Callable[[float], str] = number,
) -> str:
    """Distributions of one or more series over shared bins, as overlaid step outlines.

    All series use the same bin edges (from the smallest to the largest value of any series),
    so their shapes compare directly; the y axis counts values per bin. Raises ``ValueError``
    on a non-finite value or ``bins < 1``.
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    cleaned = [[_finite(v) for v in s.values] for s in series]
    frame = _Frame(width, height, title)
    everything = [v for values in cleaned for v in values]
    if not everything:
        frame.legend([s.name for s in series])
        return frame.empty()
    x_low, x_high, x_ticks = _ticks(min(everything), max(everything))
    step = (x_high - x_low) / bins
    counts = [_bin(values, x_low, step, bins) for values in cleaned]
    _, y_high, y_ticks = _ticks(0.0, max(max(c) for c in counts), whole=True)
    frame.y_axis(0.0, y_high, y_ticks, number, "count")
    frame.x_axis(x_low, x_high, x_ticks, x_format, x_label)
    for i, row in enumerate(counts):
        points = [(frame.x(x_low, x_low, x_high), frame.y(0.0, 0.0, y_high))]
        for b, count in enumerate(row):
            y = frame.y(count, 0.0, y_high)
            points.append((frame.x(x_low + b * step, x_low, x_high), y))
            points.append((frame.x(x_low + (b + 1) * step, x_low, x_high), y))
        points.append((frame.x(x_high, x_low, x_high), frame.y(0.0, 0.0, y_high)))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        frame.add(
            f'<polygon points="{path}" fill="{color(i)}" fill-opacity="0.15" '
            f'stroke="{color(i)}" stroke-width="2"><title>{escape(series[i].name)}</title>'
            "</polygon>"
        )
    frame.legend([s.name for s in series])
    return frame.render()


def scatter(
    points: Sequence[Point],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    width: int = 640,
    height: int = 320,
    x_format: Callable[[float], str] = number,
    y_format: Callable[[float], str] = number,
) -> str:
    """Points on two linear axes, coloured by ``series``, each with its ``label`` beside it.

    Raises ``ValueError`` on a non-finite coordinate.
    """
    xs = [_finite(p.x) for p in points]
    ys = [_finite(p.y) for p in points]
    frame = _Frame(width, height, title)
    names = list(dict.fromkeys(p.series for p in points if p.series))
    if not points:
        return frame.empty()
    x_low, x_high, x_ticks = _ticks(*_padded(xs))
    y_low, y_high, y_ticks = _ticks(*_padded(ys))
    frame.y_axis(y_low, y_high, y_ticks, y_format, y_label)
    frame.x_axis(x_low, x_high, x_ticks, x_format, x_label)
    for point, px, py in zip(points, xs, ys, strict=True):
        cx, cy = frame.x(px, x_low, x_high), frame.y(py, y_low, y_high)
        fill = color(names.index(point.series)) if point.series else color(0)
        tip = f"{point.label or point.series}: {x_format(px)}, {y_format(py)}"
        frame.add(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}" fill-opacity="0.85">'
            f"<title>{escape(tip)}</title></circle>"
        )
        if point.label:  # beside the point, on the side with room
            left = cx > (frame.left + frame.right) / 2
            frame.text(
                cx - 8 if left else cx + 8,
                cy + 4,
                point.label,
                anchor="end" if left else "start",
                size=11,
            )
    frame.legend(names)
    return frame.render()


def _finite(value: float) -> float:
    number_ = float(value)
    if not math.isfinite(number_):
        raise ValueError(f"chart values must be finite numbers, got {value!r}")
    return number_


def _padded(values: Sequence[float]) -> tuple[float, float]:
    """The range of ``values`` widened by a twentieth each side, never below zero if none is."""
    low, high = min(values), max(values)
    pad = (high - low) / 20
    floor = low - pad if low < 0 else max(0.0, low - pad)
    return floor, high + pad


def _bin(values: Sequence[float], low: float, step: float, bins: int) -> list[int]:
    counts = [0] * bins
    for value in values:
        index = int((value - low) / step) if step > 0 else 0
        counts[min(max(index, 0), bins - 1)] += 1
    return counts


def _ticks(
    low: float, high: float, target: int = 5, *, whole: bool = False
) -> tuple[float, float, list[float]]:
    """A "nice" axis covering ``[low, high]``: rounded bounds and evenly spaced ticks.

    ``whole`` keeps the step at 1 or more, for counts.
    """
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.5 or 1.0
        low, high = (low - pad, high + pad) if low != 0 else (0.0, 1.0)
    raw = (high - low) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    first, last = math.floor(low / step) * step, math.ceil(high / step) * step
    count = round((last - first) / step)
    return first, last, [first + i * step for i in range(count + 1)]


class _Frame:
    """The shared skeleton: title, plot area, axes, legend; collects SVG elements in order."""

    def __init__(self, width: int, height: int, title: str) -> None:
        self.width, self.height = max(width, 160), max(height, 120)
        self.left, self.top = _MARGIN_LEFT, _MARGIN_TOP
        self.right = self.width - _MARGIN_RIGHT
        self.bottom = self.height - _MARGIN_BOTTOM
        self.plot_width = self.right - self.left
        self.title = title
        self.parts: list[str] = []
        self.text(self.left, 20, title, size=14, weight="600")

    def x(self, value: float, low: float, high: float) -> float:
        return self.left + (value - low) / (high - low) * self.plot_width

    def y(self, value: float, low: float, high: float) -> float:
        return self.bottom - (value - low) / (high - low) * (self.bottom - self.top)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(
        self,
        x: float,
        y: float,
        content: str,
        *,
        anchor: str = "start",
        size: int = 12,
        weight: str = "400",
        rotate: bool = False,
    ) -> None:
        turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="{_INK}" {_FONT}{turn}>{escape(content)}</text>'
        )

    def y_axis(
        self,
        low: float,
        high: float,
        ticks: list[float],
        fmt: Callable[[float], str],
        label: str,
    ) -> None:
        for tick in ticks:
            y = self.y(tick, low, high)
            self.add(
                f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" '
                f'stroke="{_GRID}" stroke-width="1"/>'
            )
            self.text(self.left - 6, y + 4, fmt(tick), anchor="end", size=11)
        if label:
            self.text(14, (self.top + self.bottom) / 2, label, anchor="middle", rotate=True)

    def x_axis(
        self,
        low: float,
        high: float,
        ticks: list[float],
        fmt: Callable[[float], str],
        label: str,
    ) -> None:
        self.add(
            f'<line x1="{self.left}" y1="{self.bottom}" x2="{self.right}" y2="{self.bottom}" '
            f'stroke="{_INK}" stroke-width="1"/>'
        )
        for tick in ticks:
            x = self.x(tick, low, high)
            self.text(x, self.bottom + 16, fmt(tick), anchor="middle", size=11)
        if label:
            self.text((self.left + self.right) / 2, self.height - 6, label, anchor="middle")

    def legend(self, names: Sequence[str]) -> None:
        x = self.right
        for i, name in reversed(list(enumerate(names))):
            x -= 18 + 7 * len(name)
            self.add(
                f'<rect x="{x:.1f}" y="28" width="10" height="10" fill="{color(i)}"/>'
                if name
                else ""
            )
            self.text(x + 14, 37, name, size=11)

    def empty(self) -> str:
        self.text(
            (self.left + self.right) / 2,
            (self.top + self.bottom) / 2,
            "no data",
            anchor="middle",
        )
        return self.render()

    def render(self) -> str:
        body = "".join(self.parts)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-label="{escape(self.title)}"><title>{escape(self.title)}</title>'
            f'<rect width="100%" height="100%" fill="#fff"/>{body}</svg>'
        )
