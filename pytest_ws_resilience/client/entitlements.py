"""What a client may see: its entitlement timeline (grants and revokes of scopes).

Pure, no I/O. A scope is a named kind of audience (``room``, ``game``, ``tenant``) and
a value one of them (``room="lobby"``). The timeline belongs to the client, not to one
connection, so it spans ``reconnect()``: the test's explicit `WsClient.entitle` and
`WsClient.revoke` and what a scope rule learns from frames (``isolation/scopes.py``)
are written into the same timeline, so one timeline shows everything a report needs.

Times are ``time.monotonic()`` seconds, as `LogRecord.received_at`, so a frame's
receipt can be placed among the changes. A revoke may carry a grace: frames already in
flight when the client asked to leave are not the server's fault. The grace is the
reader's (the rule's), given to `EntitlementTimeline.entitled`, because one revoke
means different things to rules with different graces; each change says where it came
from (`SOURCES`) and whether a grace applies to it.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EXPLICIT",
    "PATH",
    "RECEIVED",
    "SENT",
    "SOURCES",
    "Entitlement",
    "EntitlementTimeline",
    "scope_text",
    "scope_value",
]

#: The test called ``client.entitle(...)`` / ``client.revoke(...)``.
EXPLICIT = "explicit"
#: Learned from a frame the client sent (a ``join``/``leave`` request).
SENT = "sent frame"
#: Learned from a frame the client received (the server confirmed: ``joined``, ``left``).
RECEIVED = "received frame"
#: Learned from the client's URL path (a per-room endpoint such as ``/rooms/{room}``).
PATH = "path"
#: Every source a change may name.
SOURCES = (EXPLICIT, SENT, RECEIVED, PATH)
# Revokes from these sources may find frames still in flight: a reader's grace applies.
_GRACED = frozenset({EXPLICIT, SENT})

# Changes kept per client before the oldest are folded into a baseline (memory stays
# flat for a client that joins and leaves in a loop; the report says how many).
_MAX_CHANGES = 10_000


def scope_text(value: Any) -> str | None:
    """A scope value as the timeline compares it: a non-empty string, an int as its
    decimal text (``room=7`` and ``{"room": "7"}`` name the same room); None for
    anything else (a bool, an empty string, a container, None)."""
    if type(value) is str:  # the usual case, on every frame a scope rule judges
        return value or None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None


def scope_value(value: Any, what: str) -> str:
    """`scope_text` of a value the test gave, which must name a scope.

    Raises:
        ValueError: a bool, an empty string, or anything but a str or an int (one line
            naming ``what``).
    """
    text = scope_text(value)
    if text is None:
        if value == "":
            raise ValueError(f"{what} must not be empty")
        raise ValueError(f"{what} must be a str or an int, got {value!r}")
    return text


@dataclass(slots=True)
class Entitlement:
    """One change of a client's entitlements, or one of its connections opening.

    Attributes:
        at: ``time.monotonic()`` when it happened (for a revoke: when it was asked).
        action: ``grant``, ``revoke`` or ``connect``.
        scope: the scope's name (``room``); "" for a connect.
        value: the scope value (``lobby``); for a connect, "first" or "reconnect".
        source: where it was learned (`SOURCES`); "connection" for a connect.

    Not frozen (read-only by convention): one is made for every connection, and a
    frozen dataclass pays a call of ``object.__setattr__`` for each field it sets.
    """

    at: float
    action: str
    scope: str
    value: str
    source: str

    @property
    def graced(self) -> bool:
        """True for a revoke a reader's grace delays (explicit, or from a sent frame)."""
        return self.action == "revoke" and self.source in _GRACED

    def describe(self, origin: float | None) -> str:
        """One timeline line: time since the first connect, then what changed."""
        when = _relative(self.at, origin)
        if self.action == "connect":
            return f"{when} connected ({self.value})"
        verb = "granted" if self.action == "grant" else "revoked"
        return f"{when} {verb} {self.scope} {self.value!r} ({self.source})"


def _time(change: Entitlement) -> float:
    return change.at


def _relative(at: float, origin: float | None) -> str:
    if origin is None:
        return "(before any connect)"
    return f"{at - origin:+.3f}s"


