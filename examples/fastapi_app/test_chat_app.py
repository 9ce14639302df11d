"""Testing a FastAPI app over real sockets: agent runs, auth, isolation, several tabs.

The plugin serves app.py (see pyproject.toml) on a loopback port for the session;
every test here talks to it through real WebSocket connections with real JWTs.
"""

import asyncio

import pytest

from pytest_ws_resilience import AGENT_EVENTS
from pytest_ws_resilience.errors import WsAuthError

APP_AUTH_METHODS = ["subprotocol", "query", "header"]


# -- the agent flow -------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_an_agent_run_keeps_the_agent_events_contract(ws_client, ws_user):
    await ws_client.send_json({"type": "user_message", "text": "book a table for two"})

    # Five kinds of events, in order, each once (thinking may repeat), through the
    # terminal agent_completed: a violation fails with an expected-vs-observed transcript.
    result = await ws_client.expect_contract(AGENT_EVENTS)

    events = [step.event for step in result.observed]
    assert events[-1]["result"] == "You said: book a table for two"
    assert {e["user_id"] for e in events} == {ws_user.id}
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # per-connection, no gap


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_interleaved_runs_are_each_checked_by_run_id(ws_client):
    for run_id in ("run-a", "run-b"):
        await ws_client.send_json({"type": "user_message", "text": run_id, "run_id": run_id})

    # AGENT_EVENTS correlates by run_id: the two runs' frames interleave on the socket,
    # and each run is checked on its own.
    first = await ws_client.expect_contract(AGENT_EVENTS, correlation="run-a")
    second = await ws_client.expect_contract(AGENT_EVENTS, correlation="run-b")

    assert (first.run, second.run) == ("run-a", "run-b")


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_application_ping_and_bad_frames(ws_client):
    await ws_client.send_json({"type": "ping", "nonce": 7})
    assert (await ws_client.expect(type="pong"))["nonce"] == 7

    await ws_client.send_text("{not json")
    assert (await ws_client.expect(type="error"))["code"] == "invalid_json"
    await ws_client.send_json({"type": "teleport"})
    assert (await ws_client.expect(type="error"))["code"] == "unknown_type"

    assert not ws_client.closed  # errors are answered, the connection stays up
    assert await ws_client.ping() >= 0  # WebSocket-level ping, answered by uvicorn


# -- authentication ---------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.websocket_security
@pytest.mark.parametrize("method", APP_AUTH_METHODS)
async def test_each_auth_method_of_the_app_is_accepted(ws_client_factory, ws_user, method):
    client = await ws_client_factory(ws_user, auth=method)

    welcome = await client.expect(type="connection_established")

    assert client.metrics.auth_method == method == welcome["auth_method"]
    assert welcome["user_id"] == ws_user.id


@pytest.mark.asyncio
@pytest.mark.websocket_security
@pytest.mark.parametrize("bad_token", ["expired", "wrong_key", "malformed"])
async def test_bad_tokens_are_refused_at_the_handshake(
    ws_client_factory, ws_tokens, ws_user, bad_token
):
    if bad_token == "malformed":
        token = ws_tokens.malformed()
    else:
        token = getattr(ws_tokens, bad_token)(ws_user)

    with pytest.raises(WsAuthError) as refused:
        await ws_client_factory(ws_user, token=token)

    # The configured chain (pyproject.toml's auth_methods) was walked once, each method
    # refused with the app's 401 and none retried.
    assert [a.method for a in refused.value.attempts] == APP_AUTH_METHODS
    assert [a.status for a in refused.value.attempts] == [401] * len(APP_AUTH_METHODS)


@pytest.mark.asyncio
@pytest.mark.websocket_security
@pytest.mark.parametrize("method", ["none", "cookie"])
async def test_no_token_or_an_unsupported_method_is_refused(ws_client_factory, ws_user, method):
    # The app does not read cookies: a valid token in one is no token at all.
    with pytest.raises(WsAuthError) as refused:
        await ws_client_factory(ws_user, auth=method)

    assert [a.status for a in refused.value.attempts] == [401]


# -- isolation between users, fan-out to one user's connections -----------------------------


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_several_users_never_see_each_others_runs(ws_client_factory, ws_isolation):
    clients = await asyncio.gather(*(ws_client_factory() for _ in range(4)))

    for client in clients:
        # A canary is a unique marker owned by this user: it must never reach another.
        await client.send_json({"type": "user_message", "text": f"my note {client.canary()}"})
    await asyncio.gather(*(client.expect_contract(AGENT_EVENTS) for client in clients))

    assert ws_isolation.violations == []
    assert ws_isolation.checks > 0  # frames were scanned: the check was live


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_both_connections_of_a_user_get_its_events(ws_client_factory, ws_user, ws_isolation):
    laptop = await ws_client_factory(ws_user)
    phone = await ws_client_factory(ws_user)
    other_user = await ws_client_factory()
    for client in (laptop, phone, other_user):
        await client.expect(type="connection_established")

    await laptop.send_json({"type": "user_message", "text": "sync my devices", "run_id": "r-1"})

    # The run goes to every connection of the user, each with its own seq numbering.
    on_laptop, on_phone = await asyncio.gather(
        laptop.expect_contract(AGENT_EVENTS, correlation="r-1"),
        phone.expect_contract(AGENT_EVENTS, correlation="r-1"),
    )
    assert [s.event["type"] for s in on_laptop.observed] == [
        s.event["type"] for s in on_phone.observed
    ]
    assert laptop.connection_id != phone.connection_id

    # ...and to no one else: a round trip on the other user's socket comes after the run,
    # so anything the run sent it would have arrived before this pong.
    await other_user.send_json({"type": "ping"})
    await other_user.expect(type="pong")
    assert [e["type"] for e in other_user.events] == ["connection_established", "pong"]
    assert ws_isolation.violations == [] and ws_isolation.checks > 0
