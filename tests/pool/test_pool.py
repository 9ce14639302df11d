"""`ConnectionPool` over real loopback sockets against the reference server: reuse,
never crossing users, clean leases, health checks, eviction, bounds, cleanup and
event loops (abandoning clients of other loops). The key and the stats, pure data, are
unit-tested in ``test_pool_keys.py`` and ``test_pool_stats.py``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import (
    WsAuthError,
    WsPoolExhaustedError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.pool.pool import ConnectionPool
from pytest_ws_resilience.testing import EmbeddedServer, ReferenceServer, ServerConfig

#: Generous bound for "promptly": far below the timeouts a hang would hit.
PROMPT_S = 3.0
#: Small close and connect bounds so that an unhealthy peer costs little.
SETTINGS = WsSettings(
    close_timeout=TimeoutValue(1.0, "test"),
    connect_retries=0,
    backoff=Backoff(base=0.02, cap=0.08),
)


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(ServerConfig(secret=tokens.secret, agent_delay_s=0.001)) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="function")
async def pool() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(settings=SETTINGS)
    try:
        yield pool
    finally:
        await pool.cleanup_all()


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (cheap, local state) until true; fail after `PROMPT_S`."""
    deadline = time.monotonic() + PROMPT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {PROMPT_S}s: {what}")
        await asyncio.sleep(0.005)


# -- reuse ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_released_client_is_handed_back_as_the_same_open_connection(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    first = await pool.acquire(user, url=server.url)
    hello = await first.expect("connection_established", timeout=PROMPT_S)
    await pool.release(first)

    second = await pool.acquire(user, url=server.url)

    assert second is first and second.connected
    assert second.connection_id == hello["connection_id"]
    assert second.metrics.connects == 1
    assert server.stats.connections_opened == 1
    stats = pool.stats
    assert (stats.hits, stats.misses, stats.created) == (1, 1, 1)
    assert stats.reuse_rate == 0.5
    assert (stats.size, stats.idle, stats.leased) == (1, 0, 1)


