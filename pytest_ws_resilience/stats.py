"""Latency distributions: percentiles and a summary, pure and dependency-free.

Shared by the load tools (``ws_storm`` thresholds) and the reports (handshake
p50/p95 per run), so a p95 means the same thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Distribution", "percentile"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, by linear interpolation
    between closest ranks (NumPy's default), so p50 of [1, 2] is 1.5.

    Raises:
        ValueError: no values, or ``q`` outside 0..100.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(sorted_values[low])
    weight = rank - low
    return float(sorted_values[low] * (1.0 - weight) + sorted_values[high] * weight)


@dataclass(frozen=True)
class Distribution:
    """Summary of a sample: count, min, p50, p95, p99, max and mean (same unit as the
    sample). An empty sample has ``count == 0`` and every figure None."""

    count: int
    min: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None, None, None, None)
        return cls(
            count=len(ordered),
            min=ordered[0],
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1],
            mean=sum(ordered) / len(ordered),
        )

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "min": self.min,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
            "mean": self.mean,
        }

    def describe(self, unit: str = "ms", scale: float = 1.0) -> str:
        """One line, e.g. ``n=1000 min=1.2 p50=3.4 p95=8.0 p99=12.5 max=20.1 ms``."""
        if self.count == 0:
            return "n=0"
        figures = " ".join(
            f"{name}={value * scale:.1f}"
            for name, value in (
                ("min", self.min),
                ("p50", self.p50),
                ("p95", self.p95),
                ("p99", self.p99),
                ("max", self.max),
            )
            if value is not None
        )
        return f"n={self.count} {figures} {unit}"
