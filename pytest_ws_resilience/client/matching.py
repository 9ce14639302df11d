"""What an awaited frame must look like, and how a failed wait says what it saw.

Pure, no I/O: the rules ``expect``, ``expect_text``, ``expect_bytes`` and
``expect_sequence`` apply to each received frame, how they read their arguments
(`expected_event`, `sequence_steps`, `frame_wait`, `text_wait`, `bytes_wait`,
`sequence_waits`), and the text a timeout or a close shows (`describe_expected`,
`frame_label`, `recent_events`), written in the protocol's own terms: a key function's
names, or the frames' text, truncated and redacted. The asyncio side
(`pytest_ws_resilience.client.waiting`) only decides *when* to look.

Predicates and key functions follow the one rule of
`pytest_ws_resilience.contracts.keys`: a frame of another shape is no match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.contracts.keys import EventKey, callable_name, event_name, holds
from pytest_ws_resilience.redaction import redact

__all__ = [
    "NO_CRITERIA",
    "BytesMatch",
    "FrameWait",
    "TextMatch",
    "bytes_wait",
    "describe_expected",
    "expected_event",
    "frame_label",
    "frame_wait",
    "matches",
    "recent_events",
    "sequence_steps",
    "sequence_waits",
    "text_wait",
]

#: How many recent frames a failed wait shows, and how much of each: enough to see what
#: the server sent instead, short enough to keep the error one readable line.
_RECENT_EVENTS = 5
_EVENT_PREVIEW_CHARS = 200
#: How much of a frame names it in a list of frames matched (a sequence's progress).
_LABEL_CHARS = 60

#: What ``expect_text`` accepts: the exact text, a compiled regex (searched), a predicate.
TextMatch = str | re.Pattern[str] | Callable[[str], Any]
#: What ``expect_bytes`` accepts: the exact bytes, or a predicate on them.
BytesMatch = bytes | bytearray | memoryview | Callable[[bytes], Any]


@dataclass(frozen=True, slots=True)
class FrameWait:
    """One thing a wait looks for: the record test and the words an error uses for it.

    Attributes:
        accept: True for the record awaited (called on every frame: keep it cheap).
        what: the noun phrase errors use ("text frame equal to 'answer'").
    """

    accept: Callable[[LogRecord], bool]
    what: str


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


#: What a wait with no criteria says: it would take whatever frame comes first, so a
#: test could pass on the greeting or a heartbeat without checking anything.
NO_CRITERIA = (
    "{call} needs a type, fields or a predicate; to take the next frame whatever it is, "
    "use expect(lambda frame: True)"
)


def expected_event(type: str | None, fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fields ``expect(type, **fields)`` waits for: ``type`` is one more field.

    Raises:
        ValueError: neither a type nor a field: such a wait would accept any frame, so
            a test could pass on whatever came first (the greeting, a heartbeat).
    """
    if type is None and not fields:
        raise ValueError(NO_CRITERIA.format(call="expect()"))
    return fields if type is None else {"type": type, **fields}


