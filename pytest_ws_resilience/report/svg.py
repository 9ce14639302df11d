"""Charts of the HTML report as inline SVG strings: histograms, percentile bars and the
per-test timeline. Pure string building, no dependencies, nothing fetched: the page
renders from ``file://`` with no network. Hover text comes from SVG ``<title>``
elements, so no script is needed either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from pytest_ws_resilience.report.records import TestRecord

__all__ = [
    "LOG_SCALE_RATIO",
    "OUTCOME_COLOURS",
    "Axis",
    "histogram",
    "histogram_bins",
    "nice_ticks",
    "percentile_bars",
    "stack_rows",
    "timeline",
]

OUTCOME_COLOURS = {
    "passed": "#2da44e",
    "failed": "#cf222e",
    "error": "#bc4c00",
    "skipped": "#8c959f",
    "xfailed": "#8250df",
    "xpassed": "#bf8700",
}
_BAR = "#0969da"
_BAR_LIGHT = "#80b6f7"
_AXIS = "#57606a"
_GRID = "#d0d7de"
_MARKS = {"p50": "#1a7f37", "p95": "#9a6700", "p99": "#cf222e"}
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"'
#: Connection rows drawn per worker lane in the timeline; more overlap on the last row.
MAX_CONNECTION_ROWS = 12


def _fmt(value: float) -> str:
    """A coordinate with at most 2 decimals (smaller files, same picture)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _label(value: float) -> str:
    """An axis label: no trailing zeros, sensible precision for ms and seconds."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of 10."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    # The tolerance keeps float noise (0.6 / 3 = 0.20000000000000004) off a round step.
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 10))
        value += step
    return ticks


#: A sample spanning more than this max/min ratio is drawn on a log axis: a few slow
#: handshakes (a retry, a chaos delay) would otherwise squash the rest into one bar.
LOG_SCALE_RATIO = 20.0


@dataclass(frozen=True)
class Axis:
    """A value axis over [low, high], linear or logarithmic, mapped onto [0, 1]."""

    low: float
    high: float
    log: bool = False

    @classmethod
    def for_values(cls, values: Sequence[float]) -> Axis:
        low, high = min(values), max(values)
        if low > 0 and high / low > LOG_SCALE_RATIO:
            return cls(low, high, log=True)
        if high == low:
            pad = abs(low) * 0.05 or 0.5
            low, high = low - pad, high + pad
        return cls(low, high)

    def fraction(self, value: float) -> float:
        """Where ``value`` sits on the axis, 0 at ``low`` and 1 at ``high``."""
        if self.log:
            value = max(value, self.low)
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)

    def at(self, fraction: float) -> float:
        """The value at ``fraction`` of the axis (inverse of `fraction`)."""
        if self.log:
            return float(self.low * (self.high / self.low) ** fraction)
        return self.low + fraction * (self.high - self.low)

    def ticks(self, count: int = 5) -> list[float]:
        if not self.log:
            return nice_ticks(self.low, self.high, count)
        # 1-2-5 steps per decade, thinned to about ``count`` labels.
        ticks = []
        for exponent in range(
            math.floor(math.log10(self.low)), math.ceil(math.log10(self.high)) + 1
        ):
            for m in (1, 2, 5):
                value = m * 10.0**exponent
                if self.low <= value <= self.high:
                    ticks.append(value)
        step = max(1, math.ceil(len(ticks) / count))
        return ticks[::step]


def histogram_bins(
    values: Sequence[float], bins: int | None = None, axis: Axis | None = None
) -> list[tuple[float, float, int]]:
    """Bins of equal width on ``axis`` (equal ratio on a log axis): (low, high, count).

    The bin count defaults to the square root of the sample size, within 5..40: enough
    to show the shape of a latency distribution without turning it into noise.
    """
    if not values:
        return []
    axis = axis or Axis.for_values(values)
    n = bins or min(40, max(5, math.ceil(math.sqrt(len(values)))))
    counts = [0] * n
    for v in values:
        counts[min(n - 1, max(0, int(axis.fraction(v) * n)))] += 1
    return [(axis.at(i / n), axis.at((i + 1) / n), c) for i, c in enumerate(counts)]


def _svg_open(width: float, height: float, label: str) -> str:
    return (
        f'<svg class="chart" width="{_fmt(width)}" '
        f'height="{_fmt(height)}" viewBox="0 0 {_fmt(width)} {_fmt(height)}" role="img" '
        f'aria-label="{escape(label)}">'
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 11,
    anchor: str = "start",
    fill: str = _AXIS,
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}" font-weight="{weight}" {_FONT}>{escape(text)}</text>'
    )


def _rect(
    x: float,
    y: float,
    width: float,
    height: float,
    fill: str,
    *,
    title: str | None = None,
    attrs: str = "",
) -> str:
    """A rectangle, with hover text when ``title`` is given."""
    head = (
        f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(width)}" height="{_fmt(height)}" '
        f'fill="{fill}"{" " + attrs if attrs else ""}'
    )
    return f"{head}/>" if title is None else f"{head}><title>{escape(title)}</title></rect>"


def _empty(width: float, height: float, title: str, message: str) -> str:
    return (
        _svg_open(width, height, title)
        + _text(8, 18, title, size=13, fill="#1f2328", weight="600")
        + _text(width / 2, height / 2, message, anchor="middle")
        + "</svg>"
    )


def histogram(
    values: Sequence[float],
    *,
    title: str,
    unit: str = "ms",
    marks: Mapping[str, float | None] | None = None,
    width: int = 560,
    height: int = 250,
) -> str:
    """A histogram of ``values`` with labelled vertical lines at ``marks`` (e.g. p50,
    p95, p99). Each bar's ``<title>`` gives its range and count."""
    if not values:
        return _empty(width, height, title, "no samples")
    left, right, top, bottom = 46.0, 14.0, 52.0, 34.0
    plot_w, plot_h = width - left - right, height - top - bottom
    axis = Axis.for_values(values)
    bins = histogram_bins(values, axis=axis)
    peak = max(c for _, _, c in bins)

    def x_of(v: float) -> float:
        return left + axis.fraction(v) * plot_w

    def y_of(c: float) -> float:
        return top + plot_h - c / peak * plot_h

    parts = [
        _svg_open(width, height, title),
        _text(8, 18, title, size=13, fill="#1f2328", weight="600"),
    ]
    for tick in nice_ticks(0, peak, 4):
        if tick != int(tick):
            continue
        y = y_of(tick)
        parts.append(
            f'<line x1="{_fmt(left)}" x2="{_fmt(left + plot_w)}" y1="{_fmt(y)}" '
            f'y2="{_fmt(y)}" stroke="{_GRID}" stroke-width="1"/>'
        )
        parts.append(_text(left - 6, y + 4, str(int(tick)), anchor="end", size=10))
    for b_low, b_high, count in bins:
        if not count:
            continue
        x0, x1 = x_of(b_low), x_of(b_high)
        y = y_of(count)
        parts.append(
            _rect(
                x0 + 0.5,
                y,
                max(x1 - x0 - 1, 1),
                top + plot_h - y,
                _BAR,
                title=f"{_label(b_low)}-{_label(b_high)} {unit}: {count}",
                attrs='fill-opacity="0.85"',
            )
        )
    axis_y = top + plot_h
    parts.append(
        f'<line x1="{_fmt(left)}" x2="{_fmt(left + plot_w)}" y1="{_fmt(axis_y)}" '
        f'y2="{_fmt(axis_y)}" stroke="{_AXIS}" stroke-width="1"/>'
    )
    for tick in axis.ticks(5):
        x = x_of(tick)
        parts.append(
            f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(axis_y)}" '
            f'y2="{_fmt(axis_y + 4)}" stroke="{_AXIS}"/>'
        )
        parts.append(_text(x, axis_y + 16, _label(tick), anchor="middle", size=10))
    scale = f"{unit}, log scale" if axis.log else unit
    parts.append(_text(left + plot_w, height - 4, scale, anchor="end", size=10))
    for name, value in (marks or {}).items():
        if value is None or not axis.low <= value <= axis.high:
            continue
        x = x_of(value)
        colour = _MARKS.get(name, _AXIS)
        parts.append(
            f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(top - 4)}" '
            f'y2="{_fmt(axis_y)}" stroke="{colour}" stroke-width="1.5" '
            f'stroke-dasharray="4 3"><title>{escape(name)} {_label(value)} {unit}'
            f"</title></line>"
        )
    # The marks' values on a line of their own under the title: never over a bar.
    legend_x = 8.0
    for name, value in (marks or {}).items():
        if value is None:
            continue
        text = f"{name} {_label(value)} {unit}"
        parts.append(_text(legend_x, 36, text, size=11, fill=_MARKS.get(name, _AXIS), weight="600"))
        legend_x += 6.6 * len(text) + 16
    parts.append("</svg>")
    return "".join(parts)


