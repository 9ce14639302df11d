"""Cross-user leaks: the isolation detector watches every frame every user receives."""

import asyncio

import pytest


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_users_never_see_each_others_data(ws_client_factory, ws_isolation):
    # websocket_security turns ws_isolation on, strictly: any leak fails this test.
    users = await asyncio.gather(*(ws_client_factory() for _ in range(5)))
    for client in users:
        await client.send_json({"type": "user_message", "text": f"private note {client.canary()}"})
    await asyncio.gather(*(c.expect(type="agent_completed") for c in users))

    assert ws_isolation.violations == []
    assert ws_isolation.checks > 0  # frames were scanned: the check was live


@pytest.mark.asyncio
@pytest.mark.websocket_resilience
async def test_the_detector_catches_a_leaking_backend(ws_server, ws_client_factory, ws_isolation):
    # The reference server's "leak" fault copies each user's events to everyone else.
    ws_isolation.expect_violations()  # this test asserts on them itself
    alice, bob = await ws_client_factory(), await ws_client_factory()

    with ws_server.faults("leak"):
        await alice.send_json({"type": "user_message", "text": "alice's medical record"})
        await alice.expect(type="agent_completed")
        await bob.send_json({"type": "ping"})
        await bob.expect(type="pong")  # by now bob has received the leaked frames

    leak = ws_isolation.violations[0]
    assert (leak.receiver, leak.owner) == (bob.user.id, alice.user.id)
    print(leak)  # receiver and connection, owner, marker, and the frame (redacted)
