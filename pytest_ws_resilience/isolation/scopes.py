"""Scope rules: a connection sees only the scopes (rooms, games, tenants) it is entitled to.

Pure, no I/O. A server whose room events carry nothing but a room name and integers
leaks without showing another user's string: the detector cannot see it. A scope rule
can: the test declares once which field of a frame names the scope (``room``) and how
membership is learned, and every received frame naming a value the receiver is not
entitled to *at that moment* is a `RuleViolation`, reported with the receiver's
entitlement timeline.

Membership lives in the client's `EntitlementTimeline` (``client/entitlements.py``):
the test's own ``client.entitle(room=...)`` / ``client.revoke(...)``, and what the
rule learns, written into the same timeline, so it spans ``reconnect()`` and one
timeline shows everything. The rule learns from:

- signals (``join=`` / ``leave=``): a frame with given fields (``{"type": "join"}``), a
  `Signal` with a direction and the path of the value, or a callable; a grant takes
  effect at once; a revoke learned from a frame the client *sent* (or an explicit
  revoke) after ``grace`` seconds, since frames may already be in flight; a revoke
  learned from a *received* frame (the server confirmed: ``{"type": "left"}``) at once;
- the connection's URL path (``path="/rooms/{room}"``) for per-room endpoints.

A grant covers the frame that carries it (``joined`` names the room just joined); a
revoke starts after the frame that carries it (``left`` still names the room left).
"""

from __future__ import annotations

import math
import re
import string
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pytest_ws_resilience.client.entitlements import PATH, RECEIVED, SENT, scope_text
from pytest_ws_resilience.isolation.fields import (
    Fields,
    field_path,
    fields_match,
    fields_of,
    read_field,
)
from pytest_ws_resilience.isolation.frames import sent_payload
from pytest_ws_resilience.isolation.rules import (
    RuleFindings,
    RuleViolation,
    receiver_of,
    show_rule_frame,
)
from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.entitlements import EntitlementTimeline
    from pytest_ws_resilience.client.eventlog import LogRecord

__all__ = ["DIRECTIONS", "ScopeRule", "ScopeSignals", "Signal", "SignalExtractor"]

#: Which frames a `Signal` looks at: the client's own, the server's, or both.
DIRECTIONS = ("sent", "received", "any")

#: A signal as a function: ``(direction, frame) -> scope value or None`` (direction is
#: ``"sent"`` or ``"received"``; the frame is the parsed JSON, else its text).
SignalExtractor = Callable[[str, Any], Any]

# Violations kept per rule (a leaking stream would otherwise fill memory); the rest
# are counted in `ScopeRule.dropped`.
_MAX_VIOLATIONS = 1000
# Timeline lines a violation shows (the latest ones).
_TIMELINE_LINES = 20


@dataclass(frozen=True)
class Signal:
    """A frame that changes membership: a join (``join=``) or a leave (``leave=``).

    Args:
        match: fields the frame must have, each equal (keys may be dotted paths), e.g.
            ``{"type": "join"}``.
        direction: ``"sent"`` (the client asked), ``"received"`` (the server
            confirmed) or ``"any"``.
        value: the dotted path of the scope value in that frame; default: the rule's
            ``field``.

    Raises:
        ValueError: an empty or non-mapping ``match``, a non-string key, an unknown
            ``direction``, or a malformed ``value`` path (one line naming it).
    """

    match: Mapping[str, Any]
    direction: str = "any"
    value: str | None = None
    _keys: Fields = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not isinstance(self.match, Mapping) or not self.match:
            raise ValueError(
                f"Signal match must be a non-empty mapping of fields, e.g. "
                f"{{'type': 'join'}}, got {self.match!r}"
            )
        keys = fields_of(self.match, "Signal match key")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"Signal direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}"
            )
        if self.value is not None:
            field_path(self.value, "Signal value")
        object.__setattr__(self, "_keys", keys)

    def matches(self, frame: Any) -> bool:
        """True when ``frame`` has every field of `match`, equal."""
        return fields_match(frame, self._keys)

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.match.items())
        return fields if self.direction == "any" else f"{fields} ({self.direction})"


#: What ``join=`` / ``leave=`` take: one signal or a list of them.
ScopeSignals = (
    Mapping[str, Any]
    | Signal
    | SignalExtractor
    | Sequence[Mapping[str, Any] | Signal | SignalExtractor]
)


@dataclass(frozen=True)
class _Learner:
    """One way of learning a scope value from a frame, normalized."""

    direction: str
    extract: Callable[[str, Any], Any]
    label: str


