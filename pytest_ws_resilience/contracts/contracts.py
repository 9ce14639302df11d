"""Event contracts: which events a run must emit, in what order, how often and how fast.

Pure logic, no I/O. An `EventContract` describes one protocol's runs by field names
only (the field naming an event, the field correlating a run's events), so it fits
servers whose protocol this package does not know. A `ContractChecker` is fed received
frames one at a time while a client waits: ``feed`` only selects and records (O(1) per
frame, it runs on every frame), and ``finish`` judges the whole run once:

- duplicated: a non-repeatable event seen twice, or a repeatable one repeated after
  other events came in between;
- out of order: the fewest events whose removal leaves the rest in contract order (the
  complement of a longest increasing subsequence), so one displaced event is reported
  once instead of as a cascade;
- late: an event first seen after its budget, measured from the run's start;
- missing: a required event not seen by the terminal event (or by the end of the wait).

`WsClient.expect_contract` is the asyncio glue that feeds a checker from the event log.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from pytest_ws_resilience.errors import ContractViolationError
from pytest_ws_resilience.redaction import redact

__all__ = [
    "AGENT_EVENTS",
    "ContractChecker",
    "ContractResult",
    "ContractViolation",
    "EventContract",
    "ObservedEvent",
    "ViolationKind",
]

ViolationKind = Literal["missing", "duplicated", "out_of_order", "late"]

#: Why a one-shot `EventContract.check` ended without the terminal event.
_EVENTS_ENDED = "the events ended before the terminal event"


def _names(value: str | Iterable[str], what: str) -> frozenset[str]:
    """A set of event names; a lone string is one name, not a set of characters."""
    names = frozenset((value,)) if isinstance(value, str) else frozenset(value)
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"EventContract {what} must be event names, got {name!r}")
    return names


def _budget(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"EventContract budget for {name!r} must be seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"EventContract budget for {name!r} must be >= 0 seconds, got {value}")
    return float(value)


@dataclasses.dataclass(frozen=True, init=False, repr=False)
class EventContract:
    """What one run of a protocol must emit: required events, order, repeats, timing.

    Args:
        events: the events of a run, in their required order (a list is accepted).
        field: the field of a frame that names its event (``type``, ``event``, ...).
        correlation: the field that tells runs apart (e.g. ``run_id``). When set,
            interleaved runs are checked separately and frames without it are ignored.
        terminal: the event that ends a run; default the last of ``events``.
        repeatable: events that may occur several times in a row (e.g. thinking steps).
        optional: events that may be absent (still checked for order and repeats).
        budgets: per-event time budgets in seconds from the run's start; an event first
            seen later than its budget is late.
        ordered: False to check presence, repeats and budgets but not order.
        name: shown in transcripts and errors.

    Raises:
        ValueError: no events, duplicate events, or a terminal, repeatable, optional or
            budget name that is not among the events; a negative budget; an optional
            terminal; with ``ordered``, a terminal that is not the last event (events
            after it could never be seen).
    """

    events: tuple[str, ...]
    field: str
    correlation: str | None
    terminal: str | None
    repeatable: frozenset[str]
    optional: frozenset[str]
    # A mapping is not hashable; equal contracts still hash equal without it.
    budgets: Mapping[str, float] = dataclasses.field(hash=False)
    ordered: bool
    name: str

    def __init__(
        self,
        events: Iterable[str],
        *,
        field: str = "type",
        correlation: str | None = None,
        terminal: str | None = None,
        repeatable: str | Iterable[str] = (),
        optional: str | Iterable[str] = (),
        budgets: Mapping[str, float] | None = None,
        ordered: bool = True,
        name: str = "",
    ) -> None:
        ordered_events = (events,) if isinstance(events, str) else tuple(events)
        if not ordered_events:
            raise ValueError("EventContract needs at least one event")
        positions: dict[str, int] = {}
        for position, event in enumerate(ordered_events):
            if not isinstance(event, str) or not event:
                raise ValueError(f"EventContract events must be non-empty strings, got {event!r}")
            if event in positions:
                raise ValueError(f"EventContract events must be unique; {event!r} is listed twice")
            positions[event] = position
        if not isinstance(field, str) or not field:
            raise ValueError(f"EventContract field must be a non-empty string, got {field!r}")
        if correlation is not None and (not isinstance(correlation, str) or not correlation):
            raise ValueError(
                f"EventContract correlation must be a field name or None, got {correlation!r}"
            )
        repeatable_set = _names(repeatable, "repeatable")
        optional_set = _names(optional, "optional")
        budget_map = {key: _budget(key, value) for key, value in (budgets or {}).items()}
        for what, chosen in (
            ("terminal", () if terminal is None else (terminal,)),
            ("repeatable", sorted(repeatable_set)),
            ("optional", sorted(optional_set)),
            ("budget", sorted(budget_map)),
        ):
            unknown = [event for event in chosen if event not in positions]
            if unknown:
                raise ValueError(
                    f"EventContract {what} {', '.join(map(repr, unknown))} not among the "
                    f"events {list(ordered_events)}"
                )
        final = ordered_events[-1] if terminal is None else terminal
        if final in optional_set:
            raise ValueError(f"EventContract terminal {final!r} cannot be optional")
        if ordered and final != ordered_events[-1]:
            raise ValueError(
                f"EventContract terminal {final!r} must be the last event of an ordered "
                f"contract (events after it could never be seen); reorder the events or "
                f"pass ordered=False"
            )
        setattr_ = object.__setattr__  # frozen: assign through object
        setattr_(self, "events", ordered_events)
        setattr_(self, "field", field)
        setattr_(self, "correlation", correlation)
        setattr_(self, "terminal", terminal)
        setattr_(self, "repeatable", repeatable_set)
        setattr_(self, "optional", optional_set)
        setattr_(self, "budgets", MappingProxyType(budget_map))
        setattr_(self, "ordered", ordered)
        setattr_(self, "name", name)
        # Derived once: the checker looks these up on every frame.
        setattr_(self, "_positions", positions)
        setattr_(self, "_terminal", final)

    # Derived in __init__; not part of equality, hash or repr.
    _positions: dict[str, int] = dataclasses.field(init=False, compare=False, hash=False)
    _terminal: str = dataclasses.field(init=False, compare=False, hash=False)

    def __repr__(self) -> str:
        parts = [f"events={list(self.events)!r}", f"field={self.field!r}"]
        if self.correlation is not None:
            parts.append(f"correlation={self.correlation!r}")
        if self.terminal is not None:
            parts.append(f"terminal={self.terminal!r}")
        if self.repeatable:
            parts.append(f"repeatable={sorted(self.repeatable)!r}")
        if self.optional:
            parts.append(f"optional={sorted(self.optional)!r}")
        if self.budgets:
            parts.append(f"budgets={dict(self.budgets)!r}")
        if not self.ordered:
            parts.append("ordered=False")
        if self.name:
            parts.append(f"name={self.name!r}")
        return f"EventContract({', '.join(parts)})"

    @property
    def terminal_event(self) -> str:
        """The event that ends a run: ``terminal``, or the last of ``events``."""
        return self._terminal

    @property
    def label(self) -> str:
        """How transcripts name the contract: its name, else its events."""
        return self.name or " -> ".join(self.events)

    def with_changes(self, **changes: Any) -> EventContract:
        """A copy with some fields replaced, e.g. ``with_changes(budgets={...})``.

        Contracts are immutable; the copy is validated again.
        """
        return dataclasses.replace(self, **changes)

    def checker(
        self,
        correlation: Any = None,
        *,
        skip_runs: frozenset[Any] = frozenset(),
        started_at: float | None = None,
    ) -> ContractChecker:
        """An incremental checker of one run (see `ContractChecker`)."""
        return ContractChecker(self, correlation, skip_runs=skip_runs, started_at=started_at)

    def check(
        self,
        events: Iterable[Mapping[str, Any]],
        *,
        correlation: Any = None,
        times: Sequence[float] | None = None,
    ) -> ContractResult:
        """Check the first run (or the run ``correlation``) among ``events``; never raises
        for violations.

        Args:
            events: frames in the order received.
            correlation: the run to check; default the first one seen.
            times: receive time of each frame (seconds, any origin), for budgets;
                without them every offset is 0 and nothing is late.

        Raises:
            ValueError: ``times`` is not as long as ``events``.
        """
        frames = list(events)
        if times is not None and len(times) != len(frames):
            raise ValueError(f"check() got {len(frames)} events but {len(times)} times")
        checker = self.checker(correlation)
        for index, frame in enumerate(frames):
            if checker.feed(frame, 0.0 if times is None else times[index]):
                return checker.finish()
        return checker.finish(reason=_EVENTS_ENDED)


@dataclasses.dataclass(frozen=True, slots=True)
class ObservedEvent:
    """One frame of the checked run: its event name, offset from the run's start, the frame."""

    name: str
    offset: float
    event: Mapping[str, Any]

    def __repr__(self) -> str:
        return redact(f"ObservedEvent({self.name!r}, +{self.offset:.3f}s, {self.event!r})")


