"""Seeded jitter for clients released together: who waits how long after the barrier.

Pure, no I/O. A race shows only for some interleavings; exploring them means shifting
each client by a small random delay after a common release, and replaying a failure
means drawing the same delays again. The delays are a function of a seed, the phase
(``connect``, ``action``...) and the number of clients, nothing else: the same seed
gives the same schedule in any process (`random.Random` seeded with a string hashes it
with SHA-512, never with the salted ``hash()``). The asyncio release that applies a
schedule is `pytest_ws_resilience.client.release`.
"""

from __future__ import annotations

import math
import random
import secrets

__all__ = [
    "MAX_JITTER_S",
    "check_jitter",
    "check_seed",
    "jitter_schedule",
    "new_base_seed",
    "round_seed",
]

#: The largest jitter accepted (seconds): a release spread wider than this is no race.
MAX_JITTER_S = 60.0


def new_base_seed() -> int:
    """A fresh random seed (printed, so that what it decided can be replayed)."""
    return secrets.randbits(32)


def check_jitter(jitter: object, *, what: str = "jitter") -> float:
    """``jitter`` as seconds, or a one-line error naming the problem.

    Raises:
        ValueError: not a number, negative, not finite or above `MAX_JITTER_S`.
    """
    if isinstance(jitter, bool) or not isinstance(jitter, int | float):
        raise ValueError(f"{what} must be a number of seconds, got {type(jitter).__name__}")
    value = float(jitter)
    if not math.isfinite(value) or value < 0 or value > MAX_JITTER_S:
        raise ValueError(f"{what} must be between 0 and {MAX_JITTER_S:g} seconds, got {jitter!r}")
    return value


def check_seed(seed: object) -> int:
    """``seed`` as a non-negative int, or a one-line error."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return seed


def round_seed(base: int, round_number: int) -> int:
    """The seed of round ``round_number`` (1-based) of a run seeded with ``base``.

    Round 1's seed is ``base`` itself, so a failing round's seed given back with
    ``rounds=1`` replays exactly that round; later rounds draw theirs from ``base``.
    """
    if round_number < 1:
        raise ValueError(f"round numbers start at 1, got {round_number}")
    if round_number == 1:
        return base
    return random.Random(f"ws-round:{base}:{round_number}").getrandbits(32)


def jitter_schedule(seed: int, count: int, jitter: float, phase: str = "connect") -> list[float]:
    """Each client's delay after the release, in seconds, in ``[0, jitter]``.

    Args:
        seed: the round's seed.
        count: how many clients are released.
        jitter: the widest delay; 0 releases every client at once (all delays 0).
        phase: what is released (``connect``, ``action``): each phase of a round draws
            its own delays, so a client first to connect is not always first to act.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    spread = check_jitter(jitter)
    if spread == 0:
        return [0.0] * count
    rng = random.Random(f"ws-jitter:{phase}:{seed}:{count}")
    return [rng.uniform(0.0, spread) for _ in range(count)]
