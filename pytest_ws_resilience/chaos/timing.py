"""When each byte may leave the proxy: the timing math of the byte-level toxics.

Pure: times are plain floats (the proxy passes its loop's clock), randomness comes from
the `random.Random` it is handed, nothing sleeps. That is what lets the tests check
latency, jitter, pacing and slicing exactly, without sockets.

The model is deadline-based. A chunk read at ``arrival`` is turned into `Piece`\\ s, each
with an absolute release time; the proxy's writer waits until the earliest one is due
and writes everything due. Nothing is slept in series, so a 50 ms latency delays every
chunk by 50 ms without capping throughput at one chunk per 50 ms, and a timer that fires
late does not push later chunks past their own deadlines.

Seeds: every random choice draws from `derive_rng(seed, ...)` with the parts that name
it (the toxic, the connection index, the direction), so a given seed replays the same
decisions whatever else happens on the loop, and each toxic's stream of draws is its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_ws_resilience.chaos.seeds import derive_rng
from pytest_ws_resilience.chaos.toxics import Toxic

__all__ = [
    "BandwidthPacer",
    "Piece",
    "Shaped",
    "StreamShaper",
    "drop_deadline",
    "latency_release",
    "slice_sizes",
    "toxicity_draw",
]

#: The bandwidth toxic releases at most this much of its rate's worth at once, so a
#: large chunk flows out steadily rather than in one late burst.
PACING_QUANTUM_S = 0.01


def toxicity_draw(seed: int, toxic_name: str, connection: int) -> float:
    """The uniform draw in [0, 1) that decides whether a toxic acts on a connection.

    Drawn once per (connection, toxic): the toxic is enabled when the draw is below its
    toxicity. Keeping the draw (not the verdict) means that raising a toxic's toxicity
    later only ever enables more connections, never re-rolls the ones already decided.
    """
    return derive_rng(seed, "toxic", toxic_name, connection).random()


def drop_deadline(toxic: Toxic, *, opened_at: float, armed_at: float, last_active: float) -> float:
    """When a clock toxic (``idle_timeout``, ``max_lifetime``) drops its connection.

    ``max_lifetime``: ``lifetime`` ms after the connection opened, whenever the toxic was
    armed (armed on a connection already older, it drops it at once). ``idle_timeout``:
    ``timeout`` ms after the later of the last byte read either way and the moment the
    toxic took effect on the connection, so arming one never cuts a connection for the
    silence that came before it. All times are on the caller's clock, in seconds.
    """
    if toxic.kind == "max_lifetime":
        return opened_at + toxic["lifetime"] / 1000.0
    if toxic.kind == "idle_timeout":
        return max(armed_at, last_active) + toxic["timeout"] / 1000.0
    raise ValueError(f"{toxic.kind} is not a clock toxic (idle_timeout, max_lifetime)")


@dataclass(frozen=True)
class Piece:
    """Bytes to write at an absolute time (the proxy's loop clock, seconds)."""

    at: float
    data: bytes


@dataclass(frozen=True)
class Shaped:
    """What the byte toxics of one direction made of a chunk."""

    pieces: list[Piece]
    #: a ``limit_data`` toxic ran out: close the connection once the pieces are written.
    close: bool = False
    #: bytes held back by a ``timeout`` toxic (or cut by ``limit_data``).
    dropped: int = 0


def latency_release(
    arrival: float, latency_ms: float, jitter_ms: float, rng: random.Random, previous: float
) -> float:
    """When a chunk that arrived at ``arrival`` may leave, under latency +- jitter.

    The delay is ``latency + uniform(-jitter, +jitter)`` (a draw only when jitter > 0),
    never negative, and the result is kept at or after ``previous`` (the last release in
    this direction) so that jitter never reorders bytes of one TCP stream.
    """
    delay = latency_ms
    if jitter_ms > 0:
        delay += rng.uniform(-jitter_ms, jitter_ms)
    return max(arrival + max(delay, 0.0) / 1000.0, previous)


class BandwidthPacer:
    """Paces one direction at ``rate`` KB/s (1 KB = 1000 bytes, as Toxiproxy counts).

    Each byte gets a transmission slot after the previous byte's, so throughput stays at
    the rate however the writes are chunked; an idle period earns no burst credit.
    """

    def __init__(self) -> None:
        self._free_at = float("-inf")

    def pace(self, arrival: float, size: int, rate_kbs: float) -> list[tuple[int, float]]:
        """Split ``size`` bytes into ``(end offset, release time)`` steps.

        A step is released when its last byte has been "transmitted" at the rate, so
        ``size`` bytes take ``size / rate`` seconds. ``rate`` 0 means unlimited.
        """
        if rate_kbs <= 0 or size == 0:
            return [(size, arrival)]
        bytes_per_s = rate_kbs * 1000.0
        start = max(self._free_at, arrival)
        quantum = max(1, int(bytes_per_s * PACING_QUANTUM_S))
        steps: list[tuple[int, float]] = []
        offset = 0
        while offset < size:
            offset = min(size, offset + quantum)
            steps.append((offset, start + offset / bytes_per_s))
        self._free_at = steps[-1][1]
        return steps


def slice_sizes(total: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Sizes that add up to ``total``, each ``average +- variation`` (the last may be less).

    Draws from ``rng`` only when ``variation`` > 0, so an exact slicer is deterministic
    without a seed.
    """
    average = max(1, int(average))
    variation = max(0, int(variation))
    sizes: list[int] = []
    left = total
    while left > 0:
        size = average + (rng.randint(-variation, variation) if variation else 0)
        size = min(left, max(1, size))
        sizes.append(size)
        left -= size
    return sizes


@dataclass
class _ToxicState:
    rng: random.Random
    last_release: float = float("-inf")
    passed: int = 0
    pacer: BandwidthPacer = field(default_factory=BandwidthPacer)


class StreamShaper:
    """The byte toxics of one direction of one connection, applied in order.

    ``shape`` takes a chunk and the toxics currently armed for this direction (already
    filtered to the enabled ones, in insertion order) and returns the pieces to write.
    State (the last latency release, bandwidth slots, bytes let through by
    ``limit_data``) is kept per toxic ``key``, so an updated toxic keeps its state and a
    re-added one starts afresh. ``latency``, ``bandwidth``, ``slicer``, ``timeout`` and
    ``limit_data`` act here; the others act on the connection and live in the proxy.
    """

    def __init__(self, rng_for: Callable[[Toxic], random.Random]) -> None:
        self._rng_for = rng_for
        self._states: dict[int, _ToxicState] = {}

    def _state(self, toxic: Toxic) -> _ToxicState:
        state = self._states.get(toxic.key)
        if state is None:
            state = self._states[toxic.key] = _ToxicState(self._rng_for(toxic))
        return state

    def forget(self, keys: set[int]) -> None:
        """Drop the state of toxics that are gone (keeps memory flat over a long test).

        Call it whenever the armed set changes, with the keys of the toxics that still
        act on this direction: a toxic removed and added again then starts afresh.
        """
        for key in set(self._states) - keys:
            del self._states[key]

    def shape(self, arrival: float, data: bytes, toxics: Sequence[Toxic]) -> Shaped:
        """Turn one chunk read at ``arrival`` into pieces with release times.

        Nothing is written or scheduled here. After calling this method you must write
        each of ``pieces`` to the destination no earlier than its ``at`` (on the same
        clock as ``arrival``), in the order given and after every piece an earlier call
        returned: release times are not monotonic across calls (a slicer's last slice may
        be due after the next chunk's first one), and bytes of one TCP stream must stay
        in order. When ``close`` is set, close the connection once those pieces are
        written, and feed no more chunks. The ``dropped`` bytes are gone: send nothing in
        their place.

        Args:
            arrival: when the chunk was read, in seconds on the caller's clock.
            data: the chunk.
            toxics: the toxics acting on this direction now, enabled ones only, in the
                order they were added (they apply in that order).
        """
        pieces = [Piece(arrival, data)]
        close = False
        for toxic in toxics:
            kind = toxic.kind
            if kind == "timeout":
                return Shaped([], close=False, dropped=len(data))
            if kind == "latency":
                state = self._state(toxic)
                shifted = []
                for piece in pieces:
                    state.last_release = latency_release(
                        piece.at, toxic["latency"], toxic["jitter"], state.rng, state.last_release
                    )
                    shifted.append(Piece(state.last_release, piece.data))
                pieces = shifted
            elif kind == "bandwidth":
                state = self._state(toxic)
                paced = []
                for piece in pieces:
                    begin = 0
                    for end, at in state.pacer.pace(piece.at, len(piece.data), toxic["rate"]):
                        paced.append(Piece(at, piece.data[begin:end]))
                        begin = end
                pieces = paced
            elif kind == "slicer":
                state = self._state(toxic)
                step = toxic["delay"] / 1_000_000
                sliced = []
                for piece in pieces:
                    sizes = slice_sizes(
                        len(piece.data),
                        int(toxic["average_size"]),
                        int(toxic["size_variation"]),
                        state.rng,
                    )
                    begin = 0
                    for n, size in enumerate(sizes):
                        sliced.append(Piece(piece.at + n * step, piece.data[begin : begin + size]))
                        begin += size
                pieces = sliced
            elif kind == "limit_data":
                state = self._state(toxic)
                room = max(0, int(toxic["bytes"]) - state.passed)
                kept: list[Piece] = []
                for piece in pieces:
                    if room <= 0:
                        break
                    part = piece.data[:room]
                    kept.append(Piece(piece.at, part))
                    room -= len(part)
                    state.passed += len(part)
                pieces = kept
                if room <= 0:
                    close = True
        sent = sum(len(p.data) for p in pieces)
        return Shaped(pieces, close=close, dropped=len(data) - sent)