@pytest.mark.asyncio
async def test_lease_releases_the_client_even_when_the_block_raises(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    with pytest.raises(RuntimeError, match="test failed"):
        async with pool.lease(user, url=server.url) as client:
            assert pool.is_leased(client)
            raise RuntimeError("test failed")
    assert not pool.is_leased(client) and pool.stats.idle == 1
    async with pool.lease(user, url=server.url) as again:
        assert again is client
    assert pool.stats.hits == 1


# -- never crossing users ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_released_connection_is_never_given_to_another_user(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    alice, bob = tokens.user(), tokens.user()
    client_a = await pool.acquire(alice, url=server.url)
    await pool.release(client_a)

    client_b = await pool.acquire(bob, url=server.url)

    assert client_b is not client_a and client_b.user == bob
    hello = await client_b.expect("connection_established", timeout=PROMPT_S)
    assert hello["user_id"] == bob.id
    await client_b.send_json({"type": "user_message", "text": "who am I"})
    done = await client_b.expect("agent_completed", timeout=PROMPT_S)
    assert done["user_id"] == bob.id
    assert (pool.stats.hits, pool.stats.misses, pool.stats.idle) == (0, 2, 1)
    # Alice's connection is still waiting for Alice.
    assert await pool.acquire(alice, url=server.url) is client_a


@pytest.mark.asyncio
async def test_same_user_id_with_another_token_is_a_miss(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    same_id = TestUser(id=user.id, email=user.email, token=tokens.mint(user.id))
    assert same_id.token != user.token
    client = await pool.acquire(user, url=server.url)
    await pool.release(client)

    other = await pool.acquire(same_id, url=server.url)

    assert other is not client
    assert (pool.stats.hits, pool.stats.misses) == (0, 2)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "options",
    [{"auth": "query"}, {"recv_timeout": 3.0}, {"additional_headers": {"X-Trace": "b"}}],
    ids=["auth", "recv_timeout", "headers"],
)
async def test_other_auth_or_client_options_are_a_miss(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory, options: dict[str, Any]
) -> None:
    user = tokens.user()
    base: dict[str, Any] = (
        {"additional_headers": {"X-Trace": "a"}} if "additional_headers" in options else {}
    )
    client = await pool.acquire(user, url=server.url, **base)
    await pool.release(client)

    other = await pool.acquire(user, url=server.url, **options)

    assert other is not client and pool.stats.misses == 2


# -- a clean slate per lease -------------------------------------------------------------


@dataclass
class Recorder:
    """A `ClientObserver` that remembers what it saw."""

    received: list[LogRecord] = field(default_factory=list)

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        self.received.append(record)

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        pass

    def on_canary(self, client: WsClient, marker: str) -> None:
        pass


@pytest.mark.asyncio
async def test_events_of_a_previous_lease_are_invisible_to_the_next(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    client = await pool.acquire(user, url=server.url)
    recorder = Recorder()
    client.add_observer(recorder)
    await client.send_json({"type": "user_message", "text": "lease one"})
    await client.expect("agent_started", timeout=PROMPT_S)
    # Released mid-run: the rest of the run arrives while the client is idle.
    await pool.release(client)
    assert client.observers == ()
    await wait_until(
        lambda: any(e.get("type") == "agent_completed" for e in client.events),
        "the run of lease one completed",
    )
    seen_by_recorder = len(recorder.received)

    again = await pool.acquire(user, url=server.url)

    assert again is client and again.events == []
    with pytest.raises(WsTimeoutError):
        await again.expect("agent_completed", timeout=0.05)
    assert len(recorder.received) == seen_by_recorder  # detached: sees nothing new
    await again.send_json({"type": "user_message", "text": "lease two"})
    done = await again.expect("agent_completed", timeout=PROMPT_S)
    assert done["result"] == "You said: lease two"
    assert again.events[0]["type"] == "agent_started"


# -- health ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_every_reuse_is_pinged_when_the_interval_is_zero(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS, health_check_interval=0)
    user = tokens.user()
    try:
        client = await pool.acquire(user, url=server.url)
        await client.expect("connection_established", timeout=PROMPT_S)
        await pool.release(client)
        assert client.metrics.ping_rtt_s is None
        assert await pool.acquire(user, url=server.url) is client
        assert client.metrics.ping_rtt_s is not None
    finally:
        await pool.cleanup_all()


@pytest.mark.asyncio
async def test_a_connection_alive_within_the_interval_is_reused_without_a_ping(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS, health_check_interval=0.3)
    user = tokens.user()
    try:
        client = await pool.acquire(user, url=server.url)
        await client.expect("connection_established", timeout=PROMPT_S)
        await pool.release(client)
        assert await pool.acquire(user, url=server.url) is client
        assert client.metrics.ping_rtt_s is None  # the greeting just proved it alive
        await pool.release(client)

        quiet_since = time.monotonic()
        await wait_until(lambda: time.monotonic() - quiet_since > 0.3, "the interval passed")
        assert await pool.acquire(user, url=server.url) is client
        assert client.metrics.ping_rtt_s is not None  # silent too long: pinged
    finally:
        await pool.cleanup_all()


@pytest.mark.asyncio
async def test_client_closed_during_its_lease_is_evicted_as_dead_on_release(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    client = await pool.acquire(user, url=server.url)
    await client.close()
    await pool.release(client)
    assert pool.stats.evicted_by_reason["dead"] == 1 and pool.stats.size == 0
    assert await pool.acquire(user, url=server.url) is not client


@pytest.mark.asyncio
async def test_idle_client_whose_socket_died_is_evicted_and_replaced(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    client = await pool.acquire(user, url=server.url)
    await pool.release(client)
    connection = client.connection
    assert connection is not None
    connection.transport.abort()
    await wait_until(lambda: client.closed, "the reader noticed the abort")

    fresh = await pool.acquire(user, url=server.url)

    assert fresh is not client and fresh.connected
    stats = pool.stats
    assert stats.evicted_by_reason["dead"] == 1 and stats.evictions == 1
    assert (stats.hits, stats.misses, stats.size) == (0, 2, 1)


@pytest.mark.asyncio
async def test_server_restart_evicts_idle_clients_and_reconnects(
    pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    config = ServerConfig(secret=tokens.secret, agent_delay_s=0.001)
    first = await ReferenceServer(config).start()
    url, port = first.url, first.port
    try:
        client = await pool.acquire(user, url=url)
        await pool.release(client)
    finally:
        await first.stop(timeout=2.0)
    await wait_until(lambda: client.closed, "the client saw the server go away")
    assert client.close_code == 1001

    async with ReferenceServer(ServerConfig(secret=tokens.secret, port=port)) as second:
        assert second.url == url
        fresh = await pool.acquire(user, url=url)
        assert fresh is not client and fresh.connected
        hello = await fresh.expect("connection_established", timeout=PROMPT_S)
        assert hello["user_id"] == user.id
        assert pool.stats.evicted_by_reason["dead"] == 1
        await pool.cleanup_all()


@pytest.mark.asyncio
async def test_failed_connect_propagates_and_leaves_nothing_in_the_pool(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    expired = TestUser(id=user.id, email=user.email, token=tokens.expired(user))
    with pytest.raises(WsAuthError, match="every auth method was rejected"):
        await pool.acquire(expired, url=server.url)
    stats = pool.stats
    assert (stats.size, stats.created, stats.misses) == (0, 0, 1)


class Relay:
    """A real TCP relay on loopback whose current connections can be blackholed:
    bytes still reach it but are no longer forwarded, like a peer that hung."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._blackholed: set[int] = set()
        self._connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def blackhole_current(self) -> None:
        self._blackholed.update(range(self._connections))

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=PROMPT_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROMPT_S):
                await self._server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self._connections
        self._connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(number, src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, number: int, src: asyncio.StreamReader, dst: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if number not in self._blackholed:
                    dst.write(data)
        dst.transport.abort()


@pytest.mark.asyncio
async def test_idle_client_that_stops_answering_pings_is_evicted_as_unhealthy(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    user = tokens.user()
    pool = ConnectionPool(settings=SETTINGS, health_check_timeout=0.2, health_check_interval=0)
    async with Relay(server.port) as relay:
        try:
            client = await pool.acquire(user, url=relay.url)
            await client.expect("connection_established", timeout=PROMPT_S)
            await pool.release(client)
            relay.blackhole_current()

            started = time.monotonic()
            fresh = await pool.acquire(user, url=relay.url)
            elapsed = time.monotonic() - started

            assert fresh is not client and fresh.connected and client.closed
            assert pool.stats.evicted_by_reason["unhealthy"] == 1
            assert elapsed < PROMPT_S  # the ping bound, not the 1 s close timeout x N
        finally:
            await pool.cleanup_all()


# -- idle timeout and size ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_connections_idle_past_the_timeout_are_evicted(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS, idle_timeout=0.2)
    user = tokens.user()
    try:
        client = await pool.acquire(user, url=server.url)
        await pool.release(client)
        assert await pool.evict_idle() == 0  # just released: not idle long enough

        deadline = time.monotonic() + PROMPT_S
        while await pool.evict_idle() == 0:
            assert time.monotonic() < deadline, "idle connection never evicted"
            await asyncio.sleep(0.01)

        assert client.closed
        assert pool.stats.evicted_by_reason["idle"] == 1 and pool.stats.size == 0
        await wait_until(lambda: server.stats.active_connections == 0, "server saw the close")
    finally:
        await pool.cleanup_all()


@pytest.mark.asyncio
async def test_acquire_evicts_expired_idle_connections_of_other_users(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS, idle_timeout=0.05)
    try:
        stale = await pool.acquire(tokens.user(), url=server.url)
        await pool.release(stale)
        await wait_until(lambda: time.monotonic() - 0.05 > _idle_since(pool, stale), "expiry")
        await pool.acquire(tokens.user(), url=server.url)
        assert stale.closed and pool.stats.evicted_by_reason["idle"] == 1
    finally:
        await pool.cleanup_all()


def _idle_since(pool: ConnectionPool, client: WsClient) -> float:
    return pool._idle[client].idle_since  # white box: when the pool thinks it went idle


@pytest.mark.asyncio
async def test_a_full_pool_evicts_the_least_recently_used_idle_connection(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS, max_size=2)
    alice, bob, carol = tokens.user(), tokens.user(), tokens.user()
    try:
        client_a = await pool.acquire(alice, url=server.url)
        client_b = await pool.acquire(bob, url=server.url)
        await pool.release(client_a)  # alice idle first: least recently used
        await pool.release(client_b)

        client_c = await pool.acquire(carol, url=server.url)

        assert client_a.closed and not client_b.closed and client_c.connected
        assert pool.stats.evicted_by_reason["capacity"] == 1 and pool.stats.size == 2
        assert await pool.acquire(bob, url=server.url) is client_b
    finally:
        await pool.cleanup_all()


@pytest.mark.asyncio
async def test_a_full_pool_with_everything_leased_raises_exhausted(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS, max_size=2)
    try:
        client_a = await pool.acquire(tokens.user(), url=server.url)
        await pool.acquire(tokens.user(), url=server.url)

        with pytest.raises(WsPoolExhaustedError, match=r"max_size=2 and 2 connections") as info:
            await pool.acquire(tokens.user(), url=server.url)

        assert isinstance(info.value, WsResilienceError)
        assert (info.value.max_size, info.value.leased) == (2, 2)
        assert pool.stats.size == 2 and server.stats.connections_opened == 2
        await pool.release(client_a)
        assert (await pool.acquire(tokens.user(), url=server.url)).connected
        assert pool.stats.evicted_by_reason["capacity"] == 1
    finally:
        await pool.cleanup_all()


@pytest.mark.asyncio
async def test_concurrent_acquires_for_one_user_get_distinct_clients(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    warm = await pool.acquire(user, url=server.url)
    await pool.release(warm)

    clients = await asyncio.gather(*(pool.acquire(user, url=server.url) for _ in range(5)))

    assert len({id(c) for c in clients}) == 5 and warm in clients
    assert all(c.connected and c.user == user for c in clients)
    assert (pool.stats.hits, pool.stats.misses, pool.stats.leased) == (1, 5, 5)


@pytest.mark.asyncio
async def test_concurrent_acquires_respect_max_size(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS, max_size=3)
    try:
        results = await asyncio.gather(
            *(pool.acquire(tokens.user(), url=server.url) for _ in range(5)),
            return_exceptions=True,
        )
        opened = [r for r in results if isinstance(r, WsClient)]
        refused = [r for r in results if isinstance(r, WsPoolExhaustedError)]
        assert (len(opened), len(refused)) == (3, 2)
        assert server.stats.connections_opened == 3
    finally:
        await pool.cleanup_all()


# -- cleanup -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cleanup_all_closes_everything_and_is_idempotent(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS)
    clients = [await pool.acquire(tokens.user(), url=server.url) for _ in range(3)]
    await pool.release(clients[0])
    await pool.release(clients[1])
    await wait_until(lambda: server.stats.active_connections == 3, "three connections open")

    await pool.cleanup_all()

    assert all(c.closed for c in clients)
    stats = pool.stats
    assert (stats.size, stats.idle, stats.leased, stats.closed) == (0, 0, 0, 3)
    assert stats.created == 3 and stats.evictions == 0  # cleanup is not an eviction
    await wait_until(lambda: server.stats.active_connections == 0, "server saw every close")
    await pool.cleanup_all()
    await pool.release(clients[2])  # leased before cleanup: now unknown, a no-op
    assert pool.stats.closed == 3 and pool.stats.size == 0


@pytest.mark.asyncio
async def test_releasing_twice_or_an_unknown_client_does_nothing(
    server: ReferenceServer, pool: ConnectionPool, tokens: TokenFactory
) -> None:
    user = tokens.user()
    client = await pool.acquire(user, url=server.url)
    await pool.release(client)
    await pool.release(client)
    async with WsClient(server.url, user=user) as stranger:
        await pool.release(stranger)
        assert stranger.connected
    assert (pool.stats.idle, pool.stats.size) == (1, 1)


# -- event loops -------------------------------------------------------------------------


@pytest.fixture
def embedded(tokens: TokenFactory) -> Any:
    with EmbeddedServer(ServerConfig(secret=tokens.secret, agent_delay_s=0.001)) as srv:
        yield srv


def test_client_of_a_closed_loop_is_evicted_for_loop_without_touching_it(
    embedded: EmbeddedServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS)
    user = tokens.user()

    async def first_test() -> WsClient:
        client = await pool.acquire(user, url=embedded.url)
        await client.expect("connection_established", timeout=PROMPT_S)
        await pool.release(client)
        return client

    async def second_test() -> WsClient:
        try:
            client = await pool.acquire(user, url=embedded.url)
            await client.send_json({"type": "user_message", "text": "new loop"})
            await client.expect("agent_completed", timeout=PROMPT_S)
            await wait_until(lambda: embedded.stats.active_connections == 1, "old socket shut down")
            return client
        finally:
            await pool.cleanup_all()

    old = asyncio.run(first_test())  # like a function-scoped loop: closed afterwards
    new = asyncio.run(second_test())

    assert new is not old
    stats = pool.stats
    assert stats.evicted_by_reason["loop"] == 1 and (stats.hits, stats.misses) == (0, 2)
    assert stats.size == 0


def test_client_of_another_open_loop_is_evicted_for_loop(
    embedded: EmbeddedServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS)
    user = tokens.user()
    other_loop = asyncio.new_event_loop()
    try:

        async def on_other_loop() -> WsClient:
            client = await pool.acquire(user, url=embedded.url)
            await pool.release(client)
            return client

        old = other_loop.run_until_complete(on_other_loop())

        async def on_this_loop() -> WsClient:
            try:
                return await pool.acquire(user, url=embedded.url)
            finally:
                await pool.cleanup_all()

        new = asyncio.run(on_this_loop())
        assert new is not old and pool.stats.evicted_by_reason["loop"] == 1
        deadline = time.monotonic() + PROMPT_S
        while embedded.stats.active_connections:  # the server thread sees both closes
            assert time.monotonic() < deadline, "sockets left open"
            time.sleep(0.005)
    finally:
        # What pytest-asyncio does when a loop ends: cancel what is left, then close.
        other_loop.run_until_complete(asyncio.sleep(0))
        other_loop.close()


def test_cleanup_all_nowait_drops_clients_of_a_closed_loop(
    embedded: EmbeddedServer, tokens: TokenFactory
) -> None:
    pool = ConnectionPool(settings=SETTINGS)

    async def lease_two() -> None:
        await pool.acquire(tokens.user(), url=embedded.url)
        await pool.release(await pool.acquire(tokens.user(), url=embedded.url))

    asyncio.run(lease_two())
    pool.cleanup_all_nowait()
    pool.cleanup_all_nowait()

    assert pool.stats.size == 0 and pool.stats.closed == 2
    deadline = time.monotonic() + PROMPT_S
    while embedded.stats.active_connections:
        assert time.monotonic() < deadline, "sockets left open"
        time.sleep(0.005)


# -- construction ------------------------------------------------------------------------


def test_pool_repr_shows_sizes_and_counters() -> None:
    assert repr(ConnectionPool()) == (
        "ConnectionPool(size=0/50, idle=0, leased=0, hits=0, misses=0, evictions=0, "
        "reuse_rate=0.00)"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_size": 0},
        {"idle_timeout": 0},
        {"health_check_timeout": -1},
        {"health_check_interval": -0.1},
    ],
)
def test_bad_pool_bounds_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="ConnectionPool"):
        ConnectionPool(**kwargs)
