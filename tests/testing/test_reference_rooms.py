"""The reference server's rooms over real loopback sockets, with raw websockets clients.

The protocol (join, leave, post, room_event, resume, the ``/rooms/<name>`` endpoint),
its input errors, membership ending at close, and each room fault as a client sees it:
these are the servers issue 13's scope, stream, race and resume checks are proven on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.testing import (
    DELIVER_AFTER_LEAVE,
    DUPLICATE_REPLAY,
    JOIN_RACE,
    LOSE_MISSED_EVENTS,
    ROOM_LEAK,
    ROOM_RELABEL,
    EmbeddedServer,
    ReferenceServer,
    ServerConfig,
)
from pytest_ws_resilience.testing.__main__ import UsageError, build_parser, config_from_args

#: Bound of every single receive in this file; generous, only hit when something is wrong.
RECV_S = 5.0
#: The join window of the race tests: wide, so two joins sent together land in it even
#: on a loaded machine.
RACE_WINDOW_S = 0.25


class Peer:
    """One raw client connection and the frames it has received, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seqs: list[int] = []

    async def send(self, kind: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": kind, **fields}))

    async def recv(self) -> dict[str, Any]:
        async with asyncio.timeout(RECV_S):
            raw = await self.ws.recv()
        assert isinstance(raw, str)
        frame = json.loads(raw)
        assert isinstance(frame, dict)
        self.seqs.append(frame["seq"])
        return frame

    async def expect(self, kind: str) -> dict[str, Any]:
        frame = await self.recv()
        assert frame["type"] == kind, frame
        return frame

    async def join(self, room: str) -> dict[str, Any]:
        await self.send("join", room=room)
        return await self.expect("joined")

    async def post(self, room: str, value: Any) -> dict[str, Any]:
        """Post and return the first frame that follows (our event, or an error)."""
        await self.send("post", room=room, value=value)
        return await self.recv()

    async def pending(self) -> list[dict[str, Any]]:
        """Every frame already sent to this connection, up to the answer to a fresh ping
        (the server writes in order, so anything sent before the ping arrives first)."""
        nonce = uuid.uuid4().hex
        await self.send("ping", nonce=nonce)
        frames = []
        while (frame := await self.recv())["type"] != "pong" or frame.get("nonce") != nonce:
            frames.append(frame)
        return frames

    async def error(self, kind: str, **fields: Any) -> dict[str, Any]:
        await self.send(kind, **fields)
        frame = await self.expect("error")
        assert set(frame) == {"type", "code", "message", "seq"}
        assert "\n" not in frame["message"]
        return frame


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory(secrets.token_urlsafe(32))


def room_config(tokens: TokenFactory, **changes: Any) -> ServerConfig:
    base: dict[str, Any] = {"secret": tokens.secret, "ping_interval": None}
    base.update(changes)
    return ServerConfig(**base)


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(room_config(tokens)) as running:
        yield running


@contextlib.asynccontextmanager
async def peer(
    server: ReferenceServer | EmbeddedServer, tokens: TokenFactory, path: str = "/"
) -> AsyncIterator[Peer]:
    """A connection of a new user, past its ``connection_established``."""
    url = server.url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {tokens.user().token}"}
    async with connect(
        url, additional_headers=headers, proxy=None, open_timeout=RECV_S, close_timeout=1
    ) as ws:
        client = Peer(ws)
        await client.expect("connection_established")
        yield client


async def handlers_ended(server: ReferenceServer, remaining: int) -> None:
    """Wait (bounded) until the server's connection handlers are down to ``remaining``:
    a handler ends a moment after its client's close, and its cleanup with it."""
    async with asyncio.timeout(RECV_S):
        while server.stats.active_connections > remaining:  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0.005)


def room() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


