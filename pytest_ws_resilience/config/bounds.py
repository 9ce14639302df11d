"""The bounds of every number a user gives: seconds, counts, rates, sizes.

Pure, no I/O. One rule for every numeric input, whether it comes from the configuration
(`pytest_ws_resilience.config.validation` wraps these checks with the table's name) or
from a call (`WsClient(...)`, ``expect(timeout=...)``, storms, the pool, contracts):
finite, of the right type, and between bounds that keep every wait finite. A NaN
timeout waits forever, 1e308 seconds overflows the event loop's clock, a retry count of
2**63 never gives up on a down server, and a storm at 1e-9 connections per second never
ends: each is refused here with one line naming the input, its value and what is
expected, before anything waits on it.

Every check returns the normalized value, or raises `ValueError` (the public API's
error for a bad argument); the configuration loader turns it into `WsConfigError`.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MAX_RETRIES",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "check_count",
    "check_rate",
    "check_seconds",
    "shown",
]

#: The shortest timeout: 1 ms (below it every wait is a timeout, not a test).
MIN_SECONDS = 0.001
#: The longest timeout, budget or spread of a storm: one day (any longer is a hang).
MAX_SECONDS = 86_400.0
#: The most retries of one connection (with the backoff cap, a bounded give-up time).
MAX_RETRIES = 100
#: The most connections of one storm, clients of a burst, or cycles.
MAX_CONNECTIONS = 100_000
#: The most messages one client of a burst writes.
MAX_MESSAGES = 100_000
#: The largest frame a client may accept or send: 1 GiB.
MAX_MESSAGE_BYTES = 1 << 30

_SHOWN_MAX = 60


def shown(value: Any) -> str:
    """A short repr of a bad value for an error line."""
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds_text(seconds: float) -> str:
    if seconds >= MAX_SECONDS:
        days = seconds / MAX_SECONDS
        return "1 day" if days == 1 else f"{days:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def check_seconds(
    name: str,
    value: Any,
    *,
    minimum: float = MIN_SECONDS,
    maximum: float = MAX_SECONDS,
) -> float:
    """A duration in seconds: a finite number from ``minimum`` to ``maximum``.

    Args:
        name: the input as the user wrote it (``"recv_timeout"``, ``"expect(timeout=)"``).
        value: what was given.
        minimum: the smallest allowed (0 for a delay or budget that may be none).

    Raises:
        ValueError: ``<name> = <value> is invalid: expected a number of seconds from
            1 ms to 1 day``.
    """
    if _is_number(value) and math.isfinite(value) and minimum <= value <= maximum:
        return float(value)
    low = "0" if minimum == 0 else _seconds_text(minimum)
    raise ValueError(
        f"{name} = {shown(value)} is invalid: expected a number of seconds from {low} to "
        f"{_seconds_text(maximum)}"
    )


def check_count(name: str, value: Any, *, minimum: int = 0, maximum: int) -> int:
    """A whole number from ``minimum`` to ``maximum`` (not a bool, not a float).

    Raises:
        ValueError: ``<name> = <value> is invalid: expected a whole number from 0 to 100``.
    """
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum:
        return value
    raise ValueError(
        f"{name} = {shown(value)} is invalid: expected a whole number from {minimum:_} to "
        f"{maximum:_}"
    )


def check_rate(name: str, value: Any, *, count: int) -> float:
    """Arrivals per second of ``count`` connections: finite, > 0, and fast enough that
    the last one arrives within `MAX_SECONDS` (so a storm's length is bounded by its
    timeouts, not by its rate).

    Raises:
        ValueError: one line naming the rate, and the spread it would take.
    """
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{name} = {shown(value)} is invalid: expected a finite number of connections "
            f"per second > 0 (or None: all at once)"
        )
    spread = (count - 1) / value
    if spread > MAX_SECONDS:
        raise ValueError(
            f"{name} = {shown(value)} is too slow: {count} connections would take "
            f"{spread:.3g} s to arrive (at most 1 day); raise the rate or lower n"
        )
    return float(value)
