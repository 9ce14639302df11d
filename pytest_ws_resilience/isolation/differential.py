"""Differential isolation: each user's stream alone, against the same user's stream in
a crowd.

Pure, no I/O. A leak that carries no other user's string (an event relabelled with the
receiver's room, a move of another game carrying only integers) shows no marker, but
it does change what the receiver gets: run the same per-user scenario for each user
alone, then for all of them at once, and each user's concurrent stream must be its solo
stream. What legitimately differs between two runs (ids, timestamps, counters) is
normalised away first (`normalise_frame`); what remains is compared as a multiset and
as a sequence (`compare_streams`):

- a frame only in the concurrent stream is *crosstalk* (another user's traffic);
- a frame only in the solo stream is *loss*;
- frames in both, in another order, are an *order* bug.

The findings are `RuleViolation` records and the result (`DifferentialResult`) is a
`FrameRule`, so the test's `IsolationGuard` reports them, counts them and fails the
test on them as on any other isolation finding. The runs themselves (clients, the
concurrency, waiting for the streams to go quiet) are `isolation/runs.py`.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.isolation.rules import RuleViolation, show_rule_frame, violation_lines

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.eventlog import LogRecord

__all__ = [
    "COUNTER_KEYS",
    "DifferentialResult",
    "FrameNormaliser",
    "StreamDiff",
    "StreamOutcome",
    "canonical",
    "compare_streams",
    "normalise_frame",
    "normalise_stream",
]

#: ``frame -> frame``: a user's hook on each received frame (parsed JSON, else text,
#: else bytes), before the default normalisation; returning None drops the frame
#: (heartbeats, presence broadcasts every user legitimately gets).
FrameNormaliser = Callable[[Any], Any]

#: Keys whose values are counters, ids or times (shell patterns on the key name): their
#: values differ between two runs of the same scenario and are replaced by a placeholder.
COUNTER_KEYS: tuple[str, ...] = (
    "seq",
    "*_seq",
    "head",
    "id",
    "*_id",
    "ts",
    "*_ts",
    "timestamp",
    "time",
    "*_time",
    "*_at",
)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A run of 12+ hex digits holding both a digit and a letter: a generated id, not a word.
_HEX = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
# Epoch times in s, ms or us between 2001 and 2096: no counter of a test gets that big.
_EPOCH_RANGES = ((1e9, 4e9), (1e12, 4e12), (1e15, 4e15))

ID, TIME, COUNT = "<id>", "<time>", "<n>"
# How many lines of diff one user's finding shows, and how many equal frames around.
_DIFF_LINES = 40
_CONTEXT = 2
_FRAMES_SHOWN = 3
_FRAME_CHARS = 160


def _is_epoch(value: float) -> bool:
    return any(low <= abs(value) < high for low, high in _EPOCH_RANGES)


def _normalise_text(text: str) -> str:
    text = _UUID.sub(ID, text)
    text = _ISO.sub(TIME, text)
    return _HEX.sub(ID, text)


def _counter_key(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def normalise_frame(
    frame: Any,
    *,
    ignore: Iterable[str] = (),
    counter_keys: Sequence[str] = COUNTER_KEYS,
) -> Any:
    """``frame`` with what legitimately varies between runs replaced by placeholders.

    Values under counter-like keys (`COUNTER_KEYS`: ``seq``, ``*_id``, ``ts``...) become
    ``<n>`` (numbers), else ``<id>``; uuids and hex ids inside strings become ``<id>``,
    ISO timestamps ``<time>``, numbers in the epoch range ``<time>``. Keys in ``ignore``
    are removed at any depth. Text and bytes frames get the same string rules.
    """
    ignored = frozenset(ignore)

    def walk(value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            return {str(k): walk(v, str(k)) for k, v in value.items() if str(k) not in ignored}
        if isinstance(value, list | tuple):
            return [walk(item, key) for item in value]
        if key is not None and _counter_key(key, counter_keys) and value is not None:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return TIME if _is_epoch(value) else COUNT
            return ID
        if isinstance(value, str):
            return _normalise_text(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and _is_epoch(value):
            return TIME
        if isinstance(value, bytes | bytearray):
            return _normalise_text(bytes(value).hex())
        return value

    return walk(frame, None)


def canonical(frame: Any) -> str:
    """One frame as one comparable line: sorted-key JSON (text as a JSON string)."""
    if isinstance(frame, bytes | bytearray):
        return "bytes:" + bytes(frame).hex()
    return json.dumps(frame, sort_keys=True, separators=(",", ":"), default=str)


def normalise_stream(
    frames: Iterable[Any],
    *,
    normalise: FrameNormaliser | None = None,
    ignore: Iterable[str] = (),
    counter_keys: Sequence[str] = COUNTER_KEYS,
) -> list[str]:
    """A received stream as comparable lines: the user's hook, then `normalise_frame`,
    then `canonical`; frames the hook maps to None are dropped."""
    ignored = tuple(ignore)
    lines: list[str] = []
    for frame in frames:
        if normalise is not None:
            frame = normalise(frame)
            if frame is None:
                continue
        lines.append(canonical(normalise_frame(frame, ignore=ignored, counter_keys=counter_keys)))
    return lines


def compare_streams(
    solo: Sequence[str], concurrent: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """``(extra, missing, reordered)`` of a concurrent stream against its solo stream.

    ``extra``: frames of the concurrent stream beyond the solo one's (as a multiset: the
    same frame twice where the solo run had it once is one extra). ``missing``: the
    reverse. ``reordered``: of the frames both have, those the concurrent run moved (the
    fewest that, moved back, restore the solo order).
    """
    solo_count, concurrent_count = Counter(solo), Counter(concurrent)
    extra = list((concurrent_count - solo_count).elements())
    missing = list((solo_count - concurrent_count).elements())
    shared = solo_count & concurrent_count
    solo_common, concurrent_common = _in_order(shared, solo), _in_order(shared, concurrent)
    matcher = difflib.SequenceMatcher(None, solo_common, concurrent_common, autojunk=False)
    in_place = sum(block.size for block in matcher.get_matching_blocks())
    reordered: list[str] = []
    if in_place < len(concurrent_common):
        kept = [False] * len(concurrent_common)
        for block in matcher.get_matching_blocks():
            for offset in range(block.size):
                kept[block.b + offset] = True
        reordered = [line for line, ok in zip(concurrent_common, kept, strict=True) if not ok]
    # Keep the order in which the concurrent stream showed them.
    return _in_order(extra, concurrent), _in_order(missing, solo), reordered


def _in_order(found: Iterable[str], stream: Sequence[str]) -> list[str]:
    """The frames of ``found`` (a multiset: a list or a Counter) in ``stream``'s order."""
    left = Counter(found)
    ordered: list[str] = []
    for line in stream:
        if left[line] > 0:
            left[line] -= 1
            ordered.append(line)
    return ordered