def _learners(what: str, given: Any, default_path: tuple[str, ...]) -> tuple[_Learner, ...]:
    items: Sequence[Any]
    if isinstance(given, Mapping | Signal) or callable(given):
        items = [given]
    elif isinstance(given, list | tuple):
        items = given
    else:
        raise ValueError(
            f"{what} must be a mapping of fields, a Signal, a callable or a list of them, "
            f"got {given!r}"
        )
    found = []
    for item in items:
        if isinstance(item, Mapping):
            item = Signal(item)
        if isinstance(item, Signal):
            found.append(_signal_learner(item, default_path))
        elif callable(item):
            label = getattr(item, "__name__", repr(item))
            found.append(_Learner("any", item, f"{label}()"))
        else:
            raise ValueError(
                f"{what} items must be mappings of fields, Signals or callables, got {item!r}"
            )
    return tuple(found)


def _signal_learner(signal: Signal, default_path: tuple[str, ...]) -> _Learner:
    path = default_path if signal.value is None else field_path(signal.value, "Signal value")

    def extract(direction: str, frame: Any) -> Any:
        return read_field(frame, path) if signal.matches(frame) else None

    return _Learner(signal.direction, extract, signal.describe())


def _path_pattern(template: Any, name: str) -> re.Pattern[str]:
    """A URL path template (``/rooms/{room}``) as a regex capturing the scope value;
    other placeholders match any one segment."""
    if not isinstance(template, str) or not template.startswith("/"):
        raise ValueError(f"path must be a template starting with '/', got {template!r}")
    try:  # a trailing slash is optional on either side
        parts = list(string.Formatter().parse(template.rstrip("/")))
    except ValueError as exc:
        raise ValueError(f"path template {template!r} is malformed: {exc}") from None
    names = [placeholder for _, placeholder, _, _ in parts if placeholder is not None]
    if names.count(name) != 1:
        raise ValueError(f"path template {template!r} needs one {{{name}}} placeholder")
    pattern = ""
    for literal, placeholder, _, _ in parts:
        pattern += re.escape(literal)
        if placeholder is not None:
            pattern += "(?P<scope>[^/]+)" if placeholder == name else "[^/]+"
    return re.compile(pattern + "/?")


