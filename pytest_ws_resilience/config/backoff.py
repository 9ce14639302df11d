"""The one retry/backoff policy: exponential delays, capped (1, 2, 4, 8, 8, ... s)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pytest_ws_resilience.config.bounds import check_seconds

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
        # Finite and bounded (config/bounds.py): a NaN or 1e308 s delay never ends.
        check_seconds("Backoff base", self.base, minimum=0.0)
        check_seconds("Backoff cap", self.cap, minimum=0.0)
        if not (isinstance(self.factor, int | float) and 1 <= self.factor <= 1000):
            raise ValueError(f"Backoff factor = {self.factor!r} is invalid: expected 1 to 1000")

    def delays(self, retries: int) -> Iterator[float]:
        """The ``retries`` delays to sleep before each retry, in order."""
        delay = self.base
        for _ in range(retries):
            yield min(delay, self.cap)
            delay *= self.factor