def _shown(line: str) -> str:
    text = show_rule_frame(line)
    return text if len(text) <= _FRAME_CHARS else text[: _FRAME_CHARS - 3] + "..."


def diff_lines(solo: Sequence[str], concurrent: Sequence[str]) -> list[str]:
    """A readable diff, solo -> concurrent: ``-`` only alone, ``+`` only in the crowd,
    two frames of context, long runs of equal frames folded; redacted, truncated."""
    matcher = difflib.SequenceMatcher(None, list(solo), list(concurrent), autojunk=False)
    lines: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            same = list(solo[i1:i2])
            if len(same) > 2 * _CONTEXT + 1:
                head = same[:_CONTEXT] if lines else []
                tail = same[-_CONTEXT:] if i2 < len(solo) or j2 < len(concurrent) else []
                lines.extend(f"    {_shown(s)}" for s in head)
                lines.append(f"    ... {len(same) - len(head) - len(tail)} equal frame(s)")
                lines.extend(f"    {_shown(s)}" for s in tail)
            else:
                lines.extend(f"    {_shown(s)}" for s in same)
            continue
        lines.extend(f"  - {_shown(s)}" for s in solo[i1:i2])
        lines.extend(f"  + {_shown(s)}" for s in concurrent[j1:j2])
    if len(lines) > _DIFF_LINES:
        cut = len(lines) - _DIFF_LINES
        lines = [*lines[:_DIFF_LINES], f"    ... {cut} more diff line(s)"]
    return lines