@dataclasses.dataclass(frozen=True, slots=True)
class ContractViolation:
    """One broken rule.

    Attributes:
        kind: ``missing``, ``duplicated``, ``out_of_order`` or ``late``.
        event: the event concerned.
        detail: what happened, one line (for ``missing``: why the check stopped looking).
        index: position in `ContractResult.observed` of the frame showing the problem;
            None for a missing event.
    """

    kind: ViolationKind
    event: str
    detail: str
    index: int | None = None

    def __str__(self) -> str:
        if self.kind == "missing":
            return f"missing {self.event}: {self.detail}"
        return f"{self.kind.replace('_', ' ')}: {self.detail}"


@dataclasses.dataclass(frozen=True, repr=False)
class ContractResult:
    """The verdict on one run: true when no rule was broken.

    Attributes:
        ok: no violations.
        contract: the contract checked.
        run: the correlation value of the run checked (None without correlation, or
            when no event of any run was seen).
        violations: broken rules, in the order they show in the transcript.
        observed: the run's frames, in the order received, through the terminal event.
        reason: why the wait ended before the terminal event; None when it was seen.
    """

    ok: bool
    contract: EventContract
    run: Any
    violations: tuple[ContractViolation, ...]
    observed: tuple[ObservedEvent, ...]
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        problems = ", ".join(f"{v.kind} {v.event}" for v in self.violations)
        return redact(
            f"ContractResult(ok={self.ok}, contract={self.contract.label!r}, run={self.run!r}, "
            f"violations=[{problems}], observed={len(self.observed)})"
        )

    def __str__(self) -> str:
        return self.transcript()

    def raise_for_violations(self) -> None:
        """Raise `ContractViolationError` (with the transcript) unless the run was ok."""
        if not self.ok:
            raise ContractViolationError(self)

    def transcript(self) -> str:
        """Expected vs observed, side by side, one line per step, problems marked."""
        return redact(_transcript(self))


