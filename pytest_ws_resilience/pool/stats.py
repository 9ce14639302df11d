"""What a pool reports: hits, misses, evictions by reason, sizes.

Pure data, no I/O. `ConnectionPool.stats` builds a `PoolStats` snapshot; the plugin's
report shows it (SPEC section 4: hits, misses, evictions, reuse rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVICTION_REASONS", "PoolStats"]

#: Why a connection left the pool before ``cleanup_all``.
#: dead: closed by either side; unhealthy: no pong within the health-check timeout;
#: idle: unused longer than ``idle_timeout``; capacity: made room for a miss (LRU);
#: loop: belongs to another (or a closed) event loop.
EVICTION_REASONS = ("dead", "unhealthy", "idle", "capacity", "loop")


@dataclass
class PoolStats:
    """Counters of a pool (a snapshot: `ConnectionPool.stats` builds a new one).

    Attributes:
        hits: acquires served by an idle connection.
        misses: acquires that had to open a connection (counted even if it failed).
        evictions: connections removed before ``cleanup_all``, all reasons.
        evicted_by_reason: ``evictions`` by reason (see `EVICTION_REASONS`).
        created: connections opened.
        closed: connections closed (evictions and ``cleanup_all``).
        size: open connections now (idle + leased, including ones being opened).
        idle: connections waiting for reuse.
        leased: connections handed out and not released.
    """

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    evicted_by_reason: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(EVICTION_REASONS, 0)
    )
    created: int = 0
    closed: int = 0
    size: int = 0
    idle: int = 0
    leased: int = 0

    @property
    def reuse_rate(self) -> float:
        """hits / (hits + misses); 0.0 before any acquire."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for reports (JSON-ready)."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "reuse_rate": self.reuse_rate,
            "evictions": self.evictions,
            "evicted_by_reason": dict(self.evicted_by_reason),
            "created": self.created,
            "closed": self.closed,
            "size": self.size,
            "idle": self.idle,
            "leased": self.leased,
        }
