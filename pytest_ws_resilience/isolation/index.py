"""Multi-pattern substring search: find every registered marker in a text in one pass.

Pure data structure, no I/O. The isolation detector keeps thousands of markers (every
user's ids, tokens, canaries and tainted values) and must scan every frame for all of
them at once; testing ``marker in text`` per marker would cost markers x frames, and
compiling one big regular expression would have to be redone on every new marker.

The technique is a sampled k-gram index:

- Every marker is at least ``k`` characters long, so it has ``span = len - k + 1``
  k-grams. It gets a *step* ``s``: the largest power of two <= ``span`` (at most
  `MAX_STEP`), and is filed under ``s`` consecutive k-grams of its own (its *window*).
- A text is then sampled only at positions 0, s, 2s, ...: any occurrence of the marker
  puts exactly one of its window's k-grams on a sampled position. Markers of one step
  form a *tier*; a text costs about ``len / s`` k-gram look-ups for the finest tier in
  use, and the look-ups run at C speed (a set intersection with the tier's keys), so a
  frame that holds no marker costs no per-candidate Python work.
- For each k-gram that does occur, ``str.find`` locates it and each marker filed under
  it is verified with ``startswith`` at the offset the window implies.

Windows start at the marker's tail (ids and texts tend to differ most at the end). A
window k-gram that keeps producing false candidates (common text: ``"user-"``, a
template, an email domain) is learnt from the scans themselves: each time its miss
count doubles past a threshold, the markers filed under it move to the window with
the fewest known misses. Adding a marker costs O(step) and recompiles nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, NamedTuple, TypeVar

__all__ = ["MAX_STEP", "MarkerIndex", "MarkerMatch"]

V = TypeVar("V")

#: The coarsest sampling step: a marker of span >= MAX_STEP is found by looking at one
#: position in MAX_STEP. Filing costs MAX_STEP k-grams per marker, and a text is
#: sampled at the finest step in use, which typical ids (``user-`` and 12 hex digits:
#: 12 k-grams) already bring to 8: a coarser step would cost more than it saves.
MAX_STEP = 8
_STEPS = tuple(1 << n for n in range(MAX_STEP.bit_length()))
# False candidates from one window k-gram before its markers move (then at each doubling).
_MISS_THRESHOLD = 8


class MarkerMatch(NamedTuple, Generic[V]):
    """One occurrence of a marker in a scanned text: ``text[start:end] == marker``."""

    start: int
    end: int
    marker: str
    value: V


# A bucket: the one marker filed under a k-gram (the usual case; its offset is found
# again from its window), or several as (offset in marker, marker). A plain string
# allocates no container for the garbage collector to track: with thousands of
# markers, GC passes over per-entry tuples and lists cost more than the filing itself.
_Bucket = str | list[tuple[int, str]]


# Builds a MarkerMatch without the Python-level __new__ of a NamedTuple (hot path).
_new_match = tuple.__new__


class _Tier:
    """The markers of one sampling step, filed by k-gram."""

    __slots__ = ("buckets", "misses", "step")

    def __init__(self, step: int) -> None:
        self.step = step
        self.buckets: dict[str, _Bucket] = {}
        self.misses: dict[str, int] = {}


class MarkerIndex(Generic[V]):
    """Markers (strings of length >= ``k``) with a value each, searchable in one pass.

    Args:
        k: the k-gram length, and the minimum marker length.

    Raises:
        ValueError: ``k`` below 1.
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"MarkerIndex k must be >= 1, got {k}")
        self._k = k
        self._tiers = {step: _Tier(step) for step in _STEPS}
        self._tier_sizes = dict.fromkeys(_STEPS, 0)
        # Tiers holding markers, finest first (what find() walks).
        self._active: list[_Tier] = []
        # marker -> [value, step, window start]
        self._markers: dict[str, tuple[V, int, int]] = {}

    def __repr__(self) -> str:
        return f"MarkerIndex(k={self._k}, markers={len(self._markers)})"

    @property
    def k(self) -> int:
        return self._k

    def __len__(self) -> int:
        return len(self._markers)

    def __contains__(self, marker: object) -> bool:
        return marker in self._markers

    def __iter__(self) -> Iterator[str]:
        return iter(self._markers)

    def get(self, marker: str) -> V | None:
        """The value filed with ``marker``, or None when it is not indexed."""
        found = self._markers.get(marker)
        return None if found is None else found[0]

    # -- filing ------------------------------------------------------------------------

    def _window(self, marker: str, step: int, start: int) -> list[str]:
        k = self._k
        return [marker[i : i + k] for i in range(start, start + step)]

    def _file(self, marker: str, step: int, start: int, grams: list[str]) -> None:
        buckets = self._tiers[step].buckets
        fresh = dict.fromkeys(grams, marker)
        if len(fresh) == step and buckets.keys().isdisjoint(fresh):
            # The usual case, at C speed: new k-grams, each once in the window.
            buckets.update(fresh)
            return
        for offset, gram in enumerate(grams, start):
            bucket = buckets.get(gram)
            if bucket is None:
                buckets[gram] = marker
            else:
                entries = self._entries(gram, bucket)
                entries.append((offset, marker))
                buckets[gram] = entries

    def _unfile(self, marker: str, step: int, start: int) -> None:
        k = self._k
        buckets = self._tiers[step].buckets
        for offset in range(start, start + step):
            gram = marker[offset : offset + k]
            entries = self._entries(gram, buckets[gram])
            entries.remove((offset, marker))
            if not entries:
                del buckets[gram]
            else:
                buckets[gram] = entries  # stays a list: cheap, and offsets stay exact

    def _entries(self, gram: str, bucket: _Bucket) -> list[tuple[int, str]]:
        """A bucket as a new list of (offset, marker)."""
        if not isinstance(bucket, str):
            return list(bucket)
        window = self._markers[bucket][2]
        return [(bucket.find(gram, window), bucket)]

    def _quietest_window(self, marker: str, step: int) -> int:
        """The window start whose k-grams caused the fewest false candidates so far
        (the latest such window on ties)."""
        k = self._k
        misses = self._tiers[step].misses
        per_gram = [misses.get(marker[i : i + k], 0) for i in range(len(marker) - k + 1)]
        total = sum(per_gram[:step])
        best_start, best = 0, total
        for start in range(1, len(per_gram) - step + 1):
            total += per_gram[start + step - 1] - per_gram[start - 1]
            if total <= best:
                best_start, best = start, total
        return best_start

    def _set_active(self) -> None:
        self._active = [self._tiers[s] for s in _STEPS if self._tier_sizes[s]]

    def add(self, marker: str, value: V) -> bool:
        """File ``marker`` with ``value`` (replacing the value if already filed).

        Returns:
            False when ``marker`` is shorter than ``k`` (it cannot be indexed), else True.
        """
        k = self._k
        if len(marker) < k:
            return False
        known = self._markers.get(marker)
        if known is not None:
            self._markers[marker] = (value, known[1], known[2])
            return True
        span = len(marker) - k + 1
        step = MAX_STEP if span >= MAX_STEP else 1 << (span.bit_length() - 1)
        start = span - step  # the tail window
        grams = [marker[i : i + k] for i in range(start, span)]
        misses = self._tiers[step].misses
        if misses and not misses.keys().isdisjoint(grams):
            start = self._quietest_window(marker, step)
            grams = self._window(marker, step, start)
        self._markers[marker] = (value, step, start)  # before filing: buckets read it
        self._file(marker, step, start, grams)
        self._tier_sizes[step] += 1
        if self._tier_sizes[step] == 1:
            self._set_active()
        return True

    def discard(self, marker: str) -> None:
        """Forget ``marker`` if filed."""
        known = self._markers.get(marker)
        if known is None:
            return
        _, step, start = known
        self._unfile(marker, step, start)
        del self._markers[marker]
        self._tier_sizes[step] -= 1
        if not self._tier_sizes[step]:
            self._set_active()

    def _move_off(self, tier: _Tier, gram: str) -> None:
        """Re-file the markers filed under ``gram``, which keeps missing, elsewhere."""
        bucket = tier.buckets.get(gram)
        if bucket is None:
            return
        for _, marker in self._entries(gram, bucket):
            value, step, start = self._markers[marker]
            self._unfile(marker, step, start)
            start = self._quietest_window(marker, step)
            self._markers[marker] = (value, step, start)
            self._file(marker, step, start, self._window(marker, step, start))

    # -- scanning ----------------------------------------------------------------------

    def find(self, text: str, relevant: Callable[[V], bool] | None = None) -> list[MarkerMatch[V]]:
        """Every occurrence of every marker in ``text`` (overlaps included), unordered.

        Args:
            text: the text to scan.
            relevant: if given, and no marker that may occur in ``text`` has a value it
                accepts, return [] at once without verifying the candidates (the
                detector's clean case: only the receiver's own markers are candidates).
        """
        k = self._k
        positions = len(text) - k + 1
        active = self._active
        if positions < 1 or not active:
            return []
        finest = active[0].step
        # The text's k-grams at the finest step in use; coarser tiers take every n-th.
        sampled = [text[i : i + k] for i in range(0, positions, finest)]
        hits: list[tuple[_Tier, str]] = []
        for tier in active:
            step = tier.step
            anchors = tier.buckets.keys() & (
                sampled if step == finest else sampled[:: step // finest]
            )
            hits.extend((tier, gram) for gram in anchors)
        if not hits:
            return []
        markers = self._markers
        if relevant is not None:
            for tier, gram in hits:
                bucket = tier.buckets[gram]
                if isinstance(bucket, str):
                    if relevant(markers[bucket][0]):
                        break
                elif any(relevant(markers[marker][0]) for _, marker in bucket):
                    break
            else:
                return []
        found: list[MarkerMatch[V]] = []
        noisy: list[tuple[_Tier, str]] = []
        # The hot path: verification is inlined (a call per candidate costs as much).
        for tier, gram in hits:
            step = tier.step
            bucket = tier.buckets[gram]
            if isinstance(bucket, str):
                entries: Iterable[tuple[int, str]] = (
                    (bucket.find(gram, markers[bucket][2]), bucket),
                )
            else:
                entries = bucket
            misses = 0
            at = text.find(gram)
            while at >= 0:
                if not at % step:  # only sampled positions: each occurrence seen once
                    for offset, marker in entries:
                        start = at - offset
                        if start >= 0 and text.startswith(marker, start):
                            found.append(
                                _new_match(
                                    MarkerMatch,
                                    (start, start + len(marker), marker, markers[marker][0]),
                                )
                            )
                        else:
                            misses += 1
                at = text.find(gram, at + 1)
            if misses and self._missed(tier, gram, misses):
                noisy.append((tier, gram))
        # Moved after the scan, so no marker is missed or seen twice in this text.
        for tier, gram in noisy:
            self._move_off(tier, gram)
        return found

    @staticmethod
    def _missed(tier: _Tier, gram: str, misses: int) -> bool:
        """Count false candidates of ``gram``; True when its markers should move: on
        crossing the threshold and at each doubling after it, so a k-gram common to
        every window of a marker costs O(log misses) moves, not one per frame."""
        total = tier.misses.get(gram, 0) + misses
        tier.misses[gram] = total
        return total >= _MISS_THRESHOLD and (total - misses).bit_length() < total.bit_length()