class ContractChecker:
    """Checks one run of ``contract`` from frames fed in the order received.

    The run is ``correlation`` when given, else the first correlation value seen that
    is not in ``skip_runs`` (runs a client already checked). Frames that are not
    mappings, whose event field is not one of the contract's events (pings, pongs,
    greetings), or, with correlation, that lack the field or belong to another run,
    are ignored.

    Args:
        contract: the contract.
        correlation: the run to check; None: the first one seen.
        skip_runs: correlation values not to pick.
        started_at: when the check started (same clock as the ``at`` of ``feed``);
            the run's start is the earlier of this and its first frame.

    Raises:
        ValueError: ``correlation`` given to a contract without a correlation field.
    """

    __slots__ = (
        "_contract",
        "_done",
        "_field",
        "_frames",
        "_key",
        "_names",
        "_positions",
        "_run",
        "_run_chosen",
        "_skip_runs",
        "_start",
        "_started_at",
        "_terminal",
        "_times",
        "_wanted",
    )

    def __init__(
        self,
        contract: EventContract,
        correlation: Any = None,
        *,
        skip_runs: frozenset[Any] = frozenset(),
        started_at: float | None = None,
    ) -> None:
        if correlation is not None and contract.correlation is None:
            raise ValueError(
                f"correlation={correlation!r} given, but contract {contract.label!r} has no "
                f"correlation field"
            )
        self._contract = contract
        self._field = contract.field
        self._key = contract.correlation
        self._positions = contract._positions
        self._terminal = contract._terminal
        self._wanted = correlation
        self._skip_runs = skip_runs
        self._started_at = started_at
        self._run: Any = correlation
        self._run_chosen = correlation is not None
        self._start: float | None = None
        self._done = False
        self._names: list[str] = []
        self._times: list[float] = []
        self._frames: list[Mapping[str, Any]] = []

    def __repr__(self) -> str:
        return redact(
            f"ContractChecker(contract={self._contract.label!r}, run={self._run!r}, "
            f"seen={len(self._names)}, done={self._done})"
        )

    @property
    def run(self) -> Any:
        """The correlation value of the run being checked; None until one is picked."""
        return self._run

    @property
    def done(self) -> bool:
        """True once the run's terminal event was fed."""
        return self._done

    def feed(self, event: Any, at: float) -> bool:
        """Take one received frame; True once the run's terminal event has arrived.

        Args:
            event: the parsed frame (anything; non-mappings are ignored).
            at: its receive time in seconds (e.g. ``time.monotonic()``).
        """
        if self._done:
            return True
        if not isinstance(event, Mapping):
            return False
        name = event.get(self._field)
        if not isinstance(name, str) or name not in self._positions:
            return False
        key = self._key
        if key is not None:
            if key not in event:
                return False
            value = event[key]
            if self._run_chosen:
                if value != self._run:
                    return False
            else:
                try:
                    if value is None or value in self._skip_runs:
                        return False
                except TypeError:  # an unhashable value cannot name a run
                    return False
                self._run = value
                self._run_chosen = True
        if self._start is None:
            started = self._started_at
            self._start = at if started is None or at < started else started
        self._names.append(name)
        self._times.append(at)
        self._frames.append(event)
        if name == self._terminal:
            self._done = True
        return self._done

    def finish(self, *, reason: str | None = None) -> ContractResult:
        """Judge the run fed so far.

        Args:
            reason: why the wait ended, when the terminal event was not fed (e.g.
                ``"terminal event not seen within recv_timeout=10s (profile local)"``);
                the terminal and every other unseen required event are then missing,
                with this reason.
        """
        if self._done:
            reason = None
        elif reason is None:
            reason = "terminal event not seen"
        start = self._start if self._start is not None else 0.0
        observed = tuple(
            ObservedEvent(name, at - start, frame)
            for name, at, frame in zip(self._names, self._times, self._frames, strict=True)
        )
        violations = _judge(self._contract, observed, reason)
        return ContractResult(
            ok=not violations,
            contract=self._contract,
            run=self._run if self._run_chosen else None,
            violations=violations,
            observed=observed,
            reason=reason,
        )