@dataclass(frozen=True)
class StreamOutcome:
    """What one user's client received in one run, before comparing.

    Attributes:
        index: the user's index in the scenario.
        receiver: the user's id (or the client's name).
        connection: the client's name and connection id.
        frames: the normalised stream (`normalise_stream`).
        error: the scenario's exception, in one line; None when it returned.
    """

    index: int
    receiver: str
    connection: str
    frames: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class StreamDiff:
    """One user's concurrent stream against its solo stream."""

    index: int
    receiver: str
    connection: str
    solo: tuple[str, ...]
    concurrent: tuple[str, ...]
    extra: tuple[str, ...]
    missing: tuple[str, ...]
    reordered: tuple[str, ...]
    error: str | None = None

    @classmethod
    def of(cls, solo: StreamOutcome, concurrent: StreamOutcome) -> StreamDiff:
        extra, missing, reordered = compare_streams(solo.frames, concurrent.frames)
        return cls(
            index=concurrent.index,
            receiver=concurrent.receiver,
            connection=concurrent.connection,
            solo=solo.frames,
            concurrent=concurrent.frames,
            extra=tuple(extra),
            missing=tuple(missing),
            reordered=tuple(reordered),
            error=concurrent.error,
        )

    @property
    def ok(self) -> bool:
        return not (self.extra or self.missing or self.reordered or self.error)

    def violations(self, rule: str) -> list[RuleViolation]:
        """The findings of this user, one per kind; the first carries the diff."""
        found: list[RuleViolation] = []
        kinds = (
            ("crosstalk", self.extra, "frame(s) in the concurrent run, not in the solo run"),
            ("lost", self.missing, "frame(s) of the solo run missing from the concurrent run"),
            ("out_of_order", self.reordered, "frame(s) came in another order than alone"),
        )
        detail = (
            f"user {self.index}: {len(self.solo)} frame(s) alone, {len(self.concurrent)} in the "
            "crowd; diff, solo -> concurrent (normalised):",
            *diff_lines(self.solo, self.concurrent),
        )
        for kind, frames, what in kinds:
            if not frames:
                continue
            found.append(
                RuleViolation(
                    kind=kind,
                    rule=rule,
                    receiver=self.receiver,
                    connection=self.connection,
                    message=f"{len(frames)} {what}",
                    frames=tuple(_shown(f) for f in frames[:_FRAMES_SHOWN]),
                    detail=() if found else detail,
                )
            )
        if self.error is not None:
            found.append(
                RuleViolation(
                    kind="scenario_failed",
                    rule=rule,
                    receiver=self.receiver,
                    connection=self.connection,
                    message=f"the scenario failed in the concurrent run only: {self.error}",
                    detail=() if found else detail,
                )
            )
        return found


@dataclass(eq=False)  # a rule is itself: the guard tells rules apart by identity
class DifferentialResult:
    """The outcome of ``ws_isolation.differential(...)``: one `StreamDiff` per user.

    A `FrameRule` whose findings were all made when the runs ended (it judges no frame
    as it comes): the guard adds it with `IsolationGuard.add_rule`, so its violations
    are in ``ws_isolation.report()``, in ``violation_count`` and in the test's verdict.
    """

    scenario: str
    users: int
    streams: tuple[StreamDiff, ...]
    notes: tuple[str, ...] = ()
    _violations: list[RuleViolation] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self._violations:
            for stream in self.streams:
                self._violations.extend(stream.violations(self.name))

    # -- what a test reads -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"differential '{self.scenario}' ({self.users} users, solo vs concurrent)"

    @property
    def ok(self) -> bool:
        """True when every user's concurrent stream equals its solo stream."""
        return not self._violations

    @property
    def violations(self) -> list[RuleViolation]:
        return self._violations

    @property
    def checks(self) -> int:
        """Frames compared (both runs)."""
        return sum(len(s.solo) + len(s.concurrent) for s in self.streams)

    def report(self) -> str:
        """Every finding with its diff, or one line when the streams agree."""
        if self.ok:
            return f"{self.name}: clean ({self.checks} frames compared)"
        lines = [f"{self.name}: {len(self._violations)} finding(s):"]
        lines.extend(violation_lines(self._violations))
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()

    # -- FrameRule: everything was judged when the runs ended ------------------------------

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        """Frames after the runs are not this rule's."""

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        """Nothing to learn from what is sent."""

    def on_canary(self, client: WsClient, marker: str) -> None:
        """Canaries are the detector's."""

    def finish(self) -> None:
        """Judged already, when the runs ended."""

    def nothing_checked(self) -> str | None:
        if self.checks:
            return None
        return "no frame came in any run (the scenario sent nothing, or nothing answered)"
