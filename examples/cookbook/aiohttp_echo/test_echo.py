"""An aiohttp server over real sockets: a text echo, chat rooms, and its Origin check.

The plugin runs ``server.py`` (``--ws-server-cmd``) on a free loopback port for the
session. The server checks no token (``auth_methods = ["none"]``) but refuses a
handshake whose Origin it does not know: pyproject.toml's ``origin`` is sent by every
client, storm and readiness probe of the run.
"""

import asyncio
import re

import pytest

from pytest_ws_resilience.errors import WsResilienceError

CHAT = "/chat/{room}"


async def join(ws_client_factory, room):
    return await ws_client_factory(path=CHAT, path_params={"room": room})


async def say(client, text):
    """Say ``text`` in the client's room and wait until the room relays it back."""
    await client.send_json({"text": text})
    await client.expect(text=text)


# -- the echo: plain text frames ----------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_the_echo_answers_hello_with_hello(ws_client):
    await ws_client.send_text("hello")

    await ws_client.expect_text("hello")  # the exact text


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_the_echo_by_pattern_predicate_and_bytes(ws_client):
    await ws_client.send_text("order 42 shipped")
    await ws_client.expect_text(re.compile(r"order \d+ shipped"))

    await ws_client.send_text("x" * 1000)
    await ws_client.expect_text(lambda text: len(text) == 1000)

    await ws_client.send_bytes(b"\x00\x01\xfe\xff")
    await ws_client.expect_bytes(b"\x00\x01\xfe\xff")


@pytest.mark.asyncio
@pytest.mark.performance
async def test_a_storm_with_the_origin_header(ws_storm):
    # Fifty connections at once, each sending one text frame and timing its echo; each
    # handshake carries the configured Origin, or the server would answer 403.
    result = await ws_storm.connect(50, message="storm says hello")

    result.assert_errors(max=0)
    assert result.replies_received == 50


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_a_foreign_origin_is_refused(ws_client_factory):
    with pytest.raises(WsResilienceError, match="403"):
        await ws_client_factory(origin="http://evil.example", connect_retries=0)


# -- chat rooms -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_room_members_hear_each_other(ws_client_factory):
    alice, bob = await join(ws_client_factory, "lobby"), await join(ws_client_factory, "lobby")

    await alice.send_json({"text": "hello from alice"})

    heard = await asyncio.gather(
        alice.expect(text="hello from alice"), bob.expect(text="hello from alice")
    )
    assert [frame["room"] for frame in heard] == ["lobby", "lobby"]


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_a_message_never_reaches_another_room(ws_client_factory, ws_isolation):
    alice = await join(ws_client_factory, "lobby")
    bob = await join(ws_client_factory, "kitchen")

    # What each user says is theirs (taint): heard in another room, it is a leak.
    await say(alice, "alice plans the lobby party")
    await say(bob, "bob is baking in the kitchen")
    await say(alice, "alice checks the guest list")  # a stray frame has arrived by now
    await say(bob, "bob takes the bread out")

    assert ws_isolation.checks > 0
