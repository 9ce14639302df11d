"""Rooms of the reference server: membership, room sequence numbers, history (pure).

A room is a name, a counter (``room_seq``, 1, 2, 3, ... per room) and the last events
posted to it, so a client that comes back can ask for what it missed. Members are
whatever hashable objects the caller uses for its connections; this module never
sends anything. It decides *who* receives an event, including who wrongly receives it
under the room faults (leak, relabel, delivery after leave), so the asyncio glue in
`room_service` only waits and writes. Input checks live here too, as phrases the
server puts in its error frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

__all__ = [
    "MAX_EVENTS_PER_ROOM",
    "ROOM_PATH_PREFIX",
    "Delivery",
    "Room",
    "RoomEvent",
    "Rooms",
    "after_problem",
    "room_from_path",
    "room_problem",
    "value_problem",
]

#: Oldest events of a room are forgotten past this; a resume from before them replays
#: what is left (the room's history is a window, not a log).
MAX_EVENTS_PER_ROOM = 1000
#: A connection opened on ``/rooms/<name>`` is joined to room ``<name>`` at open.
ROOM_PATH_PREFIX = "/rooms/"

M = TypeVar("M", bound=Hashable)


@dataclass(frozen=True)
class RoomEvent:
    """One event posted to a room: the room's name, its number there, the value.

    Nothing else: no user or connection id, on purpose, so isolation cannot be
    judged from the content of the frame (the "events without user data" case).
    """

    room: str
    room_seq: int
    value: Any

    def as_json(self, room: str | None = None) -> dict[str, Any]:
        """The ``room_event`` payload (without ``type``/``seq``); ``room`` relabels it."""
        label = self.room if room is None else room
        return {"room": label, "room_seq": self.room_seq, "value": self.value}


@dataclass
class Room(Generic[M]):
    """One room: its members, the members who left but still get events (the
    ``deliver_after_leave`` fault), its last ``room_seq`` and its kept events."""

    name: str
    members: dict[M, None] = field(default_factory=dict)  # an ordered set
    lingering: dict[M, None] = field(default_factory=dict)
    head: int = 0
    history: deque[RoomEvent] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS_PER_ROOM))


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """Who receives an event, and under which room name (a relabelled copy names
    the receiver's room instead of the event's)."""

    member: M
    room: str


class Rooms(Generic[M]):
    """Every room of a server, and which member is in which.

    Rooms are created on first use and kept (with their history) for the server's
    life; membership is per member and dropped by `forget` when its connection ends.

    Args:
        max_events: bound of each room's history (oldest dropped first).
    """

    def __init__(self, max_events: int = MAX_EVENTS_PER_ROOM) -> None:
        self._max = max_events
        self._rooms: dict[str, Room[M]] = {}
        self._of: dict[M, dict[str, None]] = {}  # member -> its rooms, in join order

    def room(self, name: str) -> Room[M]:
        """Room ``name``, created empty on first use."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(name, history=deque(maxlen=self._max))
        return room

    def head(self, name: str) -> int:
        """The last ``room_seq`` of ``name`` (0 for a room nothing was posted to)."""
        room = self._rooms.get(name)
        return room.head if room is not None else 0

    def join(self, member: M, name: str) -> int:
        """Make ``member`` a member of ``name`` (again); returns the room's head."""
        room = self.room(name)
        room.lingering.pop(member, None)
        room.members[member] = None
        self._of.setdefault(member, {})[name] = None
        return room.head

    def leave(self, member: M, name: str, *, keep_delivering: bool = False) -> bool:
        """End ``member``'s membership of ``name``; False if it was not a member.

        With ``keep_delivering`` (the ``deliver_after_leave`` fault) the member is no
        longer a member (it cannot post or leave again) but still receives events.
        """
        room = self._rooms.get(name)
        if room is None or member not in room.members:
            return False
        del room.members[member]
        if keep_delivering:
            room.lingering[member] = None
        rooms = self._of.get(member, {})
        rooms.pop(name, None)
        if not rooms:
            self._of.pop(member, None)
        return True

    def is_member(self, member: M, name: str) -> bool:
        room = self._rooms.get(name)
        return room is not None and member in room.members

    def rooms_of(self, member: M) -> list[str]:
        """The rooms ``member`` is in, in the order it joined them."""
        return list(self._of.get(member, ()))

    def members(self, name: str) -> list[M]:
        """The members of ``name``, in the order they joined."""
        room = self._rooms.get(name)
        return list(room.members) if room is not None else []

    def forget(self, member: M) -> None:
        """Drop every trace of ``member`` (its connection closed)."""
        self._of.pop(member, None)
        for room in self._rooms.values():
            room.members.pop(member, None)
            room.lingering.pop(member, None)

    def post(self, name: str, value: Any) -> RoomEvent:
        """Number ``value`` as the next event of ``name`` and keep it in its history."""
        room = self.room(name)
        room.head += 1
        event = RoomEvent(name, room.head, value)
        room.history.append(event)
        return event

    def events_after(self, name: str, after: int) -> list[RoomEvent]:
        """The kept events of ``name`` with ``room_seq > after``, in order."""
        room = self._rooms.get(name)
        if room is None:
            return []
        return [event for event in room.history if event.room_seq > after]

    def deliveries(
        self, event: RoomEvent, *, leak: bool = False, relabel: bool = False
    ) -> list[Delivery[M]]:
        """Who receives ``event``: the room's members (the sender among them) and,
        under ``deliver_after_leave``, those who left it.

        Args:
            event: the event just posted.
            leak: the ``room_leak`` fault: members of every other room also get it,
                unchanged.
            relabel: the ``room_relabel`` fault: members of every other room also get
                it, named after the receiver's room (its first, for a member of several).

        Each member receives an event at most once.
        """
        room = self.room(event.room)
        out = [Delivery(member, event.room) for member in (*room.members, *room.lingering)]
        if not (leak or relabel):
            return out
        seen = {delivery.member for delivery in out}
        for other in self._rooms.values():
            if other is room:
                continue
            for member in (*other.members, *other.lingering):
                if member in seen:
                    continue
                seen.add(member)
                label = event.room if leak else self._label_for(member, other.name)
                out.append(Delivery(member, label))
        return out

    def _label_for(self, member: M, fallback: str) -> str:
        rooms = self._of.get(member)
        return next(iter(rooms)) if rooms else fallback

    def __len__(self) -> int:
        """Number of rooms (with or without members)."""
        return len(self._rooms)


# -- input checks: a phrase for the error frame, or None ------------------------------


def room_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a room name, or None."""
    if not isinstance(value, str) or not value:
        return f"'room' must be a non-empty string, got {_shown(value)}"
    return None


def after_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a resume's ``after``, or None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"'after' must be an integer >= 0, got {_shown(value)}"
    return None


def value_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a posted value (a JSON scalar), or None."""
    if value is None or isinstance(value, str | int | float | bool):
        return None
    kind = "an object" if isinstance(value, dict) else "an array"
    return f"'value' must be a JSON scalar (string, number, boolean or null), got {kind}"


def room_from_path(path: str) -> str | None:
    """The room a request path names (``/rooms/<name>``, percent-decoded; the query
    string ignored), ``""`` for ``/rooms/`` alone, None for any other path."""
    route = urlsplit(path).path
    if not route.startswith(ROOM_PATH_PREFIX):
        return None
    return unquote(route[len(ROOM_PATH_PREFIX) :])


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
