"""A client that reconnects as the same user finds its conversation again."""

import pytest


@pytest.mark.asyncio
@pytest.mark.reconnection
async def test_reconnect_keeps_identity_and_history(ws_client):
    await ws_client.send_json(
        {"type": "user_message", "text": "remember the blue door", "thread_id": "t-door"}
    )
    await ws_client.expect(type="agent_completed", thread_id="t-door")
    first_id = ws_client.connection_id

    await ws_client.reconnect()

    welcome = await ws_client.expect(type="connection_established")
    assert welcome["user_id"] == ws_client.user.id
    assert ws_client.connection_id != first_id, "a new connection was opened"
    await ws_client.send_json({"type": "get_history", "thread_id": "t-door"})
    history = await ws_client.expect(type="history", thread_id="t-door")
    assert any("blue door" in m["text"] for m in history["messages"] if m["role"] == "user")


@pytest.mark.asyncio
@pytest.mark.reconnection
async def test_history_is_private_to_its_user(ws_client_factory):
    alice = await ws_client_factory()
    bob = await ws_client_factory()
    await alice.send_json(
        {"type": "user_message", "text": "alice's secret plan", "thread_id": "shared-name"}
    )
    await alice.expect(type="agent_completed")

    await bob.send_json({"type": "get_history", "thread_id": "shared-name"})
    history = await bob.expect(type="history")

    assert history["messages"] == []
