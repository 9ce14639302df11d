"""Channels' tutorial chat over real sockets: rooms are groups, and a room keeps its talk.

Every test runs against the chat as served by the plugin: by uvicorn (``--ws-app``, the
default here, from pyproject.toml) or by daphne (``--ws-server-cmd``). The chat checks
no token (``auth_methods = ["none"]``), but the plugin still gives each client a user of
its own, so the isolation detector knows whose words are whose.
"""

import asyncio

import pytest

from pytest_ws_resilience.errors import WsResilienceError

ROOM = "/ws/chat/{room}/"  # the tutorial's route, ws/chat/<room_name>/


async def join(ws_client_factory, room, **options):
    """A fresh user's connection to ``room``."""
    return await ws_client_factory(path=ROOM, path_params={"room": room}, **options)


async def say(client, text):
    """Send ``text`` to the client's room and wait for the room to echo it back."""
    await client.send_json({"message": text})
    await client.expect(message=text)


# -- one room -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_users_in_the_same_room_see_each_others_messages(ws_client_factory):
    alice, bob = await join(ws_client_factory, "lobby"), await join(ws_client_factory, "lobby")

    await alice.send_json({"message": "hello from alice"})
    # The group delivers to every member, the sender included.
    await asyncio.gather(
        alice.expect(message="hello from alice"), bob.expect(message="hello from alice")
    )
    await bob.send_json({"message": "hi alice, bob here"})
    await asyncio.gather(
        alice.expect(message="hi alice, bob here"), bob.expect(message="hi alice, bob here")
    )


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_a_foreign_origin_is_refused(ws_client_factory):
    # AllowedHostsOriginValidator: a page of another site may not open the chat socket.
    with pytest.raises(WsResilienceError, match="403"):
        await join(ws_client_factory, "lobby", origin="http://evil.example", connect_retries=0)


# -- rooms apart: the isolation detector, taint on chat text ----------------------------


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_a_message_never_reaches_another_room(ws_client_factory, ws_isolation):
    alice = await join(ws_client_factory, "lobby")
    bob = await join(ws_client_factory, "kitchen")

    # What each user sends becomes theirs (taint): seen by anyone else, it is a leak.
    await say(alice, "alice plans the lobby party")
    await say(bob, "bob is baking in the kitchen")
    # One more round trip each: a stray message sent before it has arrived by now.
    await say(alice, "alice checks the guest list")
    await say(bob, "bob takes the bread out")

    assert ws_isolation.checks > 0  # frames were scanned: the check was live


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_many_rooms_at_once_keep_their_own_talk(ws_client_factory, ws_isolation):
    rooms = ["north", "south", "east", "west"]
    clients = await asyncio.gather(*(join(ws_client_factory, room) for room in rooms))

    for turn in range(3):
        await asyncio.gather(
            *(
                say(client, f"turn {turn} of the {room} room only")
                for client, room in zip(clients, rooms, strict=True)
            )
        )

    assert ws_isolation.checks >= len(rooms) * 3
