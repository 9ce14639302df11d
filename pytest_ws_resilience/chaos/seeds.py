"""Seeds for replayable chaos: one per run, derived per test and per proxy.

A run's seed comes from ``--ws-chaos-seed`` or is drawn at random once. Each proxy of a
test gets ``derive_seed(run_seed, nodeid, n)``, so re-running one failing test with the
printed ``--ws-chaos-seed`` replays exactly its fault decisions, whatever ran before it
and on whichever xdist worker. Pure: hashlib, never ``hash()`` (salted per process).
"""

from __future__ import annotations

import hashlib
import random
import secrets

__all__ = ["derive_rng", "derive_seed", "new_run_seed"]


def new_run_seed() -> int:
    """A fresh random run seed (printed on failure so the run can be replayed)."""
    return secrets.randbits(32)


def _digest(seed: int, parts: tuple[object, ...]) -> bytes:
    """SHA-256 of (seed, parts): ``hash()`` of a string changes with ``PYTHONHASHSEED``
    between runs; this does not, so a seed printed by one run replays in the next."""
    text = "\x1f".join([str(seed), *(f"{type(p).__name__}:{p}" for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).digest()


def derive_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed determined by ``seed`` and ``parts`` (stable across processes)."""
    return int.from_bytes(_digest(seed, parts)[:8], "big")


def derive_rng(seed: int, *parts: object) -> random.Random:
    """A `random.Random` determined by ``seed`` and ``parts`` (stable across processes)."""
    return random.Random(int.from_bytes(_digest(seed, parts)[:16], "big"))
