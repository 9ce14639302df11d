"""The reference server's room state (`testing.rooms`, pure) and its room handlers
(`testing.room_service`) driven without sockets: membership, room_seq, the bounded
history, who receives an event under each fault, the input checks, the join race slot.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from pytest_ws_resilience.testing.faults import (
    DELIVER_AFTER_LEAVE,
    DUPLICATE_REPLAY,
    JOIN_RACE,
    LOSE_MISSED_EVENTS,
)
from pytest_ws_resilience.testing.room_service import RoomService
from pytest_ws_resilience.testing.rooms import (
    MAX_EVENTS_PER_ROOM,
    Delivery,
    RoomEvent,
    Rooms,
    after_problem,
    room_from_path,
    room_problem,
    value_problem,
)

# -- Rooms: membership and numbering ---------------------------------------------------


def test_a_new_room_has_head_zero_and_join_answers_the_head() -> None:
    rooms: Rooms[str] = Rooms()
    assert rooms.head("lobby") == 0
    assert rooms.join("a", "lobby") == 0
    rooms.post("lobby", 1)
    rooms.post("lobby", 2)
    assert rooms.join("b", "lobby") == 2
    assert rooms.members("lobby") == ["a", "b"]


def test_room_seq_counts_per_room() -> None:
    rooms: Rooms[str] = Rooms()
    events = [rooms.post("r1", "x"), rooms.post("r2", "y"), rooms.post("r1", "z")]
    assert [(e.room, e.room_seq) for e in events] == [("r1", 1), ("r2", 1), ("r1", 2)]
    assert (rooms.head("r1"), rooms.head("r2")) == (2, 1)


def test_membership_is_per_member_and_leave_says_whether_it_was_one() -> None:
    rooms: Rooms[str] = Rooms()
    rooms.join("a", "r1")
    rooms.join("a", "r2")
    rooms.join("b", "r2")
    assert rooms.rooms_of("a") == ["r1", "r2"] and rooms.rooms_of("b") == ["r2"]
    assert rooms.leave("a", "r1") is True
    assert rooms.leave("a", "r1") is False
    assert rooms.leave("b", "nowhere") is False
    assert rooms.is_member("a", "r2") and not rooms.is_member("a", "r1")


def test_forget_drops_every_membership_of_a_member() -> None:
    rooms: Rooms[str] = Rooms()
    rooms.join("a", "r1")
    rooms.join("a", "r2")
    rooms.join("b", "r1")
    rooms.forget("a")
    assert rooms.members("r1") == ["b"] and rooms.members("r2") == []
    assert rooms.rooms_of("a") == []


def test_history_keeps_the_last_events_and_replays_after_n() -> None:
    rooms: Rooms[str] = Rooms(max_events=3)
    for value in range(5):
        rooms.post("r", value)
    assert [e.room_seq for e in rooms.events_after("r", 0)] == [3, 4, 5]
    assert [e.value for e in rooms.events_after("r", 3)] == [3, 4]
    assert rooms.events_after("r", 5) == [] and rooms.events_after("unknown", 0) == []


def test_the_default_history_bound_is_1000_events() -> None:
    rooms: Rooms[str] = Rooms()
    for value in range(MAX_EVENTS_PER_ROOM + 5):
        rooms.post("r", value)
    kept = rooms.events_after("r", 0)
    assert len(kept) == MAX_EVENTS_PER_ROOM == 1000
    assert kept[0].room_seq == 6 and kept[-1].room_seq == 1005


def test_a_room_event_carries_the_room_its_number_and_the_value_only() -> None:
    event = RoomEvent("r1", 7, "v")
    assert event.as_json() == {"room": "r1", "room_seq": 7, "value": "v"}
    assert event.as_json("r2") == {"room": "r2", "room_seq": 7, "value": "v"}


# -- Rooms: who receives an event -------------------------------------------------------


def _two_rooms() -> Rooms[str]:
    rooms: Rooms[str] = Rooms()
    rooms.join("a", "r1")
    rooms.join("b", "r1")
    rooms.join("c", "r2")
    rooms.join("d", "r3")
    rooms.join("d", "r2")
    return rooms


def test_an_event_reaches_the_members_of_its_room_only() -> None:
    rooms = _two_rooms()
    event = rooms.post("r1", 1)
    assert rooms.deliveries(event) == [Delivery("a", "r1"), Delivery("b", "r1")]


def test_under_room_leak_every_other_member_gets_the_event_unchanged_once() -> None:
    rooms = _two_rooms()
    event = rooms.post("r1", 1)
    deliveries = rooms.deliveries(event, leak=True)
    assert sorted((d.member, d.room) for d in deliveries) == [
        ("a", "r1"), ("b", "r1"), ("c", "r1"), ("d", "r1"),
    ]  # fmt: skip


def test_under_room_relabel_other_members_get_it_named_after_their_first_room() -> None:
    rooms = _two_rooms()
    event = rooms.post("r1", 1)
    deliveries = rooms.deliveries(event, relabel=True)
    assert sorted((d.member, d.room) for d in deliveries) == [
        ("a", "r1"), ("b", "r1"), ("c", "r2"), ("d", "r3"),
    ]  # fmt: skip


def test_a_member_who_left_under_the_fault_still_receives_but_is_no_member() -> None:
    rooms: Rooms[str] = Rooms()
    rooms.join("a", "r")
    rooms.join("b", "r")
    assert rooms.leave("a", "r", keep_delivering=True)
    assert not rooms.is_member("a", "r") and rooms.leave("a", "r", keep_delivering=True) is False
    event = rooms.post("r", 1)
    assert {d.member for d in rooms.deliveries(event)} == {"a", "b"}
    rooms.join("a", "r")  # joining again makes it a plain member, once
    assert [d.member for d in rooms.deliveries(rooms.post("r", 2))] == ["b", "a"]


# -- input checks ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", 3, ["r"], {"r": 1}, True])
def test_a_room_name_must_be_a_non_empty_string(value: object) -> None:
    problem = room_problem(value)
    assert problem is not None and problem.startswith("'room' must be a non-empty string, got")
    assert "\n" not in problem


def test_a_good_room_name_has_no_problem() -> None:
    assert room_problem("lobby") is None and room_problem("a b/c") is None


@pytest.mark.parametrize("value", [None, -1, 1.5, "3", True, [1]])
def test_after_must_be_an_integer_not_below_zero(value: object) -> None:
    assert after_problem(value) == f"'after' must be an integer >= 0, got {value!r}"


@pytest.mark.parametrize("value", [0, 12])
def test_a_good_after_has_no_problem(value: int) -> None:
    assert after_problem(value) is None


@pytest.mark.parametrize("value", [None, "s", 1, 2.5, True, False])
def test_a_json_scalar_is_a_value(value: object) -> None:
    assert value_problem(value) is None


@pytest.mark.parametrize(("value", "kind"), [([1], "an array"), ({"k": 1}, "an object")])
def test_an_array_or_object_is_not_a_value(value: object, kind: str) -> None:
    assert value_problem(value) == (
        f"'value' must be a JSON scalar (string, number, boolean or null), got {kind}"
    )


def test_a_long_bad_room_name_is_shortened_in_the_problem() -> None:
    problem = room_problem(["x" * 500])
    assert problem is not None and len(problem) < 100


@pytest.mark.parametrize(
    ("path", "room"),
    [
        ("/rooms/lobby", "lobby"),
        ("/rooms/lobby?token=abc", "lobby"),
        ("/rooms/a%20b", "a b"),
        ("/rooms/", ""),
        ("/", None),
        ("/rooms", None),
        ("/ws?user=alice", None),
        ("/other/rooms/x", None),
    ],
)
def test_the_room_of_a_request_path(path: str, room: str | None) -> None:
    assert room_from_path(path) == room


def test_the_room_state_is_pure() -> None:
    """Imported alone in a fresh interpreter, it loads no I/O module."""
    code = "import sys, pytest_ws_resilience.testing.rooms; print(*sorted(sys.modules), sep='\\n')"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(run.stdout.split())
    io_modules = ("asyncio", "socket", "subprocess", "pytest", "websockets")
    assert [name for name in io_modules if name in loaded] == []


# -- RoomService without sockets: the handlers and the join race slot ------------------


class Recorder:
    """The server side of `RoomService` for a unit test: frames kept per client."""

    def __init__(self, faults: frozenset[str] = frozenset(), delay: float = 0.0) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.closed: set[str] = set()
        self.faults = faults
        self.service: RoomService[str] = RoomService(
            send=self.send,
            send_twice=lambda client, payload: self.send([client, client], payload),
            faults=lambda: self.faults,
            join_delay_s=delay,
            is_open=lambda client: client not in self.closed,
        )

    def send(self, clients: Any, payload: dict[str, Any]) -> None:
        for client in clients:
            self.frames.setdefault(client, []).append(payload)

    def types(self, client: str) -> list[str]:
        return [frame["type"] for frame in self.frames.get(client, [])]


@pytest.mark.asyncio
async def test_the_service_answers_join_post_leave_in_order() -> None:
    server = Recorder()
    await server.service.handle("a", "join", {"room": "r"})
    await server.service.handle("a", "post", {"room": "r", "value": 5})
    await server.service.handle("a", "leave", {"room": "r"})
    await server.service.handle("a", "leave", {"room": "r"})
    frames = server.frames["a"]
    assert frames[:3] == [
        {"type": "joined", "room": "r", "head": 0},
        {"type": "room_event", "room": "r", "room_seq": 1, "value": 5},
        {"type": "left", "room": "r"},
    ]
    assert frames[3]["type"] == "error" and frames[3]["code"] == "not_a_member"


@pytest.mark.asyncio
async def test_resume_replays_after_n_then_answers_resumed() -> None:
    server = Recorder()
    for value in "abc":
        server.service.rooms.post("r", value)
    await server.service.handle("a", "resume", {"room": "r", "after": 1})
    assert server.frames["a"] == [
        {"type": "room_event", "room": "r", "room_seq": 2, "value": "b"},
        {"type": "room_event", "room": "r", "room_seq": 3, "value": "c"},
        {"type": "resumed", "room": "r", "head": 3, "replayed": 2},
    ]
    assert server.service.rooms.is_member("a", "r")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "values", "replayed"),
    [(DUPLICATE_REPLAY, ["b", "b", "c"], 2), (LOSE_MISSED_EVENTS, [], 0)],
)
async def test_the_replay_faults(fault: str, values: list[str], replayed: int) -> None:
    server = Recorder(frozenset({fault}))
    for value in "abc":
        server.service.rooms.post("r", value)
    await server.service.handle("a", "resume", {"room": "r", "after": 1})
    frames = server.frames["a"]
    assert [f["value"] for f in frames if f["type"] == "room_event"] == values
    assert frames[-1] == {"type": "resumed", "room": "r", "head": 3, "replayed": replayed}


@pytest.mark.asyncio
async def test_deliver_after_leave_answers_left_and_keeps_delivering() -> None:
    server = Recorder(frozenset({DELIVER_AFTER_LEAVE}))
    await server.service.handle("a", "join", {"room": "r"})
    await server.service.handle("b", "join", {"room": "r"})
    await server.service.handle("a", "leave", {"room": "r"})
    await server.service.handle("b", "post", {"room": "r", "value": 1})
    assert server.types("a") == ["joined", "left", "room_event"]


@pytest.mark.asyncio
async def test_two_overlapping_joins_under_join_race_swap_the_first_joiner_out() -> None:
    server = Recorder(frozenset({JOIN_RACE}), delay=0.01)
    await asyncio.gather(server.service.join("a", "r1"), server.service.join("b", "r2"))
    rooms = server.service.rooms
    assert rooms.rooms_of("a") == [] and rooms.rooms_of("b") == ["r1", "r2"]
    assert server.types("a") == ["joined"] and server.types("b") == ["joined"]


@pytest.mark.asyncio
async def test_sequential_joins_under_join_race_are_right() -> None:
    server = Recorder(frozenset({JOIN_RACE}), delay=0.001)
    await server.service.join("a", "r1")
    await server.service.join("b", "r2")
    rooms = server.service.rooms
    assert rooms.rooms_of("a") == ["r1"] and rooms.rooms_of("b") == ["r2"]


@pytest.mark.asyncio
async def test_the_race_slot_never_keeps_a_closed_or_cancelled_joiner() -> None:
    server = Recorder(frozenset({JOIN_RACE}), delay=0.05)
    join = asyncio.create_task(server.service.join("a", "r1"))
    await asyncio.sleep(0)  # the join is waiting, "a" in the slot
    server.closed.add("a")
    server.service.forget("a")  # its connection closed
    assert server.service.pending is None
    await join
    assert server.service.rooms.members("r1") == []
    cancelled = asyncio.create_task(server.service.join("b", "r2"))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert server.service.pending is None
    assert server.service.rooms.rooms_of("b") == []