async def rooms_of(client: Peer, candidates: list[str]) -> list[str]:
    """The rooms among ``candidates`` the server counts ``client`` a member of: a post
    is accepted only from a member. Every post is awaited to its answer."""
    found = []
    for name in candidates:
        await client.send("post", room=name, value="probe")
        while True:
            frame = await client.recv()
            if frame["type"] == "error":
                assert frame["code"] == "not_a_member", frame
                break
            if frame["type"] == "room_event" and frame["room"] == name:
                if frame["value"] == "probe":
                    found.append(name)
                    break
    return found


# -- the protocol ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_join_post_leave_with_room_seq_per_room_and_the_sender_served_too(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1, r2 = room(), room()
    async with peer(server, tokens) as alice, peer(server, tokens) as bob:
        assert await alice.join(r1) == {"type": "joined", "room": r1, "head": 0, "seq": 2}
        await bob.join(r1)
        assert await alice.post(r1, "hello") == {
            "type": "room_event", "room": r1, "room_seq": 1, "value": "hello", "seq": 3,
        }  # fmt: skip
        got = await bob.expect("room_event")
        assert {k: got[k] for k in ("room", "room_seq", "value")} == {
            "room": r1, "room_seq": 1, "value": "hello"
        }  # fmt: skip
        assert set(got) == {"type", "room", "room_seq", "value", "seq"}  # no user data
        await alice.join(r2)
        assert (await alice.post(r2, 2.5))["room_seq"] == 1  # its own numbering
        assert (await alice.post(r1, None))["room_seq"] == 2
        assert [(f["room"], f["room_seq"], f["value"]) for f in await bob.pending()] == [
            (r1, 2, None)
        ]
        await alice.send("leave", room=r1)
        assert await alice.expect("left") == {"type": "left", "room": r1, "seq": alice.seqs[-1]}
        await bob.post(r1, True)
        assert [f["room"] for f in await alice.pending()] == []
        assert (await alice.join(r1))["head"] == 3
        assert alice.seqs == list(range(1, len(alice.seqs) + 1))  # per connection, no gap


