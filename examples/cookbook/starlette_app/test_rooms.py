"""A Starlette app over real sockets: plain text frames, rooms, rooms apart.

The plugin serves rooms.py with uvicorn (``--ws-app``, from pyproject.toml). Frames are
plain text: the tests wait with ``expect_text`` (a string, a regex or a predicate).
"""

import asyncio
import re

import pytest

ROOM = "/ws/{room}"


async def join(ws_client_factory, room):
    return await ws_client_factory(path=ROOM, path_params={"room": room})


async def say(client, room, text):
    """Say ``text`` in ``room`` and wait until the room relays it back."""
    await client.send_text(text)
    await client.expect_text(f"[{room}] {text}")


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_a_room_relays_each_text_to_every_member(ws_client_factory):
    alice, bob = await join(ws_client_factory, "lobby"), await join(ws_client_factory, "lobby")

    await alice.send_text("hello from alice")

    await asyncio.gather(
        alice.expect_text("[lobby] hello from alice"),  # the exact text
        bob.expect_text(re.compile(r"\[lobby\] hello from \w+")),  # a regex
    )
    await bob.send_text("hi alice")
    await alice.expect_text(lambda text: text.endswith("hi alice"))  # a predicate


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_the_default_path_is_the_lobby(ws_client, ws_server):
    # pyproject.toml's path, /ws/lobby: ws_client connects there.
    assert ws_client.url == ws_server.url_for("/ws/{room}", room="lobby")

    await ws_client.send_text("anyone here?")
    await ws_client.expect_text("[lobby] anyone here?")


@pytest.mark.asyncio
@pytest.mark.performance
async def test_a_storm_into_one_room(ws_storm):
    result = await ws_storm.connect(
        30, path=ROOM, path_params={"room": "storm"}, message=lambda i: f"storm message {i}"
    )

    result.assert_errors(max=0)
    assert result.replies_received == 30


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_a_message_never_reaches_another_room(ws_client_factory, ws_isolation):
    alice = await join(ws_client_factory, "lobby")
    bob = await join(ws_client_factory, "kitchen")

    # A text frame is one value: what each user says is theirs (taint).
    await say(alice, "lobby", "alice plans the lobby party")
    await say(bob, "kitchen", "bob is baking in the kitchen")
    await say(alice, "lobby", "alice checks the guest list")  # a stray frame is in by now
    await say(bob, "kitchen", "bob takes the bread out")

    assert ws_isolation.checks > 0
