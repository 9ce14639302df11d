"""Message faults over real sockets: `WsClient` -> `ChaosProxy` -> the reference server.

The reference server numbers every frame it sends on a connection (``seq`` 1, 2, ...;
``connection_established`` is 1), so downstream data message N carries seq N and a lost,
duplicated or reordered message is visible in the seqs the client received. It answers
``{"type": "ping", ...}`` with ``{"type": "pong", ...}`` echoing the other fields, which
gives the upstream tests an answer per message.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from pytest_ws_resilience.chaos.message_faults import Message
from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsConnectionClosedError, WsTimeoutError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

#: The downstream messages of one connection with one agent run (two thinking steps).
RUN = ["connection_established", "agent_started", "agent_thinking", "agent_thinking",
       "tool_executing", "tool_completed", "agent_completed"]  # fmt: skip
#: Bound for waits that should succeed; far above what loopback needs.
WAIT_S = 5.0
#: Bound for waits that are expected to run out (a message that never comes).
SHORT_S = 0.3

ClientFactory = Callable[..., Awaitable[WsClient]]


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(ServerConfig(secret=tokens.secret, agent_delay_s=0.001)) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="function")
async def proxy(server: ReferenceServer) -> AsyncIterator[ChaosProxy]:
    async with ChaosProxy(server.url, seed=1234) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="function")
async def client_factory(proxy: ChaosProxy, tokens: TokenFactory) -> AsyncIterator[ClientFactory]:
    clients: list[WsClient] = []

    async def make(**options: Any) -> WsClient:
        client = WsClient(proxy.url, user=tokens.user(), settings=WsSettings(), **options)
        clients.append(client)
        await client.connect()
        return client

    yield make
    await asyncio.gather(*(c.close() for c in clients))


def seqs(client: WsClient) -> list[int]:
    return [e["seq"] for e in client.events if isinstance(e, dict)]


async def run_agent(client: WsClient, text: str = "hello chaos") -> None:
    await client.send_json({"type": "user_message", "text": text})


async def pings(client: WsClient, *numbers: int) -> None:
    for n in numbers:
        await client.send_json({"type": "ping", "n": n})


# -- drop, duplicate, reorder, delay ---------------------------------------------------


@pytest.mark.asyncio
async def test_dropped_message_never_arrives_and_every_other_does_in_order(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("drop", select=4)
    client = await client_factory()
    await run_agent(client)
    await client.expect("agent_completed", timeout=WAIT_S)
    assert seqs(client) == [1, 2, 3, 5, 6, 7]
    assert [d.outcome for d in proxy.decisions] == ["dropped"]
    assert proxy.decisions[0].detail.startswith("message 4 (text,")


@pytest.mark.asyncio
async def test_duplicated_message_arrives_exactly_twice(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("duplicate", select=5)
    client = await client_factory()
    await run_agent(client)
    await client.expect("agent_completed", timeout=WAIT_S)
    assert seqs(client) == [1, 2, 3, 4, 5, 5, 6, 7]
    duplicated = [e for e in client.events if e["seq"] == 5]
    assert duplicated[0] == duplicated[1] and duplicated[0]["type"] == "tool_executing"


@pytest.mark.asyncio
async def test_reordered_message_arrives_after_by_later_ones(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("reorder", select=3, by=2)
    client = await client_factory()
    await run_agent(client)
    await client.expect("agent_completed", timeout=WAIT_S)
    assert seqs(client) == [1, 2, 4, 5, 3, 6, 7]


@pytest.mark.asyncio
async def test_delayed_message_is_held_with_everything_after_it(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    delay_ms = 150
    proxy.add_message_fault("delay", select=2, delay=delay_ms)
    client = await client_factory()
    sent = time.monotonic()
    await run_agent(client)
    await client.expect("agent_completed", timeout=WAIT_S)
    assert seqs(client) == [1, 2, 3, 4, 5, 6, 7]  # order kept
    arrivals = {r.data["seq"]: r.received_at for r in client.log.records}
    # Lower bounds only: agent_started left the server after the message was sent.
    assert arrivals[2] - sent >= delay_ms / 1000
    assert all(arrivals[s] >= arrivals[2] for s in range(3, 8))


# -- selection -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_predicate_selects_by_payload(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    def pong_3(message: Message) -> bool:
        data = message.json()
        return bool(data.get("type") == "pong" and data.get("n") == 3)

    proxy.add_message_fault("drop", select=pong_3)
    client = await client_factory()
    await pings(client, 1, 2, 3, 4, 5)
    await client.expect("pong", n=5, timeout=WAIT_S)
    assert [e["n"] for e in client.events if e["type"] == "pong"] == [1, 2, 4, 5]
    assert seqs(client) == [1, 2, 3, 5, 6]


@pytest.mark.asyncio
async def test_opcode_selects_binary_messages_upstream(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("drop", direction="upstream", select="binary")
    client = await client_factory()
    await client.send_bytes(b"\x00\x01 the server would answer unsupported_binary")
    await pings(client, 1)
    await client.expect("pong", n=1, timeout=WAIT_S)
    assert [e["type"] for e in client.events] == ["connection_established", "pong"]


# -- toxicity and seeds ----------------------------------------------------------------


async def _dropped_with_seed(server: ReferenceServer, tokens: TokenFactory, seed: int) -> Any:
    """Drop pongs with toxicity 0.1; the losses are the gaps in the seqs received."""
    count = 150
    async with ChaosProxy(server.url, seed=seed) as chaos:
        # Messages 2..count+1 are the pongs; the last pong (a sentinel) is never selected.
        chaos.add_message_fault("drop", select=range(2, count + 2), toxicity=0.1)
        async with WsClient(chaos.url, user=tokens.user(), settings=WsSettings()) as client:
            await pings(client, *range(1, count + 1), 999)
            await client.expect("pong", n=999, timeout=WAIT_S)
            received = seqs(client)
        decided = sorted(
            int(d.detail.split()[1]) for d in chaos.decisions if d.outcome == "dropped"
        )
        kept = [d for d in chaos.decisions if d.outcome == "kept"]
    assert received == sorted(received)  # losses, never reordering
    gaps = sorted(set(range(1, count + 3)) - set(received))
    assert gaps == decided
    assert len(decided) + len(kept) == count  # one draw per selected message
    return gaps


@pytest.mark.asyncio
async def test_toxicity_losses_show_as_seq_gaps_and_replay_with_the_seed(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    first = await _dropped_with_seed(server, tokens, seed=42)
    again = await _dropped_with_seed(server, tokens, seed=42)
    other = await _dropped_with_seed(server, tokens, seed=43)
    assert first and first == again
    assert other != first


# -- control frames --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_swallowed_pongs_fail_the_ping_while_messages_flow(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    client = await client_factory(recv_timeout=SHORT_S)
    assert await client.ping() >= 0  # fine before the fault
    proxy.add_message_fault("swallow_pong")
    with pytest.raises(WsTimeoutError):
        await client.ping()
    await pings(client, 1)
    assert (await client.expect("pong", n=1, timeout=WAIT_S))["n"] == 1
    assert [d.outcome for d in proxy.decisions] == ["swallowed"]


@pytest.mark.asyncio
async def test_delayed_ping_shows_in_the_round_trip(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    delay_ms = 120
    client = await client_factory()
    proxy.add_message_fault("delay_ping", direction="upstream", delay=delay_ms)
    assert await client.ping() >= delay_ms / 1000
    assert proxy.decisions[-1].outcome == f"delayed {delay_ms}ms"


# -- ending the connection -------------------------------------------------------------


@pytest.mark.asyncio
async def test_injected_close_reaches_the_client_with_its_code(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("close", select=3, code=4001, reason="chaos says bye")
    client = await client_factory()
    await run_agent(client)
    with pytest.raises(WsConnectionClosedError):
        await client.expect("agent_completed", timeout=WAIT_S)
    assert client.close_code == 4001
    assert seqs(client) == [1, 2]


async def _server_connections_gone(server: ReferenceServer) -> None:
    """Poll the server's (local, cheap) count of open connections until it is 0."""
    deadline = time.monotonic() + WAIT_S
    while server.stats.active_connections:
        if time.monotonic() > deadline:
            pytest.fail(f"the server still holds a connection after {WAIT_S}s")
        await asyncio.sleep(0.005)


