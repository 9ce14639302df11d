"""The isolation-violation detector: fail a test when a user receives another's data.

Pure logic, no I/O. `IsolationDetector` watches clients as a `ClientObserver` (its
``on_send`` / ``on_receive`` / ``on_canary`` are called synchronously on the client's
paths); ``attach(client)`` only registers it. It needs no description of the protocol:

- every user owns *markers*: its identity (id, email, the token's ``sub``, the token
  itself), the string values it sends (*taint*), its canaries (``client.canary()``)
  and whatever the test registers;
- every frame a user receives is scanned, in one pass for all markers
  (`MarkerIndex`), for markers owned by OTHER users: each one found is an
  `IsolationViolation` naming receiver, connection, owner, marker and frame.

Staying quiet matters as much as being sharp, so a match is not a violation when:

- the marker is the receiver's own, shared (a value sent by two or more users) or
  allowlisted;
- the receiver itself sent that value, alone or inside a longer one (data cannot leak
  to its own author; a server may echo a truncated quote of the user's text);
- the occurrence lies inside a longer marker occurrence (``user-1`` inside
  ``user-10``, another user's value quoted inside the receiver's own text).

Values a user received from the server and sends back (a server-assigned id) are not
that user's taint, and neither are values under message-vocabulary keys (``type``...).

The pieces it combines live beside it: what a marker is (`markers`), which strings of
a frame are searched (`frames`), the one-pass search (`index`) and what a violation
shows (`violation`). Only ``attach`` and the ``on_*`` callbacks touch a client, and
only through its methods: nothing here imports the asyncio client.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.errors import IsolationViolationError
from pytest_ws_resilience.isolation.frames import (
    SEPARATOR,
    frame_strings,
    frame_text,
    sent_payload,
    sent_strings,
)
from pytest_ws_resilience.isolation.index import MarkerIndex, MarkerMatch
from pytest_ws_resilience.isolation.markers import (
    CANARY,
    DEFAULT_UNTAINTED_KEYS,
    IDENTITY_KINDS,
    REGISTERED,
    SECRET_KINDS,
    TAINT,
    SkippedMarker,
    UserIdentity,
    identity_markers,
)
from pytest_ws_resilience.isolation.violation import (
    IsolationViolation,
    format_report,
    show_frame,
    show_marker,
)
from pytest_ws_resilience.redaction import secret_repr

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser
    from pytest_ws_resilience.isolation.options import IsolationOptions

__all__ = ["IsolationDetector"]

# Kinds of neutral entries: indexed (they cover what lies inside them), never reported.
_SHARED = "shared"
_ALLOWED = "allowed"
# Values remembered per user (sent, received); the oldest are forgotten beyond this.
_MEMORY = 100_000


@dataclass(slots=True)
class _Entry:
    """What the index knows of one marker text; mutable: taint can become shared."""

    owner: str | None  # None: shared or allowlisted
    kind: str
    reportable: bool


class _UserState:
    """What one user (all its connections) sent and received, for the taint rules."""

    __slots__ = ("_authored", "_not_authored", "_sent_text", "received", "sent")

    def __init__(self) -> None:
        # dicts as insertion-ordered sets, so the oldest values can be forgotten.
        self.sent: dict[str, None] = {}
        self.received: dict[str, None] = {}
        # Answers of `authored`, so a marker recurring in many frames is looked up once.
        self._authored: set[str] = set()
        self._not_authored: set[str] = set()
        self._sent_text: str | None = None

    def remember_sent(self, values: list[str]) -> None:
        _remember(self.sent, values)
        self._sent_text = None
        self._not_authored.clear()

    def authored(self, marker: str) -> bool:
        """True when this user itself sent ``marker``, alone or inside a longer value
        (a server that echoes a truncated quote of the user's text shows only part of
        it). Called only for another user's marker found in a frame: rare when clean."""
        if marker in self.sent or marker in self._authored:
            return True
        if marker in self._not_authored:
            return False
        if self._sent_text is None:
            self._sent_text = SEPARATOR.join(self.sent)
        if marker in self._sent_text:
            self._authored.add(marker)
            return True
        self._not_authored.add(marker)
        return False


