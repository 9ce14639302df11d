"""Seeds for replayable chaos, and the record of what they decided.

A run's seed comes from ``--ws-chaos-seed`` or is drawn at random once. Each proxy of a
test gets ``derive_seed(run_seed, nodeid, n)``, so re-running one failing test with the
printed ``--ws-chaos-seed`` replays exactly its fault decisions, whatever ran before it
and on whichever xdist worker. Pure: hashlib, never ``hash()`` (salted per process).

Each decision is kept as a `FaultDecision`, the one record type both engines (the toxic
rolls of the proxy, the message filter) write to ``ChaosProxy.decisions``: the same seed
and the same traffic give the same list.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import dataclass

__all__ = ["FaultDecision", "derive_rng", "derive_seed", "new_run_seed"]


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


@dataclass(frozen=True)
class FaultDecision:
    """Whether and how one fault acted: a toxic's toxicity roll or one message-fault step.

    Kept for seed replay and reports; ``str()`` is one line, e.g.
    ``#1 downstream drop#1: dropped (message 4 (text, 187 bytes))``.
    """

    connection: int  # 1-based index of the proxied connection, in accept order
    direction: str  # "upstream" (client->server) or "downstream" (server->client)
    subject: str  # the toxic or message fault name, e.g. "latency_downstream" or "drop#1"
    outcome: str  # e.g. "enabled", "disabled", "dropped", "kept", "delayed 37.2ms"
    detail: str = ""  # e.g. "message 3 (text, 112 bytes)"

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"#{self.connection} {self.direction} {self.subject}: {self.outcome}{detail}"