# -- judging (pure functions over a finished run) ------------------------------------


def _kept_in_order(positions: Sequence[int]) -> set[int]:
    """Indexes of a longest strictly increasing subsequence of ``positions``.

    Patience sorting, O(n log n). Of equally long answers it keeps the one with the
    smallest values, so of two swapped events the one that came early is reported.
    """
    tails: list[int] = []  # tails[k]: smallest last value of an increasing run of k + 1
    tail_index: list[int] = []
    previous: list[int] = [-1] * len(positions)
    for index, position in enumerate(positions):
        k = bisect.bisect_left(tails, position)
        if k == len(tails):
            tails.append(position)
            tail_index.append(index)
        else:
            tails[k] = position
            tail_index[k] = index
        previous[index] = tail_index[k - 1] if k else -1
    kept: set[int] = set()
    index = tail_index[-1] if tail_index else -1
    while index >= 0:
        kept.add(index)
        index = previous[index]
    return kept


def _judge(
    contract: EventContract, observed: Sequence[ObservedEvent], reason: str | None
) -> tuple[ContractViolation, ...]:
    """Every rule ``observed`` breaks, in transcript order.

    Args:
        contract: the contract.
        observed: the run's frames in the order received.
        reason: why the wait ended before the terminal event; None when it was seen.
    """
    found: list[tuple[float, ContractViolation]] = []
    first_seen: dict[str, int] = {}
    counts: dict[str, int] = {}
    first_duplicate: dict[str, int] = {}
    previous: str | None = None
    for index, item in enumerate(observed):
        name = item.name
        counts[name] = counts.get(name, 0) + 1
        if name not in first_seen:
            first_seen[name] = index
        elif name not in contract.repeatable:
            first_duplicate.setdefault(name, index)
        elif name != previous and name not in first_duplicate:
            first_duplicate[name] = index
            detail = f"{name} repeated after {previous}; repeats must be consecutive"
            found.append((index, ContractViolation("duplicated", name, detail, index)))
        previous = name
    for name, index in first_duplicate.items():
        if name not in contract.repeatable:
            detail = f"{name} seen {counts[name]} times"
            found.append((index, ContractViolation("duplicated", name, detail, index)))

    if contract.ordered and len(first_seen) > 1:
        firsts = sorted(first_seen.values())  # arrival order of each event's first frame
        positions = [contract._positions[observed[i].name] for i in firsts]
        kept = _kept_in_order(positions)
        kept_order = sorted(kept)
        for k, index in enumerate(firsts):
            if k in kept:
                continue
            name, position = observed[index].name, positions[k]
            before = [
                observed[firsts[j]].name for j in kept_order if j > k and positions[j] < position
            ]
            if before:
                detail = f"{name} before {', '.join(before)}"
            else:
                after = [
                    observed[firsts[j]].name
                    for j in kept_order
                    if j < k and positions[j] > position
                ]
                detail = f"{name} after {', '.join(after)}"
            found.append((index, ContractViolation("out_of_order", name, detail, index)))

    for name, budget in contract.budgets.items():
        index = first_seen.get(name, -1)
        if index >= 0 and observed[index].offset > budget:
            detail = f"{name} at +{observed[index].offset:.3f}s, over its {budget:g}s budget"
            found.append((index, ContractViolation("late", name, detail, index)))

    missing_detail = reason or f"not seen before the terminal {contract.terminal_event}"
    end = len(observed)
    for position, name in enumerate(contract.events):
        if name not in first_seen and name not in contract.optional:
            found.append((end + position, ContractViolation("missing", name, missing_detail)))
    found.sort(key=lambda pair: pair[0])  # stable: same-frame problems keep rule order
    return tuple(violation for _, violation in found)


