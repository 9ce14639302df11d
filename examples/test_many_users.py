"""Several users at once: each one sees its own agent events, and nobody else's."""

import asyncio

import pytest

USERS = 8


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_concurrent_users_only_see_their_own_events(ws_client_factory):
    clients = await asyncio.gather(*(ws_client_factory() for _ in range(USERS)))

    await asyncio.gather(
        *(
            c.send_json({"type": "user_message", "text": f"question from {c.user.id}"})
            for c in clients
        )
    )
    await asyncio.gather(*(c.expect(type="agent_completed") for c in clients))

    for client in clients:
        owners = {e["user_id"] for e in client.events if "user_id" in e}
        assert owners == {client.user.id}, (
            f"{client.user.id} saw events of {owners - {client.user.id}}"
        )


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_every_connection_of_a_user_gets_the_users_events(ws_client_factory, ws_user):
    laptop = await ws_client_factory(ws_user)
    phone = await ws_client_factory(ws_user)

    await laptop.send_json({"type": "user_message", "text": "sync my devices"})

    on_laptop = await laptop.expect(type="agent_completed")
    on_phone = await phone.expect(type="agent_completed")
    assert on_laptop["run_id"] == on_phone["run_id"]
