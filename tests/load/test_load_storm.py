"""`Storm` over real loopback sockets: storms all at once and on an arrival rate,
connect/disconnect cycles, bursts during the handshake, held connections, and every
error kind produced for real (refused, auth, timeout, reset, closed)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
import pytest_asyncio
from peers import silent_server
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import StormThresholdError
from pytest_ws_resilience.load.error_kinds import ERROR_KINDS
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.testing import SLOW_ACCEPT, ReferenceServer, ServerConfig

pytestmark = [pytest.mark.websocket_integration, pytest.mark.asyncio]

#: Small bounds so that failure paths cost little; far above a loopback handshake.
SETTINGS = WsSettings(
    connect_timeout=TimeoutValue(5.0, "test"),
    recv_timeout=TimeoutValue(5.0, "test"),
    close_timeout=TimeoutValue(1.0, "test"),
    backoff=Backoff(base=0.01, cap=0.02),
)
HOST = "127.0.0.1"


def no_errors() -> dict[str, int]:
    return dict.fromkeys(ERROR_KINDS, 0)


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    # The shared server (conftest), accepting slowly: storms of handshakes queue up.
    config = ServerConfig(secret=tokens.secret, ping_interval=None, slow_accept_s=0.3)
    async with ReferenceServer(config) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="function")
async def storm(server: ReferenceServer, tokens: TokenFactory) -> AsyncIterator[Storm]:
    async with Storm(server.url, tokens, SETTINGS) as storm:
        yield storm


@contextlib.asynccontextmanager
async def ws_server(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    """A websockets server on a free loopback port, running ``handler``; yields its URL."""
    async with serve(handler, HOST, 0, close_timeout=0.5) as srv:
        yield f"ws://{HOST}:{srv.sockets[0].getsockname()[1]}/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until(predicate: Callable[[], bool], bound: float = 3.0) -> None:
    """Poll a server counter (counters have no event to wait on), bounded."""
    async with asyncio.timeout(bound):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def peak_of(read: Callable[[], int]) -> AsyncIterator[Callable[[], int]]:
    """The highest value ``read()`` gave while the block ran (sampled every loop turn)."""
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, read())
            await asyncio.sleep(0)

    sampler = asyncio.create_task(sample())
    try:
        yield lambda: peak
    finally:
        sampler.cancel()
        await asyncio.wait({sampler}, timeout=1.0)


# -- storms ------------------------------------------------------------------------------


async def test_storm_opens_every_connection_at_once_authenticated(storm, server):
    result = await storm.connect(100)

    assert (result.attempted, result.succeeded, result.errors) == (100, 100, no_errors())
    assert result.kind == "storm" and result.label == "connect n=100 all at once"
    assert server.stats.connections_opened == 100  # each one authenticated as its user
    assert server.stats.handshakes_rejected == 0
    assert result.distributions["connect_ms"].count == 100
    assert result.rss_growth_bytes is not None
    assert len(result.started_s) == len(result.opened_s) == 100
    await wait_until(lambda: server.stats.active_connections == 0)  # all closed after


async def test_storm_runs_with_the_collector_paused_and_turns_it_back_on(storm):
    seen: list[bool] = []

    def message(index: int) -> dict[str, object]:  # called by each arrival, mid-storm
        seen.append(gc.isenabled())
        return {"type": "ping", "n": index}

    assert gc.isenabled()
    result = await storm.connect(20, message=message, reply={"type": "pong"})
    assert result.succeeded == 20 and result.replies_received == 20
    assert seen == [False] * 20
    assert gc.isenabled()


async def test_storm_connections_are_all_open_at_the_same_time(storm, server):
    async with peak_of(lambda: server.stats.active_connections) as peak:
        result = await storm.connect(40)
    assert result.succeeded == 40
    assert peak() == 40  # every connection was open before any was closed
    assert result.clients == []  # nothing held


async def test_storm_with_a_message_times_first_message_and_round_trip(storm, server):
    result = await storm.connect(20, message={"type": "ping", "k": 1}, reply={"type": "pong"})

    assert result.succeeded == 20
    assert (result.messages_sent, result.replies_received) == (20, 20)
    dists = result.distributions
    assert dists["round_trip_ms"].count == 20
    assert dists["first_message_ms"].count == 20
    # The first frame after the send can be the pong itself or an earlier greeting,
    # never later than the reply.
    assert dists["first_message_ms"].max <= dists["round_trip_ms"].max
    result.assert_errors(max=0)


async def test_open_model_arrivals_follow_the_clock_not_the_handshakes(storm, server):
    server.set_faults(SLOW_ACCEPT)  # every handshake takes 0.3 s
    result = await storm.connect(10, rate=100.0)

    assert result.succeeded == 10
    assert result.label == "connect n=10 at 100/s"
    starts = sorted(result.started_s)
    # Every arrival started before the first connection was even open: arrivals do
    # not wait for completions (a closed model would have started one at a time).
    assert starts[-1] < min(result.opened_s)
    # ... and they were spread on the schedule, in order, not all at once.
    assert starts == result.started_s
    assert starts[-1] - starts[0] >= 9 / 100.0 * 0.9


async def test_given_users_are_used_in_turn(storm, server, tokens):
    alice, bob = tokens.user(), tokens.user()
    result = await storm.connect(4, users=[alice, bob], hold=True)

    assert result.succeeded == 4
    seen = [c.user.id for c in result.clients]
    assert sorted(seen) == sorted([alice.id, bob.id, alice.id, bob.id])
    greetings = [await c.expect(type="connection_established") for c in result.clients]
    assert {g["user_id"] for g in greetings} == {alice.id, bob.id}


async def test_held_connections_stay_open_until_the_storm_closes(server, tokens):
    storm = Storm(server.url, tokens, SETTINGS)
    result = await storm.connect(15, hold=True)
    assert len(result.clients) == len(storm.held) == 15
    assert all(c.connected for c in result.clients)
    await wait_until(lambda: server.stats.active_connections == 15)

    await storm.aclose()

    assert not storm.held
    assert all(c.closed for c in result.clients)
    await wait_until(lambda: server.stats.active_connections == 0)


async def test_real_threshold_failure_shows_the_distribution(storm):
    result = await storm.connect(10)
    with pytest.raises(StormThresholdError) as info:
        result.assert_p95(connect_ms=0)  # no handshake takes no time at all
    text = str(info.value)
    assert "connect_ms p95 = " in text
    assert "connect_ms        n=10 min=" in text
    assert "errors: none" in text
    json.dumps(result.as_dict())


# -- cycles ------------------------------------------------------------------------------


async def test_cycles_connect_and_disconnect_rapidly_without_leaving_connections(storm, server):
    result = await storm.cycles(30, concurrency=5)

    assert (result.kind, result.attempted, result.succeeded) == ("cycles", 30, 30)
    assert result.errors == no_errors()
    assert server.stats.connections_opened == 30
    assert result.distributions["connect_ms"].count == 30
    await wait_until(lambda: server.stats.active_connections == 0)


async def test_cycles_never_exceed_their_concurrency(storm, server):
    async with peak_of(lambda: server.stats.active_connections) as peak:
        result = await storm.cycles(
            20, concurrency=3, message={"type": "ping"}, reply={"type": "pong"}
        )
    assert result.succeeded == 20 and result.replies_received == 20
    assert 1 <= peak() <= 3


# -- bursts ------------------------------------------------------------------------------


async def test_burst_during_handshake_every_message_reaches_the_server(storm, server):
    result = await storm.burst(5, 50)

    assert (result.kind, result.label) == ("burst", "burst 5x50 during handshake")
    assert (result.attempted, result.succeeded) == (5, 5)
    assert (result.messages_sent, result.replies_received) == (250, 250)
    assert server.stats.messages_received == 250
    assert result.distributions["round_trip_ms"].count == 250
    assert result.distributions["first_message_ms"].count == 5


async def test_burst_after_a_ping_and_with_own_messages(storm, server):
    result = await storm.burst(
        3,
        10,
        during_handshake=False,
        message=lambda k: {"type": "ping", "mine": k},
        reply=lambda k: {"type": "pong", "mine": k},
    )
    assert result.label == "burst 3x10 after a ping"
    assert (result.succeeded, result.replies_received) == (3, 30)


async def test_burst_matches_replies_that_come_out_of_order(tokens):
    async def reversed_echo(conn: ServerConnection) -> None:
        received = [await conn.recv() for _ in range(5)]
        for message in reversed(received):
            await conn.send(message)
        with contextlib.suppress(ConnectionClosed):
            await conn.wait_closed()

    async with ws_server(reversed_echo) as url:
        result = await Storm(url, tokens, SETTINGS, auth="none").burst(
            2, 5, message=lambda k: {"n": k}, reply=lambda k: {"n": k}
        )
    assert (result.succeeded, result.replies_received) == (2, 10)


async def test_burst_to_a_server_that_loses_messages_counts_timeouts(tokens):
    async def loses_the_first(conn: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.recv()  # the first message vanishes
            async for message in conn:
                await conn.send(message)

    fast = replace(SETTINGS, recv_timeout=TimeoutValue(0.3, "test"))
    async with ws_server(loses_the_first) as url:
        result = await Storm(url, tokens, fast, auth="none").burst(
            3, 4, message=lambda k: {"n": k}, reply=lambda k: {"n": k}
        )
    assert result.succeeded == 0
    assert result.errors == {**no_errors(), "timeout": 3}
    assert (result.messages_sent, result.replies_received) == (12, 9)
    assert "1 of 4 replies missing" in result.error_examples["timeout"]


async def test_burst_needs_a_reply_for_its_own_message(tokens):
    storm = Storm("ws://127.0.0.1:1/", tokens)
    with pytest.raises(ValueError, match=r"burst\(message=...\) needs reply="):
        await storm.burst(1, 1, message={"type": "hello"})


# -- error kinds, for real -----------------------------------------------------------------


async def test_a_port_nobody_listens_on_counts_refused(tokens):
    storm = Storm(f"ws://{HOST}:{free_port()}/", tokens, SETTINGS)
    result = await storm.connect(8)
    assert result.errors == {**no_errors(), "refused": 8}
    assert result.succeeded == 0
    assert "connection refused" in result.error_examples["refused"]


async def test_expired_tokens_count_auth(storm, server, tokens):
    result = await storm.connect(6, token=tokens.expired)
    assert result.errors == {**no_errors(), "auth": 6}
    assert server.stats.handshakes_rejected >= 6
    example = result.error_examples["auth"]
    assert "HTTP 401" in example
    assert "eyJ" not in example  # no token in the report


async def test_a_server_that_never_answers_the_handshake_counts_timeout(tokens):
    fast = replace(SETTINGS, connect_timeout=TimeoutValue(0.2, "test"))
    async with silent_server() as raw:
        result = await Storm(raw.url, tokens, fast, auth="subprotocol").connect(4)
    assert result.errors == {**no_errors(), "timeout": 4}


async def test_a_connection_dropped_with_a_tcp_reset_counts_reset(tokens):
    async def reset_on_first_message(conn: ServerConnection) -> None:
        await conn.recv()
        sock = conn.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.transport.abort()

    async with ws_server(reset_on_first_message) as url:
        result = await Storm(url, tokens, SETTINGS, auth="none").burst(3, 2)
    assert result.errors == {**no_errors(), "reset": 3}
    assert "code 1006" in result.error_examples["reset"]


async def test_a_server_closing_with_a_close_frame_counts_closed(tokens):
    async def close_on_first_message(conn: ServerConnection) -> None:
        await conn.recv()
        await conn.close(1008, "policy violation")

    async with ws_server(close_on_first_message) as url:
        result = await Storm(url, tokens, SETTINGS, auth="none").burst(3, 2)
    assert result.errors == {**no_errors(), "closed": 3}
    assert "code 1008" in result.error_examples["closed"]


# -- bounds and arguments ------------------------------------------------------------------


async def test_a_cancelled_storm_closes_what_it_opened(tokens):
    async with silent_server() as raw:
        storm = Storm(raw.url, tokens, SETTINGS, auth="subprotocol")
        task = asyncio.create_task(storm.connect(5))
        await wait_until(lambda: raw.connections == 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    pending = [t for t in asyncio.all_tasks() if t.get_name().startswith("storm arrival")]
    assert pending == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.connect(0), "n = 0 is invalid: expected a whole number from 1 to 100_000"),
        (lambda s: s.connect(), "n = 0 is invalid: expected a whole number from 1 to 100_000"),
        (
            lambda s: s.connect(5, rate=0),
            "rate = 0 is invalid: expected a finite number of connections per second > 0",
        ),
        (lambda s: s.connect(5, users=[]), "users is empty: give at least one TestUser"),
        (
            lambda s: s.cycles(5, concurrency=0),
            "concurrency = 0 is invalid: expected a whole number from 1 to",
        ),
        (
            lambda s: s.burst(2, 0),
            "messages_per_client = 0 is invalid: expected a whole number from 1 to",
        ),
    ],
)
async def test_bad_arguments_are_one_line_errors(tokens, call, message):
    storm = Storm("ws://127.0.0.1:1/", tokens)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await call(storm)


async def test_storm_url_must_be_a_websocket_url(tokens):
    with pytest.raises(ValueError, match="Storm url must be ws:// or wss://"):
        Storm("http://127.0.0.1:1/", tokens)