# -- the transcript ------------------------------------------------------------------


def _expected_label(contract: EventContract, name: str) -> str:
    repeatable, optional = name in contract.repeatable, name in contract.optional
    return name + (
        "*" if repeatable and optional else "+" if repeatable else "?" if optional else ""
    )


def _marks(violations: Iterable[ContractViolation]) -> str:
    return "; ".join(f"{v.kind.replace('_', ' ')}: {v.detail}" for v in violations)


def _transcript(result: ContractResult) -> str:
    """Lay the contract's steps beside the observed frames.

    Consecutive frames of one event make one observed step (``x2``). Steps pair up
    when they match; an expected event never seen shows as ``(missing)``; a frame of
    an event already shown (a duplicate, a repeat) gets a line of its own; otherwise
    steps pair by position, which shows a swap as two crossed lines.
    """
    contract = result.contract
    observed = result.observed
    groups: list[tuple[str, int, int]] = []  # (name, first index, count)
    for index, item in enumerate(observed):
        if groups and groups[-1][0] == item.name:
            name, first, count = groups[-1]
            groups[-1] = (name, first, count + 1)
        else:
            groups.append((item.name, index, 1))
    by_index: dict[int, list[ContractViolation]] = {}
    missing: dict[str, list[ContractViolation]] = {}
    for violation in result.violations:
        if violation.index is None:
            missing.setdefault(violation.event, []).append(violation)
        else:
            by_index.setdefault(violation.index, []).append(violation)

    rows: list[tuple[str, str, str, str]] = []  # expected, observed, offset, marks

    def observed_row(expected: str, group: tuple[str, int, int]) -> None:
        name, first, count = group
        label = name if count == 1 else f"{name} x{count}"
        problems = [v for i in range(first, first + count) for v in by_index.get(i, ())]
        rows.append((expected, label, f"+{observed[first].offset:.3f}s", _marks(problems)))

    events = contract.events
    seen = {item.name for item in observed}
    shown: set[str] = set()
    i = j = 0
    while i < len(events) or j < len(groups):
        expected = events[i] if i < len(events) else None
        group = groups[j] if j < len(groups) else None
        if expected is not None and group is not None and group[0] == expected:
            observed_row(_expected_label(contract, expected), group)
            shown.add(expected)
            i, j = i + 1, j + 1
        elif expected is not None and expected not in seen:
            label = "(missing)" if expected in missing else "(not seen)"
            rows.append(
                (_expected_label(contract, expected), label, "", _marks(missing.get(expected, ())))
            )
            i += 1
        elif group is not None and (expected is None or group[0] in shown):
            observed_row("", group)
            shown.add(group[0])
            j += 1
        elif group is not None and expected is not None:
            observed_row(_expected_label(contract, expected), group)
            shown.add(group[0])
            i, j = i + 1, j + 1
        else:  # seen, and already shown beside another expected step
            i += 1

    count = len(result.violations)
    status = "ok" if not count else f"{count} violation{'s' if count > 1 else ''}"
    run = ""
    if contract.correlation is not None:
        run = f", {contract.correlation}={'(none seen)' if result.run is None else result.run}"
    left = max([len("expected")] + [len(row[0]) for row in rows])
    middle = max([len("observed")] + [len(row[1]) for row in rows])
    right = max([0] + [len(row[2]) for row in rows])
    lines = [f"contract {contract.label}{run}: {status}", f"  {'expected':<{left}}  observed"]
    for expected_text, observed_text, offset, marks in rows:
        line = f"  {expected_text:<{left}}  {observed_text:<{middle}}  {offset:>{right}}"
        if marks:
            line += f"   <- {marks}"
        lines.append(line.rstrip())
    return "\n".join(lines)


#: The reference server's agent run: started, thinking (repeats), tool executing and
#: completed, agent completed; runs told apart by ``run_id``.
AGENT_EVENTS = EventContract(
    events=(
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    ),
    field="type",
    correlation="run_id",
    terminal="agent_completed",
    repeatable=frozenset({"agent_thinking"}),
    name="AGENT_EVENTS",
)