def sequence_steps(items: Sequence[str | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The steps of ``expect_sequence(items)``: a type name or a mapping of fields each."""
    return [{"type": item} if isinstance(item, str) else dict(item) for item in items]


def describe_expected(expected: Mapping[str, Any]) -> str:
    """``expected`` as an error shows it; predicates cannot be printed usefully."""
    shown = {k: ("<predicate>" if callable(v) else v) for k, v in expected.items()}
    return repr(shown) if shown else "any JSON event"


def _preview(raw: str | bytes, limit: int) -> str:
    text = raw if isinstance(raw, str) else repr(raw)
    return text[:limit] + "..." if len(text) > limit else text


def _shown(value: Any, limit: int = _LABEL_CHARS) -> str:
    """``repr`` of a value an error shows, truncated (redaction is the caller's, once)."""
    text = repr(value)
    return text[:limit] + "..." if len(text) > limit else text


def frame_label(record: LogRecord, key: EventKey | None = None) -> str:
    """A short name for a received frame, in the protocol's own terms.

    With ``key``: the name it gives the frame. Else a JSON object's ``type`` when it
    has one. Else (or when the key gives None) the frame's text, truncated. Never
    None, never empty. Not redacted: the error that shows it redacts the whole line.
    """
    if key is not None:
        name = event_name(record.frame, key)
        if name is not None:
            return str(name)
    elif isinstance(record.data, Mapping):
        name = record.data.get("type")
        if isinstance(name, str) and name:
            return name
    return _preview(record.raw, _LABEL_CHARS) or repr(record.raw)


def recent_events(log: EventLog, key: EventKey | None = None) -> str:
    """The last few frames of ``log``, for an error that says what came, redacted.

    Each frame shows as its text truncated, or, with a key function, as the name the
    key gives it (its text when the key gives none).
    """
    records = log.since(log.last_index - _RECENT_EVENTS + 1)
    if not records:
        return "none received"
    if key is None:
        shown = [_preview(r.raw, _EVENT_PREVIEW_CHARS) for r in records]
    else:
        shown = [frame_label(r, key) for r in records]
    return redact(f"last {len(shown)} of {log.total}: " + " | ".join(shown))


# -- waits beyond JSON objects -------------------------------------------------------


def frame_wait(predicate: Callable[[Any], Any], fields: Mapping[str, Any]) -> FrameWait:
    """``expect(predicate, **fields)``: any frame ``predicate`` accepts (and, with
    ``fields``, a JSON object holding them). The predicate sees `LogRecord.frame`."""
    what = f"frame accepted by {callable_name(predicate)}"
    if fields:
        return FrameWait(
            lambda r: holds(predicate, r.frame) and matches(r.data, fields),
            f"{what} with {describe_expected(fields)}",
        )
    return FrameWait(lambda r: holds(predicate, r.frame), what)


def text_wait(match: TextMatch) -> FrameWait:
    """``expect_text(match)``: a text frame (JSON or not) equal to a ``str``, searched
    by a compiled regex, or accepted by a predicate on the text.

    Raises:
        TypeError: ``match`` is none of those (a bytes regex included).
    """
    if isinstance(match, str):
        return FrameWait(lambda r: r.raw == match, f"text frame equal to {_shown(match)}")
    if isinstance(match, re.Pattern):
        if not isinstance(match.pattern, str):
            raise TypeError(
                f"expect_text() needs a str regex, got a bytes pattern {match.pattern!r} "
                f"(use expect_bytes for binary frames)"
            )
        search = match.search
        return FrameWait(
            lambda r: type(r.raw) is str and search(r.raw) is not None,
            f"text frame matching re {_shown(match.pattern)}",
        )
    if callable(match):
        return FrameWait(
            lambda r: type(r.raw) is str and holds(match, r.raw),
            f"text frame accepted by {callable_name(match)}",
        )
    raise TypeError(
        f"expect_text() takes a str, a compiled re.Pattern or a predicate, "
        f"got {type(match).__name__}"
    )


def bytes_wait(match: BytesMatch) -> FrameWait:
    """``expect_bytes(match)``: a binary frame equal to ``match`` or accepted by a
    predicate on its bytes.

    Raises:
        TypeError: ``match`` is neither (a ``str`` included: use ``expect_text``).
    """
    if isinstance(match, bytes | bytearray | memoryview):
        want = bytes(match)
        return FrameWait(lambda r: r.raw == want, f"binary frame equal to {_shown(want)}")
    if callable(match) and not isinstance(match, str):
        return FrameWait(
            lambda r: type(r.raw) is bytes and holds(match, r.raw),
            f"binary frame accepted by {callable_name(match)}",
        )
    raise TypeError(
        f"expect_bytes() takes bytes or a predicate, got {type(match).__name__}"
        + (" (use expect_text for text frames)" if isinstance(match, str) else "")
    )


def sequence_waits(
    items: Sequence[str | Mapping[str, Any] | Callable[[Any], Any]],
    key: EventKey | None = None,
) -> list[FrameWait]:
    """The steps of ``expect_sequence(items, key=...)``, one `FrameWait` each.

    An item is an event name (its ``type`` field, or with ``key`` the name ``key``
    gives a frame), a mapping of fields (JSON objects), or a predicate on any frame.

    Raises:
        TypeError: an item of another kind, or a ``key`` that is not callable.
    """
    if key is not None and not callable(key):
        raise TypeError(f"expect_sequence() key must be a function of the frame, got {key!r}")
    waits: list[FrameWait] = []
    for item in items:
        if isinstance(item, str):
            if key is None:
                waits.append(_fields_wait({"type": item}))
            else:
                waits.append(_named_wait(item, key))
        elif isinstance(item, Mapping):
            if not item:
                raise ValueError(NO_CRITERIA.format(call="an expect_sequence() step"))
            waits.append(_fields_wait(dict(item)))
        elif callable(item):
            waits.append(frame_wait(item, {}))
        else:
            raise TypeError(
                f"expect_sequence() items are event names, field mappings or predicates, "
                f"got {type(item).__name__}"
            )
    return waits


def _fields_wait(expected: Mapping[str, Any]) -> FrameWait:
    return FrameWait(
        lambda r: r.data is not None and matches(r.data, expected),
        f"event matching {describe_expected(expected)}",
    )


def _named_wait(name: str, key: EventKey) -> FrameWait:
    return FrameWait(
        lambda r: event_name(r.frame, key) == name,
        f"event {name!r} (named by {callable_name(key)})",
    )