@pytest.mark.asyncio
async def test_abort_drops_both_sides_without_a_close_frame(
    server: ReferenceServer, proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("abort", select=3)
    client = await client_factory()
    await run_agent(client)
    with pytest.raises(WsConnectionClosedError):
        await client.expect("agent_completed", timeout=WAIT_S)
    assert client.close_code == 1006
    assert seqs(client) == [1, 2]
    await _server_connections_gone(server)
    assert proxy.connections == ()


@pytest.mark.asyncio
async def test_cut_after_delivers_exactly_n_messages_then_drops(
    server: ReferenceServer, proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("cut_after", count=3)
    client = await client_factory()
    await run_agent(client)
    with pytest.raises(WsConnectionClosedError):
        await client.expect("agent_completed", timeout=WAIT_S)
    assert client.close_code == 1006
    assert seqs(client) == [1, 2, 3]
    await _server_connections_gone(server)


# -- direction and target --------------------------------------------------------------


@pytest.mark.asyncio
async def test_upstream_drop_means_the_server_never_answers_that_message(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("drop", direction="upstream", select=2)
    client = await client_factory()
    await pings(client, 1, 2, 3)
    await client.expect("pong", n=3, timeout=WAIT_S)
    assert [e["n"] for e in client.events if e["type"] == "pong"] == [1, 3]
    assert seqs(client) == [1, 2, 3]  # the server sent no answer to 2: no gap
    (decision,) = proxy.decisions
    assert (decision.direction, decision.outcome) == ("upstream", "dropped")


@pytest.mark.asyncio
async def test_target_faults_only_that_connection(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    proxy.add_message_fault("drop", select=2, target=2)
    first = await client_factory()
    await first.expect("connection_established", timeout=WAIT_S)
    second = await client_factory()
    assert [c.index for c in proxy.connections] == [1, 2]
    for client in (first, second):
        await pings(client, 1, 2)
        await client.expect("pong", n=2, timeout=WAIT_S)
    assert seqs(first) == [1, 2, 3]
    assert seqs(second) == [1, 3]
    assert {d.connection for d in proxy.decisions} == {2}


@pytest.mark.asyncio
async def test_fault_added_and_removed_mid_connection(
    proxy: ChaosProxy, client_factory: ClientFactory
) -> None:
    client = await client_factory()
    await pings(client, 1)
    await client.expect("pong", n=1, timeout=WAIT_S)
    async with proxy.message_fault("drop", select="text"):
        await pings(client, 2)
        with pytest.raises(WsTimeoutError):
            await client.expect("pong", n=2, timeout=SHORT_S)
    await pings(client, 3)
    await client.expect("pong", n=3, timeout=WAIT_S)
    assert seqs(client) == [1, 2, 4]


# -- no faults: byte-identical ---------------------------------------------------------


async def _echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


@pytest.mark.asyncio
async def test_no_faults_large_messages_round_trip_unchanged() -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    text = "é" * 100_000 + "end"
    async with serve(_echo, "127.0.0.1", 0, max_size=None) as echo:
        port = echo.sockets[0].getsockname()[1]
        async with ChaosProxy(f"ws://127.0.0.1:{port}/echo", seed=1) as chaos:
            async with asyncio.timeout(WAIT_S):
                async with connect(chaos.url, max_size=None) as ws:
                    for message in (payload, text, payload[:10]):
                        await ws.send(message)
                        assert await ws.recv() == message
            assert chaos.decisions == []
            # Nothing was compressed (the offer was stripped): every byte went through.
            sizes = len(payload) + len(text.encode()) + 10
            assert chaos.stats["bytes_upstream"] > sizes
            assert chaos.stats["bytes_downstream"] > sizes
