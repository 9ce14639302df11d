"""The clock toxics, ``idle_timeout`` and ``max_lifetime``, over real loopback sockets.

An idle connection is dropped once the idle timeout has passed since its last byte
(either way); one whose client pings more often stays open, on the WebSocket path
(frame reader) and on the bytes-only splice(2) fast path alike; ``max_lifetime`` drops
even a busy connection; removing a toxic stops the cut. No accuracy is asserted here
(that is `benchmarks/idle_timeout.py`'s): only "not before the setting" (measured from a
moment before the last byte left the test, so the proxy's own stamp is later still) and
"eventually, within a bound".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tcp_peers import HOST, tcp_server
from tcp_peers import echo as echo_back

from pytest_ws_resilience.chaos import splice
from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.chaos.timing import drop_deadline
from pytest_ws_resilience.chaos.toxics import ToxicSpec, build_toxic
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import WsConnectionClosedError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

#: The idle timeout / lifetime of these tests, ms: long against a loopback round trip.
SETTING_MS = 300
SETTING_S = SETTING_MS / 1000
#: "Eventually": the cut must come within this bound after its deadline (a hang, not a
#: late timer, is what it catches).
BOUND_S = 5.0
SETTINGS = WsSettings(close_timeout=TimeoutValue(1.0, "test"), connect_retries=0)


def now() -> float:
    return asyncio.get_running_loop().time()


# -- the model -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "attributes", "message"),
    [
        ("idle_timeout", {}, "idle_timeout.timeout must be > 0 ms, got 0"),
        ("max_lifetime", {"lifetime": 0}, "max_lifetime.lifetime must be > 0 ms"),
        ("idle_timeout", {"timeout": -5}, "must be a finite number >= 0"),
        ("idle_timeout", {"lifetime": 5}, "unknown attribute(s) lifetime for idle_timeout"),
    ],
)
def test_clock_toxics_need_a_positive_time(
    kind: str, attributes: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        build_toxic(kind, attributes=attributes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_drop_deadlines() -> None:
    idle = build_toxic("idle_timeout", attributes={"timeout": 200})
    life = build_toxic("max_lifetime", attributes={"lifetime": 1000})
    # Idle: from the later of the last byte and the arming.
    assert drop_deadline(idle, opened_at=0.0, armed_at=1.0, last_active=3.0) == pytest.approx(3.2)
    assert drop_deadline(idle, opened_at=0.0, armed_at=5.0, last_active=3.0) == pytest.approx(5.2)
    # Lifetime: from the opening, whatever the traffic or the arming.
    assert drop_deadline(life, opened_at=2.0, armed_at=9.0, last_active=9.0) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="not a clock toxic"):
        drop_deadline(build_toxic("latency"), opened_at=0, armed_at=0, last_active=0)


# -- raw TCP (the splice fast path) ----------------------------------------------------------


@contextlib.asynccontextmanager
async def tcp_proxy(*specs: ToxicSpec) -> AsyncIterator[ChaosProxy]:
    async with (
        tcp_server(echo_back) as port,
        ChaosProxy(f"{HOST}:{port}", seed=1, toxics=specs) as proxy,
    ):
        yield proxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    """One byte there and back; returns a time taken just before it was written."""
    sent_at = now()
    writer.write(b"x")
    async with asyncio.timeout(BOUND_S):
        assert await reader.readexactly(1) == b"x"
    return sent_at


async def ended(reader: asyncio.StreamReader) -> float:
    """Wait (bounded) for the proxy to drop the connection; when the test saw it."""
    async with asyncio.timeout(BOUND_S):
        with contextlib.suppress(ConnectionError):
            assert await reader.read() == b""
    return now()


async def still_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    try:
        await echo(reader, writer)
    except (ConnectionError, asyncio.IncompleteReadError):
        return False
    return True


@pytest.mark.asyncio
async def test_idle_tcp_connection_is_dropped_not_before_its_timeout() -> None:
    async with tcp_proxy(ToxicSpec.of("idle_timeout", timeout=SETTING_MS)) as proxy:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            last = await echo(reader, writer)
            cut = await ended(reader)
        finally:
            writer.transport.abort()
        assert cut - last >= SETTING_S
        assert proxy.connections == ()


@pytest.mark.asyncio
async def test_traffic_more_often_than_the_timeout_keeps_a_spliced_connection_open() -> None:
    async with tcp_proxy(ToxicSpec.of("idle_timeout", timeout=SETTING_MS)) as proxy:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            started = now()
            await echo(reader, writer)
            conn = proxy.connections[0]
            if splice.SUPPORTED:
                # The idle clock sees the fast path's reads: it stays on.
                assert all(lane.spliced for lane in conn._lanes.values())
            while now() - started < 4 * SETTING_S:
                await asyncio.sleep(SETTING_S / 3)
                assert await still_open(reader, writer)
            assert proxy.connections == (conn,)
            last = await echo(reader, writer)  # then silence: now it is cut
            cut = await ended(reader)
            assert cut - last >= SETTING_S
        finally:
            writer.transport.abort()


@pytest.mark.asyncio
async def test_max_lifetime_drops_even_a_busy_connection() -> None:
    async with tcp_proxy(ToxicSpec.of("max_lifetime", lifetime=SETTING_MS)) as proxy:
        opened = now()
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            while await still_open(reader, writer):
                assert now() - opened < SETTING_S + BOUND_S
                await asyncio.sleep(0.02)
        finally:
            writer.transport.abort()
        assert now() - opened >= SETTING_S
        assert proxy.stats["faults"] == {"max_lifetime": 1}  # the enabled roll


@pytest.mark.asyncio
async def test_removing_the_toxic_stops_the_cut() -> None:
    async with tcp_proxy() as proxy:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            await echo(reader, writer)
            idle = proxy.add_toxic("idle_timeout", timeout=SETTING_MS)
            life = proxy.add_toxic("max_lifetime", lifetime=SETTING_MS)
            await asyncio.sleep(SETTING_S / 2)
            proxy.remove_toxic(idle)
            proxy.remove_toxic(life)
            await asyncio.sleep(SETTING_S * 2)
            assert await still_open(reader, writer)
            assert len(proxy.connections) == 1
        finally:
            writer.transport.abort()


@pytest.mark.asyncio
async def test_arming_counts_from_now_and_an_update_rearms() -> None:
    """A connection idle for longer than the timeout is not cut when the toxic is added
    (its clock starts then); shortening the timeout takes effect at once."""
    async with tcp_proxy() as proxy:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            await echo(reader, writer)
            await asyncio.sleep(SETTING_S * 1.5)
            armed = now()
            toxic = proxy.add_toxic("idle_timeout", timeout=60_000)
            await asyncio.sleep(SETTING_S / 2)
            assert len(proxy.connections) == 1
            proxy.update_toxic(toxic, timeout=SETTING_MS)
            cut = await ended(reader)
            assert cut - armed >= SETTING_S
            assert cut - armed < 60
        finally:
            writer.transport.abort()


@pytest.mark.asyncio
async def test_max_lifetime_added_to_an_older_connection_drops_it_at_once() -> None:
    async with tcp_proxy() as proxy:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            await echo(reader, writer)
            await asyncio.sleep(SETTING_S)
            proxy.add_toxic("max_lifetime", lifetime=SETTING_MS / 2)
            assert len(proxy.connections) == 1  # never inside add_toxic
            await ended(reader)
        finally:
            writer.transport.abort()


@pytest.mark.asyncio
async def test_stream_does_not_narrow_the_traffic_that_counts() -> None:
    """``stream="upstream"`` still counts the server's bytes: a server that talks every
    so often keeps a connection whose client never writes alive."""
    writers: list[asyncio.StreamWriter] = []

    async def talker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                writer.write(b"t")
                await writer.drain()
                await asyncio.sleep(SETTING_S / 4)

    server = await asyncio.start_server(talker, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    spec = ToxicSpec.of("idle_timeout", stream="upstream", timeout=SETTING_MS)
    try:
        async with ChaosProxy(f"{HOST}:{port}", seed=1, toxics=[spec]) as proxy:
            assert proxy.toxics[0].name == "idle_timeout_upstream"
            reader, writer = await asyncio.open_connection(HOST, proxy.port)
            try:
                got = b""
                async with asyncio.timeout(BOUND_S + 3 * SETTING_S):
                    while len(got) < 12:  # three times the timeout, the client silent
                        got += await reader.read(1)
                        assert got, "dropped although the server kept talking"
                assert len(proxy.connections) == 1
            finally:
                writer.transport.abort()
    finally:
        server.close()
        for w in writers:
            w.transport.abort()


@pytest.mark.asyncio
async def test_a_disabled_roll_never_cuts_and_target_picks_one_connection() -> None:
    async with tcp_proxy(
        ToxicSpec.of("idle_timeout", timeout=SETTING_MS, target=2),
        ToxicSpec.of("max_lifetime", lifetime=SETTING_MS, toxicity=0.0, name="never"),
    ) as proxy:
        first = await asyncio.open_connection(HOST, proxy.port)
        second = await asyncio.open_connection(HOST, proxy.port)
        try:
            await echo(*first)
            last = await echo(*second)
            cut = await ended(second[0])
            assert cut - last >= SETTING_S
            assert await still_open(*first)
            assert [c.index for c in proxy.connections] == [1]
            assert {d.outcome for d in proxy.decisions if d.subject == "never"} == {"disabled"}
        finally:
            for _, writer in (first, second):
                writer.transport.abort()


# -- a WebSocket client (the frame reader's path) --------------------------------------------


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, agent_delay_s=0.001, ping_interval=None)
    async with ReferenceServer(config) as srv:
        yield srv


async def ws_client(proxy: ChaosProxy, tokens: TokenFactory, **options: object) -> WsClient:
    client = WsClient(
        proxy.url, user=tokens.user(), settings=SETTINGS, auth="subprotocol", **options
    )
    await client.connect()
    await client.expect("connection_established", timeout=BOUND_S)
    return client


@pytest.mark.asyncio
async def test_silent_websocket_client_is_cut_with_1006(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy:
        proxy.add_toxic("idle_timeout", timeout=SETTING_MS)
        client = await ws_client(proxy, tokens, ping_interval=None)
        try:
            last = now()
            await client.ping()
            with pytest.raises(WsConnectionClosedError):
                await client.expect("never sent", timeout=BOUND_S)
            assert now() - last >= SETTING_S
            assert client.close_code == 1006
        finally:
            await client.close()


@pytest.mark.asyncio
async def test_websocket_client_pinging_under_the_timeout_stays_open(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy:
        proxy.add_toxic("idle_timeout", timeout=SETTING_MS)
        client = await ws_client(proxy, tokens, ping_interval=SETTING_S / 3, ping_timeout=1.0)
        try:
            await asyncio.sleep(SETTING_S * 4)  # silence but for websockets' keepalive pings
            assert client.connected
            await client.ping()
            assert len(proxy.connections) == 1
        finally:
            await client.close()


@pytest.mark.asyncio
async def test_the_servers_heartbeat_keeps_a_silent_client_open(tokens: TokenFactory) -> None:
    """Traffic either way counts: the server's own pings (and the client's automatic
    pongs) keep a client that never pings open; the same client behind the same toxic
    is cut when the server does not ping (test_silent_websocket_client_is_cut_with_1006)."""
    config = ServerConfig(secret=tokens.secret, agent_delay_s=0.001, ping_interval=SETTING_S / 3)
    async with ReferenceServer(config) as pinging, ChaosProxy(pinging.url, seed=1) as proxy:
        proxy.add_toxic("idle_timeout", timeout=SETTING_MS)
        client = await ws_client(proxy, tokens, ping_interval=None)
        try:
            await asyncio.sleep(SETTING_S * 4)
            assert client.connected
            await client.ping()
        finally:
            await client.close()