def percentile_bars(
    distribution: Mapping[str, Any], *, title: str, unit: str = "ms", width: int = 560
) -> str:
    """Horizontal bars of min, p50, p95, p99 and max, for a distribution given only by
    its figures (no samples)."""
    names = [
        n
        for n in ("min", "p50", "p95", "p99", "max")
        if isinstance(distribution.get(n), (int, float))
    ]
    if not names:
        return _empty(width, 80, title, "no samples")
    row_h, left, top = 22.0, 46.0, 30.0
    height = top + row_h * len(names) + 10
    peak = max(float(distribution[n]) for n in names) or 1.0
    plot_w = width - left - 90
    parts = [
        _svg_open(width, height, title),
        _text(8, 18, title, size=13, fill="#1f2328", weight="600"),
    ]
    for i, name in enumerate(names):
        value = float(distribution[name])
        y = top + i * row_h
        parts.append(_text(left - 6, y + 14, name, anchor="end", size=11))
        parts.append(
            _rect(
                left,
                y + 3,
                max(value / peak * plot_w, 1),
                row_h - 6,
                _MARKS.get(name, _BAR),
                attrs='fill-opacity="0.85"',
            )
        )
        parts.append(
            _text(left + value / peak * plot_w + 6, y + 14, f"{_label(value)} {unit}", size=11)
        )
    parts.append("</svg>")
    return "".join(parts)


