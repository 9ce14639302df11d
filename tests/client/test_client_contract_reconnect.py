"""Contracts span ``reconnect()``: a run that began before the disconnect and ends after
it is checked whole; a replay repeating one of its events is ``duplicated``; plain
``expect`` after a reconnect still sees only the new connection's frames. Real
sockets: the reference server, and a small websockets server that replays."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.errors import ContractViolationError, WsTimeoutError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS

FAST_BACKOFF = Backoff(base=0.02, cap=0.08)
PROMPT_S = 3.0
#: Pause between two agent events: far longer than a loopback reconnect, so the run
#: goes on while the client is away for a moment, and no event is sent to nobody.
AGENT_DELAY_S = 0.4


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PROMPT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {PROMPT_S}s: {what}"
        await asyncio.sleep(0.005)


def types(client: WsClient) -> list[str]:
    return [e.get("type") for e in client.events if isinstance(e, dict)]


@pytest_asyncio.fixture(loop_scope="function")
async def slow_agent(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, agent_delay_s=AGENT_DELAY_S, thinking_steps=1)
    async with ReferenceServer(config) as running:
        yield running


@pytest.mark.asyncio
async def test_a_run_that_began_before_a_reconnect_is_checked_whole(
    slow_agent: ReferenceServer, tokens: TokenFactory
) -> None:
    client = WsClient(slow_agent.url, user=tokens.user(), backoff=FAST_BACKOFF)
    async with client:
        await client.send_json({"type": "user_message", "text": "across", "thread_id": "t1"})
        await until(lambda: "agent_started" in types(client), "agent_started")
        await client.reconnect()
        # Plain expect sees the new connection only: its greeting comes first.
        first = await client.expect(lambda frame: True)
        assert first["type"] == "connection_established"
        result = await client.expect_contract(AGENT_EVENTS)
    assert result.ok, result.transcript()
    names = [event.name for event in result.observed]
    assert names[0] == "agent_started" and names[-1] == "agent_completed"
    assert client.metrics.reconnects == 1


@pytest.mark.asyncio
async def test_a_plain_expect_after_a_reconnect_does_not_see_what_came_before(
    slow_agent: ReferenceServer, tokens: TokenFactory
) -> None:
    client = WsClient(slow_agent.url, user=tokens.user(), backoff=FAST_BACKOFF)
    async with client:
        await client.send_json({"type": "user_message", "text": "plain", "thread_id": "t1"})
        await until(lambda: "agent_started" in types(client), "agent_started")
        await client.reconnect()
        await client.expect("agent_completed")  # the run is over: nothing more comes
        with pytest.raises(WsTimeoutError):
            await client.expect("agent_started", timeout=0.2)


# -- a replay that repeats an event of the run ------------------------------------------

STEPS = ["opened", "working", "closed"]
CONTRACT = EventContract(STEPS, correlation="job", name="job")


@pytest_asyncio.fixture(loop_scope="function")
async def replaying_server() -> AsyncIterator[str]:
    """Connection 1: ``opened`` of job 7. Every later connection: the replay of
    ``opened`` (a server that repeats what the client had), then the rest."""
    connections = 0

    async def handler(connection: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await connection.send(json.dumps({"type": "opened", "job": 7}))
        else:
            for step in STEPS:
                await connection.send(json.dumps({"type": step, "job": 7}))
        await connection.wait_closed()

    server = await serve(handler, "127.0.0.1", 0, close_timeout=0.5)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_a_replay_repeating_an_event_of_the_run_is_duplicated(replaying_server: str) -> None:
    client = WsClient(replaying_server, backoff=FAST_BACKOFF)
    async with client:
        await until(lambda: "opened" in types(client), "opened")
        await client.reconnect()
        with pytest.raises(ContractViolationError) as raised:
            await client.expect_contract(CONTRACT)
    kinds = [v.kind for v in raised.value.result.violations]
    assert kinds == ["duplicated"], raised.value.result.transcript()
    assert "opened seen 2 times" in str(raised.value)


@pytest.mark.asyncio
async def test_events_a_wait_consumed_before_the_reconnect_do_not_count(
    replaying_server: str,
) -> None:
    client = WsClient(replaying_server, backoff=FAST_BACKOFF)
    async with client:
        await client.expect("opened")  # consumed: not carried over
        await client.reconnect()
        result = await client.expect_contract(CONTRACT)
    assert result.ok, result.transcript()
    assert [event.name for event in result.observed] == STEPS
