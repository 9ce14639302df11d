"""The one retry/backoff policy: exponential delays, capped (1, 2, 4, 8, 8, ... s)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Delays between connection attempts.

    ``Backoff()`` gives the production policy 1, 2, 4, 8, 8 ... seconds. Tests shrink
    ``base`` (e.g. ``Backoff(base=0.01, cap=0.08)``) to keep the same shape fast.

    Args:
        base: first delay, seconds.
        factor: multiplier between consecutive delays.
        cap: the largest delay.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 8.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError(f"invalid backoff {self}: need base >= 0, cap >= 0, factor >= 1")

    def delays(self, retries: int) -> Iterator[float]:
        """The ``retries`` delays to sleep before each retry, in order."""
        delay = self.base
        for _ in range(retries):
            yield min(delay, self.cap)
            delay *= self.factor
