"""The rooms protocol of the reference server: asyncio glue around `rooms.Rooms`.

`server.ReferenceServer` hands every ``join``/``leave``/``post``/``resume`` frame here,
and the room a ``/rooms/<name>`` path names at open. This module checks the frame's
fields, awaits the join delay (where the ``join_race`` fault lives: it needs real
time, a window two joins must land in) and sends the answers through the server's
``send``, so every frame still carries its connection's ``seq``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from pytest_ws_resilience.testing.faults import (
    DELIVER_AFTER_LEAVE,
    DUPLICATE_REPLAY,
    JOIN_RACE,
    LOSE_MISSED_EVENTS,
    ROOM_LEAK,
    ROOM_RELABEL,
)
from pytest_ws_resilience.testing.rooms import (
    Rooms,
    after_problem,
    room_problem,
    value_problem,
)
from pytest_ws_resilience.testing.vocabulary import (
    INVALID_MESSAGE,
    JOIN,
    JOINED,
    LEAVE,
    LEFT,
    NOT_A_MEMBER,
    POST,
    RESUME,
    RESUMED,
    ROOM_EVENT,
    error_frame,
)

__all__ = ["ROOM_MESSAGES", "RoomService"]

#: The message types `RoomService.handle` answers.
ROOM_MESSAGES: frozenset[str] = frozenset({JOIN, LEAVE, POST, RESUME})

C = TypeVar("C", bound=Hashable)

#: ``send(connections, payload)``: one payload to each connection, each with its own seq.
Send = Callable[[Sequence[C], dict[str, Any]], None]
#: ``send_twice(connection, payload)``: the identical frame (same seq) written twice.
SendTwice = Callable[[C, dict[str, Any]], None]


class RoomService(Generic[C]):
    """Rooms, members per connection, and the room faults, for one server.

    Args:
        send: writes a payload to connections (the server's own, so seq numbers hold).
        send_twice: writes one payload twice as the identical frame (``duplicate_replay``).
        faults: returns the fault switches on right now (they change at runtime).
        join_delay_s: how long every join "loads the room".
        is_open: whether a connection is still open (the join race must not add a
            closed one to a room).
    """

    def __init__(
        self,
        *,
        send: Send[C],
        send_twice: SendTwice[C],
        faults: Callable[[], frozenset[str]],
        join_delay_s: float,
        is_open: Callable[[C], bool],
    ) -> None:
        self.rooms: Rooms[C] = Rooms()
        self._send = send
        self._send_twice = send_twice
        self._faults = faults
        self._join_delay_s = join_delay_s
        self._is_open = is_open
        # The join_race fault's one server-wide slot: the connection whose join is
        # "loading". A bug on purpose: a second join overwrites it within the window.
        self._pending: C | None = None

    async def handle(self, client: C, kind: str, data: dict[str, Any]) -> None:
        """Answer one frame whose type is in `ROOM_MESSAGES`."""
        room = data.get("room")
        problem = room_problem(room)
        if problem is not None:
            self._reply(client, error_frame(INVALID_MESSAGE, f"{kind}: {problem}"))
            return
        assert isinstance(room, str)
        if kind == JOIN:
            await self.join(client, room)
        elif kind == LEAVE:
            self._leave(client, room)
        elif kind == POST:
            self._post(client, room, data)
        else:
            await self._resume(client, room, data)

    async def join(self, client: C, room: str) -> None:
        """Join ``client`` to ``room`` after the join delay and answer ``joined``."""
        head = await self._join(client, room)
        self._reply(client, {"type": JOINED, "room": room, "head": head})

    @property
    def pending(self) -> C | None:
        """The connection in the ``join_race`` slot (None when no faulty join waits)."""
        return self._pending

    def forget(self, client: C) -> None:
        """Drop ``client``'s memberships, and the race slot if it holds it (it closed)."""
        self.rooms.forget(client)
        if self._pending is client:
            self._pending = None

    # -- the handlers --------------------------------------------------------------

    async def _join(self, client: C, room: str) -> int:
        """Wait the join delay, then add the joiner: ``client``, or under the
        ``join_race`` fault whoever holds the pending slot by then. Returns the head."""
        if JOIN_RACE not in self._faults():
            await asyncio.sleep(self._join_delay_s)
            return self.rooms.join(client, room)
        self._pending = client
        try:
            await asyncio.sleep(self._join_delay_s)
            joiner = self._pending
            if joiner is not None and self._is_open(joiner):
                self.rooms.join(joiner, room)
            return self.rooms.head(room)
        finally:
            # Only the slot's own join clears it: a later joiner in the slot is still
            # waiting and will be added by its own join too (so it ends in two rooms).
            if self._pending is client:
                self._pending = None

    def _leave(self, client: C, room: str) -> None:
        keep = DELIVER_AFTER_LEAVE in self._faults()
        if self.rooms.leave(client, room, keep_delivering=keep):
            self._reply(client, {"type": LEFT, "room": room})
        else:
            self._not_a_member(client, LEAVE, room)

    def _post(self, client: C, room: str, data: dict[str, Any]) -> None:
        if "value" not in data:
            self._reply(client, error_frame(INVALID_MESSAGE, "post: missing field 'value'"))
            return
        value = data["value"]
        problem = value_problem(value)
        if problem is not None:
            self._reply(client, error_frame(INVALID_MESSAGE, f"post: {problem}"))
            return
        if not self.rooms.is_member(client, room):
            self._not_a_member(client, POST, room)
            return
        faults = self._faults()
        event = self.rooms.post(room, value)
        deliveries = self.rooms.deliveries(
            event, leak=ROOM_LEAK in faults, relabel=ROOM_RELABEL in faults
        )
        by_label: dict[str, list[C]] = {}
        for delivery in deliveries:
            by_label.setdefault(delivery.room, []).append(delivery.member)
        for label, members in by_label.items():
            self._send(members, {"type": ROOM_EVENT, **event.as_json(label)})

    async def _resume(self, client: C, room: str, data: dict[str, Any]) -> None:
        after = data.get("after")
        problem = after_problem(after)
        if problem is not None:
            self._reply(client, error_frame(INVALID_MESSAGE, f"resume: {problem}"))
            return
        assert isinstance(after, int)
        await self._join(client, room)
        # From here to `resumed` nothing awaits: no live event can slip between the
        # replay and the membership, so a clean replay has no gap and no duplicate.
        faults = self._faults()
        missed = [] if LOSE_MISSED_EVENTS in faults else self.rooms.events_after(room, after)
        for index, event in enumerate(missed):
            payload = {"type": ROOM_EVENT, **event.as_json()}
            if index == 0 and DUPLICATE_REPLAY in faults:
                self._send_twice(client, payload)
            else:
                self._reply(client, payload)
        head = self.rooms.head(room)
        self._reply(client, {"type": RESUMED, "room": room, "head": head, "replayed": len(missed)})

    # -- sending -------------------------------------------------------------------

    def _reply(self, client: C, payload: dict[str, Any]) -> None:
        self._send((client,), payload)

    def _not_a_member(self, client: C, kind: str, room: str) -> None:
        message = f"{kind}: not a member of room {room!r}"
        self._reply(client, error_frame(NOT_A_MEMBER, message))
