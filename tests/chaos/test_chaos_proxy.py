"""`ChaosProxy` over real loopback sockets: byte toxics, control, targeting and seeds.

Two kinds of upstream: the reference server (a `WsClient` goes through the proxy, as a
user's test would) and small raw TCP servers written here, for byte-exact checks (what
arrived, in how many reads, when the stream ended). Timing is asserted only where the
toxic's accuracy is the point, always as the toxic's *added* time: the same traffic
through a toxic-free proxy, interleaved in the same test, is the baseline, so machine
load cancels out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.chaos.toxics import ToxicSpec
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import WsConnectionClosedError, WsTimeoutError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

HOST = "127.0.0.1"
#: Bound for "promptly": far below what a hang would take.
PROMPT_S = 3.0
SETTINGS = WsSettings(close_timeout=TimeoutValue(1.0, "test"), connect_retries=0)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# -- raw TCP upstreams ------------------------------------------------------------------------


@dataclass
class TcpServer:
    port: int
    reads: list[bytes] = field(default_factory=list)
    received: int = 0
    got: asyncio.Event = field(default_factory=asyncio.Event)
    want: int = 0

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


@contextlib.asynccontextmanager
async def tcp_server(mode: str = "echo") -> AsyncIterator[TcpServer]:
    """``echo``: write back what comes; ``sink``: record each read; ``close_on_line``:
    close the connection after the first line."""
    state = TcpServer(port=0)
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            if mode == "close_on_line":
                await reader.readline()
                return
            while data := await reader.read(65536):
                state.reads.append(data)
                state.received += len(data)
                if state.want and state.received >= state.want:
                    state.got.set()
                if mode == "echo":
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            writers.discard(writer)

    server = await asyncio.start_server(handle, HOST, 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROMPT_S):
                await server.wait_closed()


@contextlib.asynccontextmanager
async def raw_connection(
    proxy: ChaosProxy,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(HOST, proxy.port)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(PROMPT_S * 3):
        return await reader.readexactly(n)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(PROMPT_S):
        return await reader.read()


async def echo_rtt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    started = time.perf_counter()
    writer.write(b"x" * 32)
    await read_exactly(reader, 32)
    return time.perf_counter() - started


# -- the reference server ---------------------------------------------------------------------


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, agent_delay_s=0.001, ping_interval=None)
    async with ReferenceServer(config) as srv:
        yield srv


@contextlib.asynccontextmanager
async def ws_client(proxy: ChaosProxy, tokens: TokenFactory) -> AsyncIterator[WsClient]:
    client = WsClient(
        proxy.url, user=tokens.user(), settings=SETTINGS, auth="subprotocol", ping_interval=None
    )
    await client.connect()
    try:
        await client.expect("connection_established", timeout=PROMPT_S)
        yield client
    finally:
        await client.close()


async def ws_rtt(client: WsClient) -> float:
    started = time.perf_counter()
    await client.send_json({"type": "ping"})
    await client.expect("pong", timeout=PROMPT_S)
    return time.perf_counter() - started


# -- basics -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_agent_run_passes_through_a_proxy_without_toxics(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy, ws_client(proxy, tokens) as client:
        assert proxy.url.startswith(f"ws://{HOST}:{proxy.port}/")
        await client.send_json({"type": "user_message", "text": "hello"})
        done = await client.expect("agent_completed", timeout=PROMPT_S)
        assert done["result"] == "You said: hello"
        assert [c.index for c in proxy.connections] == [1]
        conn = proxy.connections[0]
        assert conn.bytes_up > 0 and conn.bytes_down > 0
        assert proxy.decisions == []


def test_non_loopback_upstream_or_host_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ChaosProxy("ws://203.0.113.5:8000/")  # a documentation address (RFC 5737): never contacted
    with pytest.raises(ValueError, match="loopback"):
        ChaosProxy("ws://127.0.0.1:8000/", host="0.0.0.0")
    with pytest.raises(ValueError, match="needs a port"):
        ChaosProxy("tcp://127.0.0.1")
    assert ChaosProxy("localhost:9").url == ""  # not started yet


@pytest.mark.asyncio
async def test_stop_is_bounded_and_closes_live_connections(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    proxy = await ChaosProxy(server.url, seed=1).start()
    async with ws_client(proxy, tokens) as client:
        proxy.add_toxic("timeout", timeout=0)  # a stalled stream must not hold stop() up
        started = time.perf_counter()
        await proxy.stop(timeout=2.0)
        assert time.perf_counter() - started < 2.5
        assert proxy.connections == ()
        with pytest.raises(WsConnectionClosedError):
            await client.expect("pong", timeout=PROMPT_S)
        assert client.close_code == 1006


# -- latency ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_latency_toxic_adds_50ms_within_5ms_at_p50(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with (
        ChaosProxy(server.url, seed=1) as slow,
        ChaosProxy(server.url, seed=1) as plain,
        ws_client(slow, tokens) as a,
        ws_client(plain, tokens) as b,
    ):
        slow.add_toxic("latency", latency=50)
        with_toxic, without = [], []
        for _ in range(30):  # interleaved: machine load hits both alike
            with_toxic.append(await ws_rtt(a))
            without.append(await ws_rtt(b))
        added = statistics.median(with_toxic) - statistics.median(without)
        assert abs(added - 0.050) <= 0.005, f"added p50 {added * 1e3:.1f} ms"


@pytest.mark.asyncio
async def test_latency_does_not_cap_throughput() -> None:
    count, latency_s = 100, 0.050
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as slow:
        slow.add_toxic("latency", latency=latency_s * 1000)
        # Chunks written 1 ms apart reach the proxy separately: a proxy that slept the
        # latency per chunk in series would need count x 50 ms = 5 s.
        async with raw_connection(slow) as (reader, writer):
            started = time.perf_counter()
            for _ in range(count):
                writer.write(b"m" * 64)
                await asyncio.sleep(0.001)
            last_write = time.perf_counter()
            await read_exactly(reader, count * 64)
            done = time.perf_counter()
    # Every chunk still waited its own latency (the last one arrived at last_write)...
    assert done - last_write >= latency_s * 0.9, f"tail {(done - last_write) * 1e3:.1f} ms"
    # ...yet the whole stream took nowhere near count x latency: deadlines, not sleeps.
    assert done - started < count * latency_s / 4, f"took {(done - started):.2f} s"


@pytest.mark.asyncio
async def test_jitter_stays_within_plus_minus_jitter() -> None:
    async with tcp_server() as upstream:
        async with (
            ChaosProxy(upstream.address, seed=3) as jittery,
            ChaosProxy(upstream.address, seed=3) as plain,
            raw_connection(jittery) as (jr, jw),
            raw_connection(plain) as (pr, pw),
        ):
            jittery.add_toxic("latency", latency=20, jitter=10)
            samples, baseline = [], []
            for _ in range(25):
                samples.append(await echo_rtt(jr, jw))
                baseline.append(await echo_rtt(pr, pw))
            base = statistics.median(baseline)
            added = [s - base for s in samples]
            assert min(added) >= 0.010 - 0.002, f"min added {min(added) * 1e3:.1f} ms"
            assert statistics.median(added) <= 0.030
            assert max(added) - min(added) > 0.004  # the jitter is really drawn


@pytest.mark.asyncio
async def test_update_toxic_changes_latency_for_the_next_chunk(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy, ws_client(proxy, tokens) as client:
        toxic = proxy.add_toxic("latency", latency=10)
        low = await ws_rtt(client)
        proxy.update_toxic(toxic, latency=60)
        high = await ws_rtt(client)
        assert high - low >= 0.045
        assert proxy.toxics[0]["latency"] == 60


# -- bandwidth, slicer ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_bandwidth_256kbps_moves_64kib_in_the_expected_time_within_10_percent() -> None:
    size = 64 * 1024
    rate = 32  # KB/s = 256 kbps; 1 KB = 1000 bytes as Toxiproxy counts
    expected = size / (rate * 1000)
    async with tcp_server() as upstream:
        async with (
            ChaosProxy(upstream.address, seed=1) as limited,
            ChaosProxy(upstream.address, seed=1) as plain,
        ):
            limited.add_toxic("bandwidth", rate=rate)

            async def transfer(proxy: ChaosProxy) -> float:
                async with raw_connection(proxy) as (reader, writer):
                    started = time.perf_counter()
                    writer.write(bytes(size))
                    await read_exactly(reader, size)
                    return time.perf_counter() - started

            base = await transfer(plain)
            took = await transfer(limited) - base
        assert abs(took - expected) <= 0.1 * expected, f"{took:.3f} s vs {expected:.3f} s"


@pytest.mark.asyncio
async def test_slicer_splits_one_write_into_several_reads() -> None:
    data = bytes(range(256)) * 4
    async with tcp_server("sink") as upstream:
        upstream.want = len(data)
        async with ChaosProxy(upstream.address, seed=1) as proxy:
            # ~10 slices, 10 ms apart: far enough apart that a busy receiver still reads
            # them as several reads (TCP may merge slices that wait in its buffer).
            proxy.add_toxic("slicer", stream="upstream", average_size=100, delay=10_000)
            async with raw_connection(proxy) as (_, writer):
                writer.write(data)
                async with asyncio.timeout(PROMPT_S):
                    await upstream.got.wait()
        assert b"".join(upstream.reads) == data
        assert len(upstream.reads) >= 3, [len(r) for r in upstream.reads]


# -- timeout, reset_peer, slow_close, limit_data ----------------------------------------------


@pytest.mark.asyncio
async def test_timeout_toxic_stalls_until_the_client_times_out(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy, ws_client(proxy, tokens) as client:
        proxy.add_toxic("timeout", timeout=0)
        await client.send_json({"type": "ping"})
        with pytest.raises(WsTimeoutError):
            await client.expect("pong", timeout=0.2)
        assert client.connected  # a blackhole, not a close


@pytest.mark.asyncio
async def test_timeout_toxic_with_a_timeout_closes_the_connection_after_it() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        proxy.add_toxic("timeout", timeout=80)
        async with raw_connection(proxy) as (reader, writer):
            started = time.perf_counter()
            writer.write(b"lost")
            assert await read_to_eof(reader) == b""  # data held, then closed
            assert time.perf_counter() - started >= 0.07


@pytest.mark.asyncio
async def test_reset_peer_resets_the_websocket_client(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy, ws_client(proxy, tokens) as client:
        proxy.add_toxic("reset_peer", timeout=0)
        with pytest.raises(WsConnectionClosedError):
            await client.expect("pong", timeout=PROMPT_S)
        assert client.close_code == 1006


@pytest.mark.asyncio
async def test_reset_peer_sends_a_real_rst_after_its_timeout() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        proxy.add_toxic("reset_peer", timeout=50)
        async with raw_connection(proxy) as (reader, writer):
            writer.write(b"ping")
            assert await read_exactly(reader, 4) == b"ping"  # works until the timeout
            with pytest.raises(ConnectionResetError):
                async with asyncio.timeout(PROMPT_S):
                    while await reader.read(100):
                        pass


@pytest.mark.asyncio
async def test_disabled_reset_peer_never_resets(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy, ws_client(proxy, tokens) as client:
        proxy.add_toxic("reset_peer", timeout=0, toxicity=0.0)
        for _ in range(5):
            await ws_rtt(client)
            await asyncio.sleep(0.01)
        assert client.connected
        assert [d.outcome for d in proxy.decisions] == ["disabled"]


@pytest.mark.asyncio
async def test_slow_close_delays_the_close() -> None:
    async with tcp_server("close_on_line") as upstream:
        async with (
            ChaosProxy(upstream.address, seed=1) as slow,
            ChaosProxy(upstream.address, seed=1) as plain,
        ):
            slow.add_toxic("slow_close", delay=150)

            async def close_time(proxy: ChaosProxy) -> float:
                async with raw_connection(proxy) as (reader, writer):
                    started = time.perf_counter()
                    writer.write(b"bye\n")
                    assert await read_to_eof(reader) == b""
                    return time.perf_counter() - started

            added = await close_time(slow) - await close_time(plain)
        assert 0.140 <= added <= 0.400, f"added {added * 1e3:.1f} ms"


@pytest.mark.asyncio
async def test_limit_data_closes_after_the_limit() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        proxy.add_toxic("limit_data", bytes=100)
        async with raw_connection(proxy) as (reader, writer):
            writer.write(bytes(1000))
            received = await read_to_eof(reader)
        assert len(received) == 100


# -- connection-level: refuse, accept_close, down, up, outage ---------------------------------


@pytest.mark.asyncio
async def test_refuse_resets_new_connections_and_leaves_existing_ones() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        async with raw_connection(proxy) as (reader, writer):
            await echo_rtt(reader, writer)
            async with proxy.toxic("refuse"):
                async with raw_connection(proxy) as (new_reader, _):
                    with pytest.raises(ConnectionResetError):
                        await read_to_eof(new_reader)
                await echo_rtt(reader, writer)  # the existing connection is untouched
            async with raw_connection(proxy) as (again, again_writer):
                await echo_rtt(again, again_writer)
        assert proxy.stats["refused"] == 1


@pytest.mark.asyncio
async def test_accept_close_closes_new_connections_at_once() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        proxy.add_toxic("accept_close")
        async with raw_connection(proxy) as (reader, _):
            # Nothing written first: closing a socket with unread bytes is a RST, not a FIN.
            assert await read_to_eof(reader) == b""
        assert proxy.connections == ()


@pytest.mark.asyncio
async def test_down_cuts_live_connections_and_refuses_until_up() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        async with raw_connection(proxy) as (reader, writer):
            await echo_rtt(reader, writer)
            await proxy.down()
            with contextlib.suppress(ConnectionResetError):
                assert await read_to_eof(reader) == b""
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(HOST, proxy.port)
        await proxy.up()
        async with raw_connection(proxy) as (reader, writer):
            await echo_rtt(reader, writer)


@pytest.mark.asyncio
async def test_outage_block_always_brings_the_proxy_back(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy:
        with pytest.raises(RuntimeError):
            async with proxy.outage():
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection(HOST, proxy.port)
                raise RuntimeError("test body failed")
        async with ws_client(proxy, tokens) as client:
            await ws_rtt(client)


# -- arming, targeting, removal ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_toxic_armed_at_creation_slows_the_first_handshake(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with (
        ChaosProxy(server.url, seed=1, toxics=[ToxicSpec.of("latency", latency=80)]) as slow,
        ChaosProxy(server.url, seed=1) as plain,
        ws_client(slow, tokens) as a,
        ws_client(plain, tokens) as b,
    ):
        assert a.metrics.handshake_s is not None and b.metrics.handshake_s is not None
        # The first connection's handshake response already waited the latency: no
        # connection escaped the toxic (a lower bound, robust on a loaded machine).
        assert a.metrics.handshake_s >= 0.075, a.metrics.handshake_s
        assert [(d.connection, d.outcome) for d in slow.decisions] == [(1, "enabled")]


@pytest.mark.asyncio
async def test_targeted_toxic_slows_only_its_connection(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy:
        proxy.add_toxic("latency", latency=100, target=2)
        async with (
            ws_client(proxy, tokens) as first,
            ws_client(proxy, tokens) as second,
            ws_client(proxy, tokens) as third,
        ):
            assert [c.index for c in proxy.connections] == [1, 2, 3]
            # Best of 3 per client: a loaded machine may stall one round trip, not all.
            rtts = [min([await ws_rtt(c) for _ in range(3)]) for c in (first, second, third)]
        assert rtts[1] >= 0.095, rtts  # the target waited its latency...
        assert max(rtts[0], rtts[2]) < 0.050, rtts  # ...and the others did not
        assert [d.connection for d in proxy.decisions] == [2]


@pytest.mark.asyncio
async def test_remove_toxic_under_heavy_traffic_returns_at_once_and_releases_the_flow() -> None:
    size = 2 * 1024 * 1024
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        toxic = proxy.add_toxic("bandwidth", rate=50)  # would take 40 s for this transfer
        async with raw_connection(proxy) as (reader, writer):
            writer.write(bytes(size))
            first = await read_exactly(reader, 10_000)
            started = time.perf_counter()
            proxy.remove_toxic(toxic)
            removal_s = time.perf_counter() - started
            rest = await read_exactly(reader, size - len(first))  # bounded: well under 40 s
        assert len(first) + len(rest) == size
        assert removal_s < 0.05  # no lock, no wait for the traffic
        assert proxy.toxics == ()


@pytest.mark.asyncio
async def test_toxic_context_manager_reverts_even_on_exception() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        with pytest.raises(RuntimeError):
            async with proxy.toxic("latency", latency=10) as toxic:
                assert proxy.toxics == (toxic,)
                raise RuntimeError("boom")
        assert proxy.toxics == ()
        with pytest.raises(ValueError, match="already armed"):
            proxy.add_toxic("timeout")
            proxy.add_toxic("timeout")


# -- toxicity and seeds -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_toxicity_zero_has_no_effect_and_is_recorded(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with ChaosProxy(server.url, seed=1) as proxy, ws_client(proxy, tokens) as client:
        proxy.add_toxic("timeout", timeout=0, toxicity=0.0)
        await ws_rtt(client)  # a disabled blackhole lets everything through
        assert [(d.subject, d.outcome) for d in proxy.decisions] == [
            ("timeout_downstream", "disabled")
        ]


@pytest.mark.asyncio
async def test_toxicity_is_rolled_once_per_connection_and_decides_the_effect() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=11) as proxy:
        proxy.add_toxic("latency", latency=60, toxicity=0.5)
        outcomes: dict[int, tuple[str, float]] = {}
        for _ in range(8):
            async with raw_connection(proxy) as (reader, writer):
                rtt = min([await echo_rtt(reader, writer) for _ in range(2)])
                index = max(c.index for c in proxy.connections)
                outcomes[index] = ("", rtt)
        rolls = {d.connection: d.outcome for d in proxy.decisions}
        assert sorted(rolls) == list(range(1, 9))  # one roll per connection, recorded
        assert set(rolls.values()) == {"enabled", "disabled"}
        for index, (_, rtt) in outcomes.items():
            assert (rtt >= 0.055) == (rolls[index] == "enabled"), (index, rtt, rolls[index])


async def _decisions_for(seed: int, address: str) -> list[tuple[int, str, str]]:
    async with ChaosProxy(address, seed=seed) as proxy, contextlib.AsyncExitStack() as stack:
        proxy.add_toxic("latency", latency=1, toxicity=0.5)
        proxy.add_toxic("slicer", average_size=8, toxicity=0.5)
        for n in range(6):
            if n == 3:  # rolled for the 3 live connections now, for later ones at accept
                proxy.add_toxic("bandwidth", stream="upstream", rate=10_000, toxicity=0.5)
            reader, writer = await stack.enter_async_context(raw_connection(proxy))
            await echo_rtt(reader, writer)  # the proxy has accepted it (and rolled)
        return [(d.connection, d.subject, d.outcome) for d in proxy.decisions]


@pytest.mark.asyncio
async def test_same_seed_replays_the_same_decisions_and_another_seed_differs() -> None:
    async with tcp_server() as upstream:
        first = await _decisions_for(1234, upstream.address)
        again = await _decisions_for(1234, upstream.address)
        other = await _decisions_for(99, upstream.address)
    assert first == again
    assert first != other
    assert len(first) == len(other) == 6 * 3  # every roll of every connection
    assert {o for _, _, o in first} == {"enabled", "disabled"}


@pytest.mark.asyncio
async def test_connection_cut_and_reset_reach_the_peer() -> None:
    async with tcp_server() as upstream, ChaosProxy(upstream.address, seed=1) as proxy:
        async with raw_connection(proxy) as (reader, writer):
            await echo_rtt(reader, writer)
            await proxy.connections[0].reset()
            with pytest.raises(ConnectionResetError):
                await read_to_eof(reader)
        async with raw_connection(proxy) as (reader, writer):
            await echo_rtt(reader, writer)
            conn = proxy.connections[0]
            assert conn.index == 2 and conn.client_address is not None
            await conn.cut()
            with contextlib.suppress(ConnectionResetError):
                assert await read_to_eof(reader) == b""
        assert proxy.connections == ()


def test_socket_module_supports_linger() -> None:
    # The RST toxics rely on SO_LINGER; fail loudly on a platform without it.
    assert hasattr(socket, "SO_LINGER")
