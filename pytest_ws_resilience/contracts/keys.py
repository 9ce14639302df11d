"""Naming a frame's event with a function, for protocols without an event-name field.

Pure, no I/O. A protocol that says ``{"action": "subscribe"}``, or speaks plain text
(``"JOIN:lobby"``), or binary, has no ``type`` field for `EventContract` and
``expect_sequence`` to read; a *key function* names each frame instead
(``key=lambda f: f.get("action")``, ``key=lambda t: t.split(":")[0]``). It sees the
frame as the waits see it (`pytest_ws_resilience.client.eventlog.LogRecord.frame`):
the parsed JSON, else the text, else the bytes.

One rule for every user-supplied function applied to frames (key functions and
predicates alike), kept here so that waits, sequences and contracts agree: a frame of
another shape than the function expects (``f.get`` on a text frame, ``t.split`` on
bytes, ``f["x"]`` on a frame without ``x``) is simply not a match and has no name.
The function raising ``LookupError``, ``TypeError``, ``AttributeError`` or
``ValueError`` says exactly that. Any other exception is a bug in the test and
propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SHAPE_ERRORS", "EventKey", "FramePredicate", "callable_name", "event_name", "holds"]

#: A function naming a frame's event; None (or raising one of `SHAPE_ERRORS`): unnamed.
EventKey = Callable[[Any], Any]
#: A function saying whether a frame is the one awaited (truthy: yes).
FramePredicate = Callable[[Any], Any]

#: What a key or predicate raises on a frame of another shape than it expects.
SHAPE_ERRORS: tuple[type[Exception], ...] = (LookupError, TypeError, AttributeError, ValueError)


def event_name(frame: Any, key: EventKey) -> Any:
    """``key(frame)``, or None when the frame is not of the shape ``key`` expects."""
    try:
        return key(frame)
    except SHAPE_ERRORS:
        return None


def holds(predicate: FramePredicate, frame: Any) -> bool:
    """True when ``predicate(frame)`` is truthy; False for a frame of another shape."""
    try:
        return bool(predicate(frame))
    except SHAPE_ERRORS:
        return False


def callable_name(function: Callable[..., Any]) -> str:
    """How errors and reprs name a key or predicate (``<lambda>``, ``is_answer``)."""
    return str(getattr(function, "__name__", None) or type(function).__name__)