def _remember(memory: dict[str, None], values: list[str]) -> None:
    for value in values:
        memory[value] = None
    excess = len(memory) - _MEMORY
    if excess > 0:
        for old in list(memory)[: excess + _MEMORY // 10]:
            del memory[old]


def _owner_of(user_or_id: TestUser | UserIdentity | str) -> str:
    return user_or_id.id if isinstance(user_or_id, UserIdentity) else str(user_or_id)


# -- the detector ------------------------------------------------------------------------


class IsolationDetector:
    """Detects frames that carry one user's markers to another user.

    Args:
        identity: use identity markers (id, email, token ``sub``, token).
        taint: make the string values each user sends its markers.
        taint_min_length: shortest sent value that becomes a taint marker.
        marker_min_length: shortest marker used at all; shorter ones would match
            everywhere and are listed in ``skipped_markers``.
        untainted_keys: keys whose values (at any depth) are never tainted.
        allow: values that never raise a violation (e.g. a shared room name).
        max_violations: violations kept; the rest are only counted.

    Canaries and registered markers are always on.

    Raises:
        ValueError: a length or ``max_violations`` below 1.
    """

    def __init__(
        self,
        *,
        identity: bool = True,
        taint: bool = True,
        taint_min_length: int = 8,
        marker_min_length: int = 6,
        untainted_keys: Iterable[str] = DEFAULT_UNTAINTED_KEYS,
        allow: Iterable[str] = (),
        max_violations: int = 1000,
    ) -> None:
        for name, value in (
            ("taint_min_length", taint_min_length),
            ("marker_min_length", marker_min_length),
            ("max_violations", max_violations),
        ):
            if value < 1:
                raise ValueError(f"IsolationDetector {name} must be >= 1, got {value}")
        self.identity = identity
        self.taint = taint
        self.marker_min_length = marker_min_length
        # A value shorter than marker_min_length cannot be indexed anyway.
        self.taint_min_length = max(taint_min_length, marker_min_length)
        self.untainted_keys = frozenset(untainted_keys)
        self.max_violations = max_violations
        self._index: MarkerIndex[_Entry] = MarkerIndex(marker_min_length)
        self._users: dict[str, _UserState] = {}
        self._allowed: set[str] = set()
        self._allowed_patterns: list[re.Pattern[str]] = []
        self._violations: list[IsolationViolation] = []
        self._violations_dropped = 0
        self.checks = 0
        self.skipped_markers: list[SkippedMarker] = []
        self.allow(*allow)

    def __repr__(self) -> str:
        return (
            f"IsolationDetector(users={len(self._users)}, markers={self.marker_count}, "
            f"checks={self.checks}, violations={self.violation_count})"
        )

    # -- results ---------------------------------------------------------------------

    @property
    def violations(self) -> list[IsolationViolation]:
        """Violations in the order found (the first ``max_violations``)."""
        return list(self._violations)

    @property
    def violations_dropped(self) -> int:
        """Violations found beyond ``max_violations`` (counted, not kept)."""
        return self._violations_dropped

    @property
    def violation_count(self) -> int:
        """Every violation found, kept or not."""
        return len(self._violations) + self._violations_dropped

    @property
    def marker_count(self) -> int:
        """Marker texts indexed (owned, shared and allowlisted)."""
        return len(self._index)

    @property
    def users(self) -> tuple[str, ...]:
        """Ids of the users (or unnamed clients' names) seen so far."""
        return tuple(self._users)

    def owner_of(self, marker: str) -> str | None:
        """The user a marker text belongs to; None when unknown, shared or allowed."""
        entry = self._index.get(marker)
        return None if entry is None else entry.owner

    def nothing_to_look_for(self) -> str | None:
        """Why no leak could be found, whatever frames come; None when one could.

        The detector finds only markers it holds. Users whose ids and emails are
        shorter than ``marker_min_length`` (skipped), identity switched off, nothing
        sent long enough to taint and no canary: every frame is scanned, and nothing
        can match. A token alone does not count: servers do not put a user's token in
        the data they send, so a detector holding only tokens looks for nothing a leak
        would carry.

        Returns:
            None when some user owns a reported, non-secret marker; else the reason in
            one line (part of a `pytest_ws_resilience.vacuous.NothingChecked` finding).
        """
        index = self._index
        for marker in index:
            entry = index.get(marker)
            if (
                entry is not None
                and entry.owner is not None
                and entry.reportable
                and entry.kind not in SECRET_KINDS
            ):
                return None
        if not self._users:
            return "no user was watched, so there was no marker to look for"
        skipped = [m for m in self.skipped_markers if m.kind not in SECRET_KINDS]
        if skipped:
            shown = ", ".join(f"{m.kind} {m.marker!r} of {m.owner!r}" for m in skipped[:3])
            more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            return (
                f"no user has a marker to look for: {shown}{more} are shorter than "
                f"marker_min_length={self.marker_min_length} (give users longer ids, "
                "or register markers / use client.canary())"
            )
        return (
            "no user has a marker to look for (identity off, nothing tainted, no canary "
            "and no registered marker)"
        )

    def report(self) -> str:
        """Every violation, grouped by owner and receiver; one line when clean."""
        return format_report(
            self._violations,
            dropped=self._violations_dropped,
            checks=self.checks,
            markers=self.marker_count,
            users=len(self._users),
        )

    def assert_clean(self) -> None:
        """Raise `IsolationViolationError` with the report if any violation was found."""
        if self.violation_count:
            raise IsolationViolationError(self.report(), self._violations)

    def reset(self) -> None:
        """Forget the violations found so far; markers, users and ``checks`` stay."""
        self._violations.clear()
        self._violations_dropped = 0

    def configure(self, options: IsolationOptions) -> None:
        """Apply a test's options (`IsolationOptions`) from now on, in place.

        The switches also govern markers filed before the call: ``identity=False``
        stops reporting the identity markers already indexed, ``taint=False`` the
        taint markers (and files no new ones); switching back reports them again.
        ``allow``, ``allow_patterns`` and ``markers`` work as `allow`,
        `allow_pattern` and `register`; ``taint_min_length`` and ``untainted_keys``
        apply to the values sent from now on.
        """
        if options.identity is not None:
            self.identity = options.identity
            self._report_kinds(IDENTITY_KINDS, options.identity)
        if options.taint is not None:
            self.taint = options.taint
            self._report_kinds(frozenset({TAINT}), options.taint)
        if options.taint_min_length is not None:
            self.taint_min_length = max(options.taint_min_length, self.marker_min_length)
        if options.untainted_keys is not None:
            self.untainted_keys = options.untainted_keys
        self.allow(*options.allow)
        for pattern in options.allow_patterns:
            self.allow_pattern(pattern)
        for user, marker in options.markers:
            self.register(user, marker)

    def _report_kinds(self, kinds: frozenset[str], reportable: bool) -> None:
        """Turn reporting of the owned markers of ``kinds`` on or off."""
        index = self._index
        for marker in list(index):
            entry = index.get(marker)
            if entry is not None and entry.owner is not None and entry.kind in kinds:
                entry.reportable = reportable

    # -- markers ---------------------------------------------------------------------

    def add_user(self, user: TestUser | UserIdentity | str) -> None:
        """Track a user; a `TestUser` brings its identity markers. Idempotent."""
        owner = _owner_of(user)
        if owner in self._users:
            return
        self._users[owner] = _UserState()
        if not isinstance(user, UserIdentity):
            return
        # With identity off the markers are still indexed, unreported: they keep the
        # user's own id from reading as someone else's taint inside its frames.
        for marker, kind in identity_markers(user):
            self._claim(owner, marker, kind, reportable=self.identity)

    def register(
        self, user_or_id: TestUser | UserIdentity | str, marker: str, kind: str = REGISTERED
    ) -> None:
        """Make ``marker`` a marker of that user (always reported, whatever the switches).

        Kinds in `SECRET_KINDS` (``token``, ``secret``) are never shown in reports.
        """
        owner = _owner_of(user_or_id)
        if owner not in self._users:
            self.add_user(user_or_id)
        self._claim(owner, marker, kind, reportable=True)

    def allow(self, *values: str) -> None:
        """Values that never raise a violation: legitimately shared (a room name)."""
        for value in values:
            self._allowed.add(value)
            self._neutralise(value, _ALLOWED)

    def allow_pattern(self, pattern: str | re.Pattern[str]) -> None:
        """Markers the regular expression fully matches never raise a violation."""
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        self._allowed_patterns.append(compiled)
        for marker in list(self._index):
            if compiled.fullmatch(marker):
                self._neutralise(marker, _ALLOWED)

    def _is_allowed(self, marker: str) -> bool:
        if marker in self._allowed:
            return True
        patterns = self._allowed_patterns
        return bool(patterns) and any(p.fullmatch(marker) for p in patterns)

    def _neutralise(self, marker: str, kind: str) -> None:
        entry = self._index.get(marker)
        if entry is None:
            self._index.add(marker, _Entry(None, kind, False))
        else:
            entry.owner, entry.kind, entry.reportable = None, kind, False

    def _claim(self, owner: str, marker: str, kind: str, *, reportable: bool) -> None:
        """File an explicit (non-taint) marker: it wins over taint, not over another
        user's explicit marker (that text cannot be attributed: it becomes shared)."""
        if len(marker) < self.marker_min_length:
            if reportable:
                shown = secret_repr(marker) if kind in SECRET_KINDS else marker
                self.skipped_markers.append(SkippedMarker(owner, kind, shown))
            return
        if self._is_allowed(marker):
            self._neutralise(marker, _ALLOWED)
            return
        entry = self._index.get(marker)
        if entry is None:
            self._index.add(marker, _Entry(owner, kind, reportable))
        elif entry.kind == _ALLOWED:
            return
        elif entry.owner == owner:
            if entry.kind == TAINT or (reportable and not entry.reportable):
                entry.kind, entry.reportable = kind, reportable
        elif entry.kind in (TAINT, _SHARED):
            entry.owner, entry.kind, entry.reportable = owner, kind, reportable
        else:
            self._neutralise(marker, _SHARED)

    # -- traffic (pure: user ids and records in) -------------------------------------

    def _state(self, owner: str) -> _UserState:
        state = self._users.get(owner)
        if state is None:
            state = self._users[owner] = _UserState()
        return state

    def observe_sent(self, owner: str, raw: str | bytes, data: Any = None) -> None:
        """Account for a frame ``owner`` sent: its values become that user's taint.

        Args:
            owner: the sending user's id.
            raw: the frame as sent.
            data: the object it was serialised from, if any (else ``raw`` is parsed).
        """
        state = self._state(owner)
        payload = sent_payload(raw, data)
        if payload is None:
            return
        minimum = self.marker_min_length
        values = [
            pair for pair in sent_strings(payload, self.untainted_keys) if len(pair[0]) >= minimum
        ]
        if not values:
            return
        state.remember_sent([value for value, _ in values])
        if not self.taint:
            return
        taint_min, received, index = self.taint_min_length, state.received, self._index
        for value, taintable in values:
            if not taintable or len(value) < taint_min or value in received:
                continue
            entry = index.get(value)
            if entry is None:
                if self._is_allowed(value):
                    self._neutralise(value, _ALLOWED)
                else:
                    index.add(value, _Entry(owner, TAINT, True))
            elif entry.kind == TAINT and entry.owner != owner:
                # Sent by two users: nobody's own data any more.
                entry.owner, entry.kind, entry.reportable = None, _SHARED, False

    def observe_received(
        self, receiver: str, record: LogRecord, connection: str | Callable[[], str] = ""
    ) -> list[IsolationViolation]:
        """Scan a frame ``receiver`` received for other users' markers.

        Args:
            receiver: the receiving user's id.
            record: the frame.
            connection: names the receiving connection in violations (or a callable
                returning the name, called only when there is a violation).

        Returns:
            The violations this frame raised (also kept in ``violations``).
        """
        self.checks += 1
        state = self._state(receiver)
        data = record.data
        if data is None:
            strings = [frame_text(record.raw)]
        else:
            strings = frame_strings(data, self.marker_min_length)
        text = strings[0] if len(strings) == 1 else SEPARATOR.join(strings)
        found: list[IsolationViolation] = []

        def foreign(entry: _Entry) -> bool:
            return entry.reportable and entry.owner is not None and entry.owner != receiver

        # Usually only the receiver's own markers are candidates: then find() stops early.
        matches = self._index.find(text, foreign)
        if matches and any(foreign(match.value) for match in matches):
            found = self._judge(receiver, state, record, matches, connection)
        if self.taint:
            minimum = self.taint_min_length
            _remember(state.received, [s for s in strings if len(s) >= minimum])
        return found

    def observe_close(
        self, receiver: str, code: int | None, reason: str, connection: str = ""
    ) -> list[IsolationViolation]:
        """Scan the close reason ``receiver``'s connection got, as one more frame: the
        server chose to send it (``"room of user-42 closed"``), so it may leak as any
        frame may. An empty reason is no frame (not counted). Returns its violations."""
        if not reason:
            return []
        record = LogRecord(-1, time.monotonic(), time.time(), reason, None)
        return self.observe_received(receiver, record, f"{connection}, close frame (code {code})")

    def _judge(
        self,
        receiver: str,
        state: _UserState,
        record: LogRecord,
        matches: list[MarkerMatch[_Entry]],
        connection: str | Callable[[], str],
    ) -> list[IsolationViolation]:
        # Longest first at each start, so an occurrence inside an earlier, longer one
        # (user-1 inside user-10; a value quoted in the receiver's own text) is skipped.
        matches.sort(key=lambda m: (m.start, -m.end))
        covered_to = -1
        reported: set[str] = set()
        found: list[IsolationViolation] = []
        for match in matches:
            if match.end <= covered_to:
                continue
            covered_to = match.end
            entry = match.value
            owner = entry.owner
            if (
                owner is None
                or owner == receiver
                or not entry.reportable
                or match.marker in reported
                or state.authored(match.marker)
            ):
                continue
            reported.add(match.marker)
            if not isinstance(connection, str):
                connection = connection()
            violation = IsolationViolation(
                receiver=receiver,
                receiver_connection=connection,
                owner=owner,
                marker_kind=entry.kind,
                marker=show_marker(match.marker, entry.kind),
                frame=show_frame(record.raw, match.marker, entry.kind),
                frame_index=record.index,
                received_at=record.received_at,
            )
            found.append(violation)
            if len(self._violations) < self.max_violations:
                self._violations.append(violation)
            else:
                self._violations_dropped += 1
        return found

    # -- ClientObserver glue ---------------------------------------------------------

    def attach(self, client: WsClient) -> None:
        """Watch ``client``: index its user's identity and observe its traffic.

        Idempotent. Canaries the client made before are replayed by the client.
        """
        self._ensure_owner(client)
        client.add_observer(self)

    def detach(self, client: WsClient) -> None:
        """Stop watching ``client``; its user's markers stay (its data may still leak)."""
        client.remove_observer(self)

    def _ensure_owner(self, client: WsClient) -> str:
        user = client.user
        owner = user.id if user is not None else client.name
        if owner not in self._users:
            self.add_user(user if user is not None else owner)
        return owner

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        owner = self._ensure_owner(client)
        self.observe_received(owner, record, lambda: _connection_name(client))

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        self.observe_sent(self._ensure_owner(client), raw, data)

    def on_canary(self, client: WsClient, marker: str) -> None:
        self._claim(self._ensure_owner(client), marker, CANARY, reportable=True)

    def on_close(self, client: WsClient, code: int | None, reason: str) -> None:
        # Ping and pong payloads are not scanned: websockets answers pings inside its
        # protocol and exposes neither payload (see docs/isolation.md).
        self.observe_close(self._ensure_owner(client), code, reason, _connection_name(client))


def _connection_name(client: WsClient) -> str:
    connection_id = client.connection_id
    return client.name if connection_id is None else f"{client.name} / {connection_id}"
