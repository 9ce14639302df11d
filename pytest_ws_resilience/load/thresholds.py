"""Pass/fail thresholds over a storm's distributions and errors, in the spirit of k6.

Pure: a threshold names a metric, a statistic and a limit (``connect_ms`` p95 <= 500);
checking returns the breaches, each printable as one line. A threshold on a metric
with no samples is a breach too: a limit that cannot be checked must not pass, and a
limit that could never be breached (NaN, infinity) is refused. The same holds for the
server's growth per 1,000 cycles (`growth_breaches`): a figure that could not be read
breaches its limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_ws_resilience.stats import Distribution

__all__ = [
    "METRICS",
    "PERCENTILES",
    "Breach",
    "error_count_breach",
    "error_rate_breach",
    "growth_breaches",
    "percentile_breaches",
]

#: The latency metrics of a storm, in milliseconds.
METRICS: tuple[str, ...] = ("connect_ms", "first_message_ms", "round_trip_ms")
#: The statistics a percentile threshold can name.
PERCENTILES: tuple[str, ...] = ("p50", "p95", "p99")


@dataclass(frozen=True)
class Breach:
    """One threshold not met: ``observed`` is None when the metric had no samples."""

    metric: str
    stat: str
    limit: float
    observed: float | None
    unit: str = "ms"

    def __str__(self) -> str:
        if self.stat == "count":
            return f"errors = {self.observed:g} > max {self.limit:g}"
        if self.stat == "per_1000":
            what = f"server {self.metric} growth per 1,000 cycles"
            if self.observed is None:
                return f"{what} <= {self.limit:g}{self.unit}: not measured"
            return f"{what} = {self.observed:+.1f}{self.unit} > max {self.limit:g}{self.unit}"
        if self.stat == "rate":
            if self.observed is None:
                return f"error rate <= {self.limit:.2%}: no connection attempted"
            return f"error rate = {self.observed:.2%} > max {self.limit:.2%}"
        if self.observed is None:
            return f"{self.metric} {self.stat} <= {self.limit:g} {self.unit}: no samples"
        return (
            f"{self.metric} {self.stat} = {self.observed:.1f} {self.unit} "
            f"> {self.limit:g} {self.unit}"
        )


def _check_limit(name: str, limit: object) -> float:
    """``limit`` as a float, or a one-line error.

    A non-finite limit is refused: every comparison with NaN is False, so a NaN limit
    could never be breached, and an infinite one never either: a threshold that cannot
    fail checks nothing.
    """
    if (
        isinstance(limit, bool)
        or not isinstance(limit, (int, float))
        or not math.isfinite(limit)
        or limit < 0
    ):
        raise ValueError(f"threshold {name} must be a finite number >= 0, got {limit!r}")
    return float(limit)


def percentile_breaches(
    distributions: Mapping[str, Distribution], stat: str, limits: Mapping[str, float]
) -> list[Breach]:
    """The limits in ``limits`` (metric -> max ms) that ``stat`` of a metric exceeds.

    Raises:
        ValueError: no limits, an unknown metric or statistic, or a negative limit.
    """
    if stat not in PERCENTILES:
        raise ValueError(f"unknown statistic {stat!r}; valid: {', '.join(PERCENTILES)}")
    if not limits:
        raise ValueError(f"assert_{stat}() needs at least one limit, e.g. connect_ms=500")
    breaches = []
    for metric, limit in limits.items():
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
        bound = _check_limit(metric, limit)
        observed: float | None = getattr(distributions[metric], stat)
        if observed is None or observed > bound:
            breaches.append(Breach(metric, stat, bound, observed))
    return breaches


def error_count_breach(errors: int, *, max_count: int) -> Breach | None:
    """A breach when more than ``max_count`` connections failed."""
    bound = _check_limit("max", max_count)
    if errors > bound:
        return Breach("errors", "count", bound, float(errors), unit="")
    return None


def error_rate_breach(errors: int, attempted: int, *, max_rate: float) -> Breach | None:
    """A breach when the failed fraction of ``attempted`` exceeds ``max_rate`` (0..1)."""
    bound = _check_limit("max", max_rate)
    if bound > 1:
        raise ValueError(f"error rate threshold is a fraction 0..1, got {max_rate!r}")
    if attempted == 0:
        return Breach("error_rate", "rate", bound, None, unit="")
    rate = errors / attempted
    if rate > bound:
        return Breach("error_rate", "rate", bound, rate, unit="")
    return None


def growth_breaches(
    per_thousand: Mapping[str, float | None], limits: Mapping[str, float | None]
) -> list[Breach]:
    """The limits (metric -> max growth per 1,000 cycles; None: unchecked) that the
    server's growth exceeds; a metric that was not measured breaches its limit.

    Raises:
        ValueError: no limit at all, an unknown metric, or a bad limit (one line).
    """
    chosen = {metric: limit for metric, limit in limits.items() if limit is not None}
    if not chosen:
        raise ValueError(
            "assert_server_growth() needs at least one limit, e.g. fds=10 or rss_mib=20 "
            "(per 1,000 cycles)"
        )
    breaches = []
    for metric, limit in chosen.items():
        if metric not in per_thousand:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(per_thousand)}")
        bound = _check_limit(metric, limit)
        observed = per_thousand[metric]
        if observed is None or observed > bound:
            unit = " MiB" if metric == "rss_mib" else ""
            breaches.append(Breach(metric, "per_1000", bound, observed, unit=unit))
    return breaches
