"""An agent run, end to end: one message in, five events out, in order, for this user."""

import pytest

AGENT_FLOW = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_agent_answers_with_the_five_events_in_order(ws_client, ws_user):
    await ws_client.send_json({"type": "user_message", "text": "What is the weather in Lisbon?"})

    events = await ws_client.expect_sequence(AGENT_FLOW)

    assert [e["type"] for e in events] == AGENT_FLOW
    run_ids = {e["run_id"] for e in events}
    assert len(run_ids) == 1, f"one run expected, got {run_ids}"
    assert all(e["user_id"] == ws_user.id for e in events)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert "Lisbon" in events[-1]["result"]


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_application_ping_round_trip(ws_client):
    await ws_client.send_json({"type": "ping", "nonce": 42})

    pong = await ws_client.expect(type="pong", nonce=42)

    assert pong["nonce"] == 42
    assert await ws_client.ping() >= 0  # WebSocket-level ping round trip, seconds


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_bad_input_gets_an_error_frame_and_the_connection_stays_up(ws_client):
    await ws_client.send_text("{not json")
    error = await ws_client.expect(type="error")
    assert error["code"] == "invalid_json"

    await ws_client.send_json({"type": "ping", "still": "here"})
    assert (await ws_client.expect(type="pong"))["still"] == "here"
    assert not ws_client.closed