def stack_rows(spans: Sequence[tuple[float, float]], max_rows: int) -> list[int]:
    """A row for each (start, end) span such that spans on a row do not overlap (greedy,
    in the given order, which should be by start); past ``max_rows`` the last row."""
    ends: list[float] = []
    rows = []
    for start, end in spans:
        for i, last_end in enumerate(ends):
            if last_end <= start:
                ends[i] = end
                rows.append(i)
                break
        else:
            if len(ends) < max_rows:
                ends.append(end)
                rows.append(len(ends) - 1)
            else:
                ends[-1] = max(ends[-1], end)
                rows.append(max_rows - 1)
    return rows


def timeline(records: Sequence[TestRecord], *, width: int = 1180) -> str:
    """Each test's span on a shared wall-clock axis, one lane per worker, with the
    connections it opened drawn under it (dark: handshake, light: open)."""
    title = "Timeline: tests by worker, with their connections"
    if not records:
        return _empty(width, 80, title, "no tests")
    t0 = min(r.started_at for r in records)
    t1 = max(r.finished_at for r in records)
    span = max(t1 - t0, 1e-3)
    left, right, top = 78.0, 16.0, 48.0
    plot_w = width - left - right

    def x_of(t: float) -> float:
        return left + (t - t0) / span * plot_w

    workers = sorted({r.worker for r in records}, key=lambda w: (len(w), w))
    test_h, conn_h, gap = 16.0, 4.0, 1.5
    lanes: list[tuple[str, list[TestRecord], list[tuple[float, float, float]], list[int]]] = []
    for worker in workers:
        mine = [r for r in records if r.worker == worker]
        conns = sorted(
            (
                c.opened_at,
                c.closed_at if c.closed_at is not None else r.finished_at,
                c.handshake_ms / 1000.0,
            )
            for r in mine
            for c in r.connections
        )
        rows = stack_rows([(s, e) for s, e, _ in conns], MAX_CONNECTION_ROWS)
        lanes.append((worker, mine, conns, rows))
    lane_heights = [
        test_h + 6 + (max(rows, default=-1) + 1) * (conn_h + gap) + 14 for _, _, _, rows in lanes
    ]
    height = top + sum(lane_heights) + 8
    parts = [
        _svg_open(width, height, title),
        _text(8, 18, title, size=13, fill="#1f2328", weight="600"),
    ]
    for tick in nice_ticks(0, span, 8):
        x = x_of(t0 + tick)
        parts.append(
            f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(top - 6)}" '
            f'y2="{_fmt(height - 8)}" stroke="{_GRID}" stroke-width="1"/>'
        )
        parts.append(_text(x, top - 10, f"{_label(tick)} s", anchor="middle", size=10))
    y = top
    for (worker, mine, conns, rows), lane_h in zip(lanes, lane_heights, strict=True):
        parts.append(_text(8, y + 12, worker, size=11, fill="#1f2328", weight="600"))
        for r in mine:
            x0, x1 = x_of(r.started_at), x_of(r.finished_at)
            colour = OUTCOME_COLOURS.get(r.outcome, _AXIS)
            tip = (
                f"{r.nodeid}\n{r.outcome}, {r.duration_s * 1000:.1f} ms, "
                f"{len(r.connections)} connections"
            )
            parts.append(
                _rect(
                    x0,
                    y,
                    max(x1 - x0, 1.5),
                    test_h,
                    colour,
                    title=tip,
                    attrs='class="test" stroke="#ffffff" stroke-width="0.75"',
                )
            )
        for (start, end, handshake), row in zip(conns, rows, strict=True):
            cy = y + test_h + 6 + row * (conn_h + gap)
            x0, x1 = x_of(start), x_of(end)
            xh = x_of(start + handshake)
            tip = (
                f"connection: open {(end - start) * 1000:.1f} ms, "
                f"handshake {handshake * 1000:.1f} ms"
            )
            parts.append(
                _rect(x0, cy, max(x1 - x0, 1), conn_h, _BAR_LIGHT, title=tip, attrs='class="conn"')
            )
            parts.append(_rect(x0, cy, max(xh - x0, 1), conn_h, _BAR))
        y += lane_h
        parts.append(
            f'<line x1="{_fmt(left)}" x2="{_fmt(left + plot_w)}" y1="{_fmt(y - 6)}" '
            f'y2="{_fmt(y - 6)}" stroke="{_GRID}" stroke-width="1"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