class ScopeRule(RuleFindings):
    """Every received frame whose ``field`` names a value of scope ``name`` the receiver
    is not entitled to at that moment is a violation (a `FrameRule`).

    Args:
        name: the scope (``"room"``): the name of `WsClient.entitle`'s keyword and of
            the path placeholder.
        field: the dotted path of the scope value in received frames; default ``name``.
            Values compare as strings (an int as its digits); frames where it is absent
            or not a str or an int are not judged.
        join: how grants are learned: a mapping of fields a frame must have (matched in
            either direction), a `Signal`, a callable ``(direction, frame) -> value |
            None`` (`SignalExtractor`), or a list of these.
        leave: how revokes are learned, in the same forms.
        path: a URL path template naming the scope (``"/rooms/{room}"``): a client whose
            URL path matches is entitled to that value from its first connect.
        grace: seconds a revoke from a sent frame or an explicit ``client.revoke``
            waits before it takes effect (frames already in flight).

    Raises:
        ValueError: a bad argument (one line naming it).
    """

    def __init__(
        self,
        name: str,
        *,
        field: str | None = None,
        join: ScopeSignals = (),
        leave: ScopeSignals = (),
        path: str | None = None,
        grace: float = 0.25,
    ) -> None:
        super().__init__()
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"scope name must be an identifier such as 'room', got {name!r}")
        self.scope = name
        self.field = name if field is None else field
        self._path = field_path(self.field, "field")
        self._flat = self._path[0] if len(self._path) == 1 else None
        self._joins = _learners("join", join, self._path)
        self._leaves = _learners("leave", leave, self._path)
        self.path = path
        self._path_pattern = None if path is None else _path_pattern(path, name)
        if (
            isinstance(grace, bool)
            or not isinstance(grace, int | float)
            or not math.isfinite(grace)
            or not 0 <= grace <= 60
        ):
            raise ValueError(f"grace must be a number of seconds from 0 to 60, got {grace!r}")
        self.grace = float(grace)
        #: Violations found beyond the ones kept (a leaking stream).
        self.dropped = 0
        #: Frames received by watched clients, judged or not (for `nothing_checked`).
        self.frames_seen = 0
        self._pathed: weakref.WeakSet[WsClient] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"ScopeRule({self.name}, checks={self._checks}, violations={self.violation_count})"

    # -- FrameRule ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        where = [f"field {self.field!r}"]
        if self.path is not None:
            where.append(f"path {self.path!r}")
        return f"scope {self.scope!r} ({', '.join(where)})"

    @property
    def violation_count(self) -> int:
        """Every violation found, kept or not."""
        return len(self._violations) + self.dropped

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        """Judge one received frame: learn grants, check the scope field, learn revokes."""
        self.frames_seen += 1
        timeline = client.entitlements
        if self._path_pattern is not None and client not in self._pathed:
            self._grant_path(client, timeline)
        frame = record.frame
        at = record.received_at
        if self._joins:
            self._learn(timeline, self._joins, "received", frame, at, grant=True)
        if type(frame) is not dict:
            value = None
        elif self._flat is not None:
            value = scope_text(frame.get(self._flat))
        else:
            value = scope_text(read_field(frame, self._path))
        if value is not None:
            self._checks += 1
            if not timeline.entitled(self.scope, value, at, grace=self.grace):
                self._found(client, timeline, record, value)
        if self._leaves:
            self._learn(timeline, self._leaves, "received", frame, at, grant=False)

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        """Learn grants and revokes from a frame the client is about to send."""
        if not self._joins and not self._leaves:
            return
        timeline = client.entitlements
        frame = sent_payload(raw, data)
        at = time.monotonic()
        self._learn(timeline, self._joins, "sent", frame, at, grant=True)
        self._learn(timeline, self._leaves, "sent", frame, at, grant=False)

    def nothing_checked(self) -> str | None:
        if self._checks:
            return None
        return (
            f"no received frame carried field {self.field!r} as a str or int "
            f"({self.frames_seen} frames seen): is the field right?"
        )

    # -- learning -----------------------------------------------------------------------

    def _learn(
        self,
        timeline: EntitlementTimeline,
        learners: tuple[_Learner, ...],
        direction: str,
        frame: Any,
        at: float,
        *,
        grant: bool,
    ) -> None:
        source = SENT if direction == "sent" else RECEIVED
        for learner in learners:
            if learner.direction not in ("any", direction):
                continue
            found = learner.extract(direction, frame)
            if found is None:
                continue
            value = scope_text(found)
            if value is None:
                kind = "join" if grant else "leave"
                raise ValueError(
                    f"scope {self.scope!r}: {kind} signal {learner.label} gave {found!r}, "
                    "not a str or an int"
                )
            if grant:
                timeline.grant(self.scope, value, at=at, source=source)
            else:
                timeline.revoke(self.scope, value, at=at, source=source)

    def _grant_path(self, client: WsClient, timeline: EntitlementTimeline) -> None:
        self._pathed.add(client)
        assert self._path_pattern is not None
        matched = self._path_pattern.fullmatch(urlsplit(client.url).path)
        if matched is None:
            return
        at = timeline.origin if timeline.origin is not None else time.monotonic()
        timeline.grant(self.scope, unquote(matched.group("scope")), at=at, source=PATH)

    # -- reporting ----------------------------------------------------------------------

    def _found(
        self, client: WsClient, timeline: EntitlementTimeline, record: LogRecord, value: str
    ) -> None:
        if len(self._violations) >= _MAX_VIOLATIONS:
            self.dropped += 1
            return
        receiver, connection = receiver_of(client)
        at = record.received_at
        held = timeline.held(self.scope, at, grace=self.grace)
        entitled = ", ".join(repr(v) for v in held) if held else "none"
        message = (
            f"received a frame of {self.scope} {value!r} it is not entitled to "
            f"(entitled to: {entitled})"
        )
        lines = timeline.lines(self.scope, until=at)
        shown = lines[-_TIMELINE_LINES:]
        if len(lines) > len(shown):
            shown.insert(0, f"({len(lines) - len(shown)} earlier lines)")
        when = (
            "(before any connect)" if timeline.origin is None else f"{at - timeline.origin:+.3f}s"
        )
        detail = (
            f"entitlement timeline of {receiver} for {self.scope!r} "
            f"(seconds from its first connect; grace {self.grace:g}s):",
            *(f"  {line}" for line in shown),
            f"  {when} this frame: {self.scope} {value!r}  <-- not entitled",
        )
        self._violations.append(
            RuleViolation(
                "scope",
                self.name,
                receiver,
                connection,
                redact(message),
                frames=(show_rule_frame(record.raw),),
                detail=tuple(redact(line) for line in detail),
                frame_index=record.index,
            )
        )