@pytest.mark.asyncio
async def test_two_rooms_are_apart_and_membership_is_per_connection(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1, r2 = room(), room()
    async with (
        peer(server, tokens) as a,
        peer(server, tokens) as b,
        peer(server, tokens) as c,
    ):
        await a.join(r1)
        await b.join(r2)
        await a.post(r1, "for r1")
        await b.post(r2, "for r2")
        assert await a.pending() == [] and await b.pending() == [] and await c.pending() == []
        assert await rooms_of(c, [r1, r2]) == []
        assert server.room_members(r1) == 1 and server.room_members(r2) == 1


@pytest.mark.asyncio
async def test_membership_is_per_connection_not_per_user(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1 = room()
    user = tokens.user()
    headers = {"Authorization": f"Bearer {user.token}"}
    async with (
        connect(server.url, additional_headers=headers, proxy=None) as ws1,
        connect(server.url, additional_headers=headers, proxy=None) as ws2,
    ):
        one, two = Peer(ws1), Peer(ws2)
        assert (await one.expect("connection_established"))["user_id"] == user.id
        assert (await two.expect("connection_established"))["user_id"] == user.id
        await one.join(r1)
        await one.post(r1, 1)
        assert await two.pending() == []
        assert (await two.post(r1, 2))["code"] == "not_a_member"


@pytest.mark.asyncio
async def test_resume_replays_exactly_after_n_then_answers_resumed(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1 = room()
    async with peer(server, tokens) as poster, peer(server, tokens) as back:
        await poster.join(r1)
        for value in range(5):
            await poster.post(r1, value)
        await back.send("resume", room=r1, after=2)
        replay = [await back.recv() for _ in range(3)]
        assert [(f["type"], f["room_seq"], f["value"]) for f in replay] == [
            ("room_event", 3, 2), ("room_event", 4, 3), ("room_event", 5, 4),
        ]  # fmt: skip
        resumed = await back.expect("resumed")
        assert resumed == {"type": "resumed", "room": r1, "head": 5, "replayed": 3,
                           "seq": resumed["seq"]}  # fmt: skip
        await poster.post(r1, "live")  # resume joined the room
        assert [(f["room_seq"], f["value"]) for f in await back.pending()] == [(6, "live")]
        await back.send("resume", room=r1, after=6)
        assert (await back.expect("resumed"))["replayed"] == 0
        await back.send("resume", room=room(), after=0)
        resumed = await back.expect("resumed")
        assert (resumed["head"], resumed["replayed"]) == (0, 0)


@pytest.mark.asyncio
async def test_history_is_bounded_to_the_last_1000_events(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1 = room()
    async with peer(server, tokens) as poster, peer(server, tokens) as back:
        await poster.join(r1)
        for value in range(1005):
            await poster.send("post", room=r1, value=value)
        events = [await poster.expect("room_event") for _ in range(1005)]
        assert [e["room_seq"] for e in events] == list(range(1, 1006))
        await back.send("resume", room=r1, after=0)
        replay = [await back.expect("room_event") for _ in range(1000)]
        assert (replay[0]["room_seq"], replay[-1]["room_seq"]) == (6, 1005)
        resumed = await back.expect("resumed")
        assert (resumed["head"], resumed["replayed"]) == (1005, 1000)


@pytest.mark.asyncio
async def test_a_rooms_path_joins_its_room_at_open(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1 = room()
    async with peer(server, tokens) as poster:
        await poster.join(r1)
        await poster.post(r1, "before")
        async with peer(server, tokens, f"/rooms/{r1}") as member:
            joined = await member.recv()
            assert joined == {"type": "joined", "room": r1, "head": 1, "seq": 2}
            await poster.post(r1, "after")
            assert [f["value"] for f in await member.pending()] == ["after"]
        async with peer(server, tokens, "/rooms/a%20b?x=1") as spaced:
            assert (await spaced.expect("joined"))["room"] == "a b"


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/", "/ws", "/rooms", "/other/rooms/x"])
async def test_every_other_path_works_as_before(
    server: ReferenceServer, tokens: TokenFactory, path: str
) -> None:
    async with peer(server, tokens, path) as client:
        assert await client.pending() == []


@pytest.mark.asyncio
async def test_an_empty_rooms_path_is_an_error_frame_and_the_connection_stays(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with peer(server, tokens, "/rooms/") as client:
        frame = await client.expect("error")
        assert frame["code"] == "invalid_message" and "names no room" in frame["message"]
        assert (await client.join(room()))["head"] == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "fields", "code", "phrase"),
    [
        ("join", {}, "invalid_message", "'room' must be a non-empty string"),
        ("join", {"room": ""}, "invalid_message", "'room' must be a non-empty string"),
        ("join", {"room": 7}, "invalid_message", "'room' must be a non-empty string"),
        ("leave", {"room": None}, "invalid_message", "'room' must be a non-empty string"),
        ("post", {"room": ["r"], "value": 1}, "invalid_message", "'room' must be"),
        ("resume", {"room": "", "after": 0}, "invalid_message", "'room' must be"),
        ("resume", {"room": "r"}, "invalid_message", "'after' must be an integer >= 0"),
        ("resume", {"room": "r", "after": -1}, "invalid_message", "'after' must be"),
        ("resume", {"room": "r", "after": "3"}, "invalid_message", "'after' must be"),
        ("resume", {"room": "r", "after": 1.5}, "invalid_message", "'after' must be"),
        ("resume", {"room": "r", "after": True}, "invalid_message", "'after' must be"),
        ("post", {"room": "r", "value": [1]}, "invalid_message", "must be a JSON scalar"),
        ("post", {"room": "r", "value": {"a": 1}}, "invalid_message", "must be a JSON scalar"),
        ("post", {"room": "r"}, "invalid_message", "missing field 'value'"),
        ("post", {"room": "r", "value": 1}, "not_a_member", "not a member of room 'r'"),
        ("leave", {"room": "r"}, "not_a_member", "not a member of room 'r'"),
    ],
)
async def test_each_input_error_is_an_error_frame_and_the_connection_stays_open(
    server: ReferenceServer,
    tokens: TokenFactory,
    kind: str,
    fields: dict[str, Any],
    code: str,
    phrase: str,
) -> None:
    async with peer(server, tokens) as client:
        frame = await client.error(kind, **fields)
        assert frame["code"] == code and phrase in frame["message"], frame
        assert frame["message"].startswith(f"{kind}: ")
        assert (await client.join(room()))["type"] == "joined"


@pytest.mark.asyncio
async def test_membership_is_forgotten_when_a_connection_closes(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1, r2 = room(), room()
    async with peer(server, tokens) as stays:
        await stays.join(r1)
        async with peer(server, tokens) as goes:
            await goes.join(r1)
            await goes.join(r2)
            assert (server.room_members(r1), server.room_members(r2)) == (2, 1)
        await handlers_ended(server, remaining=1)
        assert (server.room_members(r1), server.room_members(r2)) == (1, 0)
        assert (await stays.post(r1, "still served"))["room_seq"] == 1


@pytest.mark.asyncio
async def test_a_join_takes_the_join_delay_on_the_clean_and_the_faulty_server(
    tokens: TokenFactory,
) -> None:
    config = room_config(tokens, join_delay_s=0.05)
    async with ReferenceServer(config) as server, peer(server, tokens) as client:
        for faults in ((), (JOIN_RACE,)):
            server.set_faults(*faults)
            started = time.monotonic()
            await client.join(room())
            assert time.monotonic() - started >= config.join_delay_s


# -- the faults --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_room_leak_sends_another_rooms_event_unchanged(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1, r2 = room(), room()
    async with peer(server, tokens) as sender, peer(server, tokens) as other:
        await sender.join(r1)
        await other.join(r2)
        server.set_faults(ROOM_LEAK)
        own = await sender.post(r1, 42)
        [leaked] = await other.pending()
        assert leaked == {"type": "room_event", "room": r1, "room_seq": 1, "value": 42,
                          "seq": leaked["seq"]}  # fmt: skip
        assert {k: v for k, v in leaked.items() if k != "seq"} == {
            k: v for k, v in own.items() if k != "seq"
        }
        server.set_faults()
        await sender.post(r1, 43)
        assert await other.pending() == []


@pytest.mark.asyncio
async def test_room_relabel_shows_the_receivers_room(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1, r2 = room(), room()
    async with peer(server, tokens) as sender, peer(server, tokens) as other:
        await sender.join(r1)
        await other.join(r2)
        server.set_faults(ROOM_RELABEL)
        await sender.post(r1, "secret move")
        [relabelled] = await other.pending()
        assert (relabelled["room"], relabelled["room_seq"], relabelled["value"]) == (
            r2, 1, "secret move",
        )  # fmt: skip


@pytest.mark.asyncio
async def test_deliver_after_leave_answers_left_and_keeps_delivering(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    r1 = room()
    async with peer(server, tokens) as sender, peer(server, tokens) as leaver:
        await sender.join(r1)
        await leaver.join(r1)
        server.set_faults(DELIVER_AFTER_LEAVE)
        await leaver.send("leave", room=r1)
        await leaver.expect("left")
        await sender.post(r1, "after you left")
        assert [(f["room"], f["value"]) for f in await leaver.pending()] == [(r1, "after you left")]
        assert (await leaver.post(r1, "me?"))["code"] == "not_a_member"


async def _joins_sent_together(
    server: ReferenceServer, tokens: TokenFactory
) -> tuple[list[str], list[str], str, str]:
    r1, r2 = room(), room()
    async with peer(server, tokens) as a, peer(server, tokens) as b:
        await asyncio.gather(a.send("join", room=r1), b.send("join", room=r2))
        assert (await a.expect("joined"))["room"] == r1
        assert (await b.expect("joined"))["room"] == r2
        return await rooms_of(a, [r1, r2]), await rooms_of(b, [r1, r2]), r1, r2


@pytest.mark.asyncio
async def test_join_race_two_joins_sent_together_put_the_second_joiner_in_the_first_room(
    tokens: TokenFactory,
) -> None:
    config = room_config(tokens, join_delay_s=RACE_WINDOW_S, faults={JOIN_RACE})
    async with ReferenceServer(config) as server:
        for _ in range(3):
            in_a, in_b, r1, r2 = await _joins_sent_together(server, tokens)
            # Whichever join landed first: its joiner is in no room although answered
            # `joined`, and the second joiner is in both rooms.
            assert sorted([in_a, in_b], key=len) == [[], [r1, r2]]


@pytest.mark.asyncio
async def test_join_race_never_shows_with_sequential_joins_nor_on_the_clean_server(
    tokens: TokenFactory,
) -> None:
    config = room_config(tokens, join_delay_s=RACE_WINDOW_S / 10, faults={JOIN_RACE})
    async with ReferenceServer(config) as server:
        for _ in range(5):
            r1, r2 = room(), room()
            async with peer(server, tokens) as a, peer(server, tokens) as b:
                await a.join(r1)
                await b.join(r2)
                assert await rooms_of(a, [r1, r2]) == [r1]
                assert await rooms_of(b, [r1, r2]) == [r2]
        server.set_faults()
        for _ in range(3):
            in_a, in_b, r1, r2 = await _joins_sent_together(server, tokens)
            assert (in_a, in_b) == ([r1], [r2])


@pytest.mark.asyncio
async def test_join_race_slot_does_not_keep_a_connection_that_closed(
    tokens: TokenFactory,
) -> None:
    config = room_config(tokens, join_delay_s=RACE_WINDOW_S / 5, faults={JOIN_RACE})
    async with ReferenceServer(config) as server:
        r1 = room()
        async with peer(server, tokens) as gone:
            await gone.send("join", room=r1)  # closes while the join waits
        await handlers_ended(server, remaining=0)
        assert server.room_members(r1) == 0
        assert server._rooms.pending is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "room_seqs", "replayed"),
    [(None, [2, 3], 2), (DUPLICATE_REPLAY, [2, 2, 3], 2), (LOSE_MISSED_EVENTS, [], 0)],
)
async def test_resume_under_the_replay_faults(
    server: ReferenceServer,
    tokens: TokenFactory,
    fault: str | None,
    room_seqs: list[int],
    replayed: int,
) -> None:
    r1 = room()
    async with peer(server, tokens) as poster, peer(server, tokens) as back:
        await poster.join(r1)
        for value in range(3):
            await poster.post(r1, value)
        server.set_faults(*([fault] if fault else []))
        await back.send("resume", room=r1, after=1)
        frames = []
        while (frame := await back.recv())["type"] != "resumed":
            frames.append(frame)
        assert [f["room_seq"] for f in frames] == room_seqs
        assert (frame["head"], frame["replayed"]) == (3, replayed)
        if fault == DUPLICATE_REPLAY:
            assert frames[0] == frames[1]  # the identical frame, seq included


def test_rooms_work_on_the_embedded_server_and_set_faults_crosses_threads(
    tokens: TokenFactory,
) -> None:
    async def scenario(server: EmbeddedServer) -> list[dict[str, Any]]:
        r1, r2 = room(), room()
        async with peer(server, tokens) as a, peer(server, tokens, f"/rooms/{r2}") as b:
            await b.expect("joined")
            await a.join(r1)
            await a.post(r1, "x")
            return await b.pending()

    with EmbeddedServer(room_config(tokens)) as server:
        assert asyncio.run(scenario(server)) == []
        server.set_faults(ROOM_LEAK)
        assert [f["value"] for f in asyncio.run(scenario(server))] == ["x"]


def test_join_delay_defaults_to_5_ms_and_the_command_line_sets_it() -> None:
    assert ServerConfig(require_auth=False).join_delay_s == 0.005
    args = build_parser().parse_args(["--no-auth", "--join-delay", "0.2"])
    assert config_from_args(args, environ={}).join_delay_s == 0.2
    bad = build_parser().parse_args(["--no-auth", "--join-delay", "-1"])
    with pytest.raises(UsageError, match="join_delay_s must be >= 0"):
        config_from_args(bad, environ={})
