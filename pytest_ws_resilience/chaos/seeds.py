"""Seeds for replayable chaos: one per run, derived per test and per proxy.

A run's seed comes from ``--ws-chaos-seed`` or is drawn at random once. Each proxy of a
test gets ``derive_seed(run_seed, nodeid, n)``, so re-running one failing test with the
printed ``--ws-chaos-seed`` replays exactly its fault decisions, whatever ran before it
and on whichever xdist worker. Pure: hashlib, never ``hash()`` (salted per process).
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["derive_seed", "new_run_seed"]


def new_run_seed() -> int:
    """A fresh random run seed (printed on failure so the run can be replayed)."""
    return secrets.randbits(32)


def derive_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed determined by ``seed`` and ``parts`` (stable across processes)."""
    text = "\x1f".join([str(seed), *(repr(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
