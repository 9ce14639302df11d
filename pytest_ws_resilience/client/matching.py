"""What an awaited event must look like, and how a failed wait says what it saw.

Pure, no I/O: the rules ``expect`` and ``expect_sequence`` apply to each received frame
(`matches`), how they read their arguments (`expected_event`, `sequence_steps`), and
the text a timeout or a close shows (`describe_expected`, `recent_events`). The asyncio
side (`pytest_ws_resilience.client.waiting`) only decides *when* to look.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_ws_resilience.client.eventlog import EventLog

__all__ = [
    "describe_expected",
    "expected_event",
    "matches",
    "recent_events",
    "sequence_steps",
]

#: How many recent frames a failed wait shows, and how much of each: enough to see what
#: the server sent instead, short enough to keep the error one readable line.
_RECENT_EVENTS = 5
_EVENT_PREVIEW_CHARS = 200


def matches(data: Any, expected: Mapping[str, Any]) -> bool:
    """True when ``data`` is a mapping holding every key of ``expected`` with its value.

    A callable expected value is a predicate on the actual value
    (``matches(e, {"seq": lambda s: s > 3})``). An empty ``expected`` matches any mapping.
    """
    if not isinstance(data, Mapping):
        return False
    for key, want in expected.items():
        if key not in data:
            return False
        have = data[key]
        if callable(want):
            predicate: Callable[[Any], Any] = want
            if not predicate(have):
                return False
        elif have != want:
            return False
    return True


def expected_event(type: str | None, fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fields ``expect(type, **fields)`` waits for: ``type`` is one more field."""
    return fields if type is None else {"type": type, **fields}


def sequence_steps(items: Sequence[str | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The steps of ``expect_sequence(items)``: a type name or a mapping of fields each."""
    return [{"type": item} if isinstance(item, str) else dict(item) for item in items]


def describe_expected(expected: Mapping[str, Any]) -> str:
    """``expected`` as an error shows it; predicates cannot be printed usefully."""
    shown = {k: ("<predicate>" if callable(v) else v) for k, v in expected.items()}
    return repr(shown) if shown else "any JSON event"


def recent_events(log: EventLog) -> str:
    """The last few frames of ``log``, truncated, for an error that says what came."""
    records = log.since(log.last_index - _RECENT_EVENTS + 1)
    if not records:
        return "none received"
    shown = []
    for r in records:
        text = r.raw if isinstance(r.raw, str) else repr(r.raw)
        if len(text) > _EVENT_PREVIEW_CHARS:
            text = text[:_EVENT_PREVIEW_CHARS] + "..."
        shown.append(text)
    return f"last {len(shown)} of {log.total}: " + " | ".join(shown)
