"""The declaration of an event contract: which events a run must emit, in what order,
how often and how fast.

Pure data, no I/O. An `EventContract` describes one protocol's runs by field names
only (the field naming an event, the field correlating a run's events), so it fits
servers whose protocol this package does not know; a server's own contracts live with
its vocabulary (the reference server's `AGENT_EVENTS` is in
`pytest_ws_resilience.testing.vocabulary`). Checking is the job of
`pytest_ws_resilience.contracts.checker`; the rules themselves are in
`pytest_ws_resilience.contracts.rules`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.config.bounds import check_seconds, shown
from pytest_ws_resilience.contracts.checker import ContractChecker
from pytest_ws_resilience.contracts.keys import EventKey, callable_name

if TYPE_CHECKING:
    from pytest_ws_resilience.contracts.result import ContractResult

__all__ = ["EventContract"]

#: Why a one-shot `EventContract.check` ended without the terminal event.
_EVENTS_ENDED = "the events ended before the terminal event"


def _names(value: str | Iterable[str], what: str) -> frozenset[str]:
    """A set of event names; a lone string is one name, not a set of characters."""
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, Mapping | bytes) or not isinstance(value, Iterable):
        raise ValueError(
            f"EventContract {what}= must be an event name or a list of event names, "
            f"got {shown(value)}"
        )
    names = frozenset(value)
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"EventContract {what} must be event names, got {name!r}")
    return names


def _budget(name: str, value: Any) -> float:
    # 0 is a budget (the event must come first); a day is the longest wait there is.
    return check_seconds(f"EventContract budget for {name!r}", value, minimum=0.0)


@dataclasses.dataclass(frozen=True, init=False, repr=False)
class EventContract:
    """What one run of a protocol must emit: required events, order, repeats, timing.

    Args:
        events: the events of a run, in their required order (a list is accepted).
        field: the field of a frame that names its event (``type``, ``event``, ...).
        key: for protocols without such a field: a function naming a frame's event
            (``lambda f: f.get("action")``; for text frames ``lambda t: t.split(":")[0]``).
            It sees the parsed JSON, else the text, else the bytes; a frame it gives no
            name (None, or raising on a frame of another shape) is ignored. Replaces
            ``field`` (giving both is an error).
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
    key: EventKey | None
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
        key: EventKey | None = None,
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
        if key is not None and not callable(key):
            raise ValueError(f"EventContract key must be a function of the frame, got {key!r}")
        if key is not None and field != "type":
            raise ValueError(f"EventContract takes field={field!r} or a key function, not both")
        if correlation is not None and (not isinstance(correlation, str) or not correlation):
            raise ValueError(
                f"EventContract correlation must be a field name or None, got {correlation!r}"
            )
        repeatable_set = _names(repeatable, "repeatable")
        optional_set = _names(optional, "optional")
        if budgets is not None and not isinstance(budgets, Mapping):
            raise ValueError(
                f"EventContract budgets= must map event names to seconds, got {shown(budgets)}"
            )
        if not isinstance(ordered, bool):
            raise ValueError(f"EventContract ordered= must be True or False, got {ordered!r}")
        if not isinstance(name, str):
            raise ValueError(f"EventContract name= must be a string, got {shown(name)}")
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
        setattr_(self, "key", key)
        setattr_(self, "correlation", correlation)
        setattr_(self, "terminal", terminal)
        setattr_(self, "repeatable", repeatable_set)
        setattr_(self, "optional", optional_set)
        setattr_(self, "budgets", MappingProxyType(budget_map))
        setattr_(self, "ordered", ordered)
        setattr_(self, "name", name)
        # Derived once, for the checker (on every frame) and the rules; package-private.
        setattr_(self, "_positions", positions)
        setattr_(self, "_terminal", final)

    # Derived in __init__; not part of equality, hash or repr.
    _positions: dict[str, int] = dataclasses.field(init=False, compare=False, hash=False)
    _terminal: str = dataclasses.field(init=False, compare=False, hash=False)

    def __repr__(self) -> str:
        named_by = f"field={self.field!r}" if self.key is None else f"key={callable_name(self.key)}"
        parts = [f"events={list(self.events)!r}", named_by]
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
        events: Iterable[Any],
        *,
        correlation: Any = None,
        times: Sequence[float] | None = None,
    ) -> ContractResult:
        """Check the first run (or the run ``correlation``) among ``events``; never raises
        for violations.

        Args:
            events: frames in the order received (parsed JSON; text or bytes for a
                contract with a ``key``).
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
