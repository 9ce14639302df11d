"""Leaks that no content shows: rooms whose events carry nothing but a room name and a
number. The isolation detector looks for another user's strings; here there are none,
so the rules are declared once and checked on every frame (docs/isolation.md, "Beyond
content"):

- a scope rule: which rooms a connection may see, learned from its joins and leaves;
- a stream rule: each room's ``room_seq`` runs 1, 2, 3... with no gap, no repeat;
- a differential run: each user alone, then all at once, streams compared;
- a race: joins released together, round after round, with a printed seed;
- a resume: after a reconnect, the replay holds exactly the events missed.

The reference server's rooms: ``join``/``joined``, ``leave``/``left``, ``post`` ->
``room_event`` to every member, ``resume`` after a number (docs/reference-server.md).
"""

import pytest


@pytest.fixture
def rooms(ws_isolation):
    """``ws_isolation`` with the rules of a rooms protocol, declared before any client
    joins: a connection may see the rooms it joined (until the server says ``left``),
    and each room's events are numbered without gaps or repeats."""
    ws_isolation.scope("room", join=[{"type": "join"}, {"type": "resume"}], leave={"type": "left"})
    ws_isolation.stream("room_seq", per="room")
    return ws_isolation


async def join(client, room):
    await client.send_json({"type": "join", "room": room})
    await client.expect("joined", room=room)


async def post(client, room, value):
    await client.send_json({"type": "post", "room": room, "value": value})
    await client.expect("room_event", room=room, value=value)


@pytest.mark.asyncio
async def test_each_room_sees_only_its_own_events(rooms, ws_client_factory):
    alice, bob = await ws_client_factory(), await ws_client_factory()
    await join(alice, "red")
    await join(bob, "blue")
    for move in range(3):
        await post(alice, "red", move)
        await post(bob, "blue", move)
    # No assertion on fields: the rules judged every frame; a frame of "red" reaching
    # bob, or a room_seq skipped or repeated, would fail this test with the report.
    assert rooms.rule_violations == []


@pytest.mark.asyncio
async def test_an_event_without_user_data_reaching_another_room_is_caught(
    rooms, ws_server, ws_client_factory
):
    rooms.expect_violations()  # this example provokes the bug on purpose
    alice, bob = await ws_client_factory(), await ws_client_factory()
    with ws_server.faults("room_leak"):
        await join(alice, "red")
        await join(bob, "blue")
        await post(alice, "red", 7)
        await bob.expect("room_event", room="red")  # the leaked frame: {"room": "red", ...}
    assert {v.kind for v in rooms.rule_violations} == {"scope"}
    print(rooms.report())  # bob, the frame, and bob's entitlement timeline


@pytest.mark.asyncio
async def test_a_room_left_sends_nothing_more(rooms, ws_client_factory):
    alice, bob = await ws_client_factory(), await ws_client_factory()
    for client in (alice, bob):
        await join(client, "red")
    await alice.send_json({"type": "leave", "room": "red"})
    await alice.expect("left", room="red")
    await post(bob, "red", 1)  # alice must not get it: the scope rule would say so
    await alice.ping()  # a round trip after it: anything in flight has arrived
    assert rooms.rule_violations == []


@pytest.mark.asyncio
async def test_per_room_endpoints(ws_isolation, ws_client_factory):
    # One endpoint per room: the URL's path says which room a connection may see.
    ws_isolation.scope("room", path="/rooms/{room}")
    red = await ws_client_factory(path="/rooms/{room}", path_params={"room": "red"})
    blue = await ws_client_factory(path="/rooms/{room}", path_params={"room": "blue"})
    await red.expect("joined", room="red")
    await blue.expect("joined", room="blue")
    await post(red, "red", 1)
    await post(blue, "blue", 2)
    assert ws_isolation.rule_violations == []


@pytest.mark.asyncio
async def test_a_user_alone_and_among_others_sees_the_same_stream(ws_isolation):
    async def play(client, index):
        room = f"table-{index}"
        await join(client, room)
        for move in range(3):
            await post(client, room, move)

    # Each user alone, then 5 at once: an extra frame is crosstalk, a missing one loss.
    result = await ws_isolation.differential(play, users=5)
    assert result.ok
    print(result.report())  # per user: frames compared, extra, missing, moved


@pytest.mark.asyncio
async def test_joins_that_land_in_the_same_milliseconds(rooms):
    async def join_and_post(client, index):
        await join(client, f"room-{index}")
        await client.send_json({"type": "post", "room": f"room-{index}", "value": index})

    # 20 users join at once, 5 rounds, each client delayed by its own seeded jitter:
    # a failing round prints its seed, and race(..., seed=<it>, rounds=1) replays it.
    result = await rooms.race(join_and_post, users=20, rounds=5)
    assert not result.caught
    print(result.replay_line())


@pytest.mark.asyncio
async def test_a_resume_replays_exactly_what_was_missed(rooms, ws_client_factory):
    alice, bob = await ws_client_factory(), await ws_client_factory()
    for client in (alice, bob):
        await join(client, "red")
    await post(alice, "red", "before")
    await alice.close()  # alice is away...
    for value in ("while", "away"):
        await post(bob, "red", value)
    # ...and comes back: reconnect, resume after the last number she saw, and the
    # replay is judged: none twice, none lost.
    replay = await rooms.resume(alice, {"type": "resume", "room": "red"})
    assert replay.ok