class EntitlementTimeline:
    """The grants and revokes of one client, in the order they happened.

    Writers: `WsClient` (``connected`` at each open; ``grant``/``revoke`` for the
    test's explicit calls) and scope rules (what they learn from frames). Readers:
    scope rules (`entitled`, `held`) and reports (`lines`).
    """

    __slots__ = ("_by_key", "_changes", "folded", "origin")

    def __init__(self) -> None:
        self._changes: list[Entitlement] = []
        self._by_key: dict[tuple[str, str], list[Entitlement]] = {}
        #: ``time.monotonic()`` of the client's first connect (report times count from it).
        self.origin: float | None = None
        #: Changes folded away to keep memory flat (their net effect is kept).
        self.folded = 0

    def __repr__(self) -> str:
        return f"EntitlementTimeline(changes={len(self._changes)}, folded={self.folded})"

    def __len__(self) -> int:
        return len(self._changes)

    @property
    def changes(self) -> tuple[Entitlement, ...]:
        """Every change kept, connects included, oldest first."""
        return tuple(self._changes)

    # -- writing ---------------------------------------------------------------------

    def connected(self, at: float) -> None:
        """A connection of the client opened at ``at`` (the first sets `origin`)."""
        first = self.origin is None
        if first:
            self.origin = at
        self._add(Entitlement(at, "connect", "", "first" if first else "reconnect", "connection"))

    def grant(self, scope: str, value: Any, *, at: float, source: str = EXPLICIT) -> None:
        """Entitle the client to ``scope`` = ``value`` from ``at`` on, at once.

        Raises:
            ValueError: a bad scope name, value or source (one line).
        """
        self._add(self._change(at, "grant", scope, value, source))

    def revoke(self, scope: str, value: Any, *, at: float, source: str = EXPLICIT) -> None:
        """End the client's entitlement to ``scope`` = ``value``: at ``at`` for a revoke
        the server confirmed (`RECEIVED`), after the reader's grace for the others.

        Raises:
            ValueError: a bad scope name, value or source (one line).
        """
        self._add(self._change(at, "revoke", scope, value, source))

    def apply(self, at: float, source: str, grants: Mapping[str, Any], *, grant: bool) -> None:
        """``grant``/``revoke`` each ``scope=value`` of ``grants`` (the keyword form of
        `WsClient.entitle`); all are checked before any is written.

        Raises:
            ValueError: no scope given, or a bad name or value (one line).
        """
        if not grants:
            verb = "entitle" if grant else "revoke"
            raise ValueError(f"{verb}() needs at least one scope=value, e.g. {verb}(room='a')")
        action = "grant" if grant else "revoke"
        changes = [self._change(at, action, k, v, source) for k, v in grants.items()]
        for change in changes:
            self._add(change)

    @staticmethod
    def _change(at: float, action: str, scope: str, value: Any, source: str) -> Entitlement:
        if not isinstance(scope, str) or not scope:
            raise ValueError(f"a scope name must be a non-empty string, got {scope!r}")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        return Entitlement(at, action, scope, scope_value(value, f"scope {scope!r}"), source)

    def _add(self, change: Entitlement) -> None:
        # In time order, so the latest change is last: a grant learned late (a rule
        # attached after the connect reads the path) is back-dated to the connect.
        insort(self._changes, change, key=_time)
        if change.action != "connect":
            insort(self._by_key.setdefault((change.scope, change.value), []), change, key=_time)
        if len(self._changes) > 2 * _MAX_CHANGES:
            self._fold(len(self._changes) - _MAX_CHANGES)

    def _fold(self, count: int) -> None:
        """Forget the oldest ``count`` changes but keep each scope value's latest one
        (its net effect; a long-past revoke is past any grace)."""
        dropped = self._changes[:count]
        self._changes = self._changes[count:]
        self.folded += count
        for change in dropped:
            if change.action == "connect":
                continue
            history = self._by_key[(change.scope, change.value)]
            if len(history) > 1 and history[0] is change:
                del history[0]

    # -- reading ---------------------------------------------------------------------

    def entitled(self, scope: str, value: str, at: float, *, grace: float = 0.0) -> bool:
        """Whether the client may see ``scope`` = ``value`` at ``at``.

        The latest change in effect at ``at`` decides: a grant from its time on, a
        revoke from its time on, plus ``grace`` for a `graced` one (frames already in
        flight). A grant after a pending revoke wins (the client came back).
        """
        for change in reversed(self._by_key.get((scope, value), ())):
            if change.action == "grant":
                if change.at <= at:
                    return True
            elif change.at + (grace if change.graced else 0.0) <= at:
                return False
        return False

    def held(self, scope: str, at: float, *, grace: float = 0.0) -> list[str]:
        """The values of ``scope`` the client is entitled to at ``at``, sorted."""
        return sorted(
            value
            for (name, value) in self._by_key
            if name == scope and self.entitled(scope, value, at, grace=grace)
        )

    def scopes(self) -> list[str]:
        """The scope names any change mentions, sorted."""
        return sorted({scope for scope, _ in self._by_key})

    def lines(self, scope: str | None = None, *, until: float | None = None) -> list[str]:
        """The timeline as report lines (times from the first connect): every connect,
        and the changes of ``scope`` (all scopes when None), up to ``until``."""
        shown: Iterable[Entitlement] = (
            change
            for change in self._changes
            if (scope is None or change.action == "connect" or change.scope == scope)
            and (until is None or change.at <= until)
        )
        found = [change.describe(self.origin) for change in shown]
        if self.folded:
            found.insert(0, f"({self.folded} earlier changes folded)")
        return found
