"""The proxy's kernel fast path (`chaos.splice`) switching on and off, over real sockets.

A bytes-only lane with nothing armed moves its bytes with splice(2); arming a toxic for
its direction must switch that off before `add_toxic` returns, so the very next bytes
are shaped, and removing it must switch it back on, with no byte lost, duplicated or
reordered across the switches. WebSocket lanes never take it (message faults need the
frame reader on every byte). The lanes' ``spliced`` flags are read to show which path
ran: without them a test could pass on the transport path alone.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from tcp_peers import HOST, echo, tcp_server

from pytest_ws_resilience.chaos import splice
from pytest_ws_resilience.chaos.connection import ProxyConnection
from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.errors import WsTimeoutError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

#: Bound for waits that should succeed; far above what loopback needs.
WAIT_S = 10.0
#: The latency toxic of the switching tests: long enough to tell from a loopback echo.
LATENCY_MS = 300

needs_splice = pytest.mark.skipif(
    not splice.SUPPORTED, reason="splice(2) fast path is Linux-only; the transport path ran"
)


def spliced(conn: ProxyConnection) -> dict[str, bool]:
    return {direction: lane.spliced for direction, lane in conn._lanes.items()}


async def until(holds: Callable[[], object], what: Callable[[], str]) -> None:
    """Poll until ``holds()``, bounded by `WAIT_S`; fail with ``what()`` if it never does."""
    deadline = time.monotonic() + WAIT_S
    while not holds():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT_S}s: {what()}")
        await asyncio.sleep(0.005)


async def settle(conn: ProxyConnection, want: dict[str, bool]) -> None:
    """Wait (bounded) until the lanes' paths are ``want``."""
    await until(
        lambda: spliced(conn) == want,
        lambda: f"lanes of {conn.id} stayed {spliced(conn)}, expected {want}",
    )


async def rtt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    started = time.perf_counter()
    writer.write(b"r" * 32)
    async with asyncio.timeout(WAIT_S):
        await reader.readexactly(32)
    return time.perf_counter() - started


@pytest_asyncio.fixture(loop_scope="function")
async def echo_port() -> AsyncIterator[int]:
    async with tcp_server(echo) as port:
        yield port


BOTH_ON = {"upstream": True, "downstream": True}


@needs_splice
@pytest.mark.asyncio
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "transport-path"])
async def test_bulk_bytes_pass_unchanged_and_counted_on_either_path(
    echo_port: int, fast_path: bool
) -> None:
    payload = os.urandom(6 * 1024 * 1024 + 123)
    async with ChaosProxy(f"{HOST}:{echo_port}", seed=1) as proxy:
        proxy._fast_path = fast_path
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            await rtt(reader, writer)
            [conn] = proxy.connections
            await settle(conn, BOTH_ON if fast_path else {"upstream": False, "downstream": False})

            async def send() -> None:
                writer.write(payload)
                await writer.drain()

            sender = asyncio.create_task(send())
            async with asyncio.timeout(WAIT_S * 3):
                back = await reader.readexactly(len(payload))
                await sender
        finally:
            writer.transport.abort()
    assert back == payload
    assert proxy.stats["bytes_upstream"] == proxy.stats["bytes_downstream"] == len(payload) + 32


@needs_splice
@pytest.mark.asyncio
async def test_a_toxic_armed_mid_stream_shapes_the_very_next_bytes_and_removal_restores(
    echo_port: int,
) -> None:
    async with ChaosProxy(f"{HOST}:{echo_port}", seed=1) as proxy:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            await rtt(reader, writer)
            [conn] = proxy.connections
            await settle(conn, BOTH_ON)

            proxy.add_toxic("latency", latency=LATENCY_MS)  # downstream
            # Off before add_toxic returned, for its direction only.
            assert spliced(conn) == {"upstream": True, "downstream": False}
            delayed = await rtt(reader, writer)

            proxy.remove_toxic("latency_downstream")
            undelayed = await rtt(reader, writer)
            await settle(conn, BOTH_ON)
            again = await rtt(reader, writer)
        finally:
            writer.transport.abort()
    assert delayed >= LATENCY_MS / 1000, f"round trip {delayed:.3f}s under the armed toxic"
    assert undelayed < LATENCY_MS / 1000 and again < LATENCY_MS / 1000, (undelayed, again)


@needs_splice
@pytest.mark.asyncio
async def test_a_disabled_toxic_leaves_the_fast_path_on(echo_port: int) -> None:
    async with ChaosProxy(f"{HOST}:{echo_port}", seed=1) as proxy:
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            await rtt(reader, writer)
            [conn] = proxy.connections
            await settle(conn, BOTH_ON)
            proxy.add_toxic("latency", latency=LATENCY_MS, toxicity=0.0)
            assert spliced(conn) == BOTH_ON
            assert await rtt(reader, writer) < LATENCY_MS / 1000
        finally:
            writer.transport.abort()
    assert [d.outcome for d in proxy.decisions] == ["disabled"]


@needs_splice
@pytest.mark.asyncio
async def test_switching_paths_under_bulk_traffic_loses_and_reorders_nothing() -> None:
    payload = os.urandom(8 * 1024 * 1024)
    received = bytearray()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A slow reader: the proxy's writes back up, so a switch finds bytes in its pipe.
        while data := await reader.read(64 * 1024):
            received.extend(data)
            await asyncio.sleep(0.001)
        writer.write(b"done")
        await writer.drain()

    async with (
        tcp_server(sink) as port,
        ChaosProxy(f"{HOST}:{port}", seed=1) as proxy,
    ):
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            switches = 0
            view = memoryview(payload)
            async with asyncio.timeout(WAIT_S * 3):
                for n, start in enumerate(range(0, len(payload), 64 * 1024)):
                    writer.write(view[start : start + 64 * 1024])
                    await writer.drain()
                    if n % 8 == 7:  # every 512 KiB, while bytes are in flight
                        if proxy.toxics:
                            proxy.remove_toxic("latency_upstream")
                        else:
                            proxy.add_toxic("latency", stream="upstream", latency=5)
                        switches += 1
                        await asyncio.sleep(0.002)
                writer.write_eof()
                answer = await reader.read()
        finally:
            writer.transport.abort()
    assert switches == 16
    assert answer == b"done"
    assert len(received) == len(payload)
    assert bytes(received) == payload


@needs_splice
@pytest.mark.asyncio
async def test_bytes_the_pipe_holds_when_a_toxic_is_armed_go_out_first_and_in_order() -> None:
    first = 1024 * 1024
    payload = os.urandom(32 * 1024 * 1024)
    received = bytearray()
    go_on = asyncio.Event()

    async def stalling_sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while len(received) < first:
            received.extend(await reader.read(first - len(received)))
        await go_on.wait()  # stop reading: the proxy's writes back up into its pipe
        while data := await reader.read(256 * 1024):
            received.extend(data)
        writer.write(b"done")
        await writer.drain()

    async with (
        tcp_server(stalling_sink) as port,
        ChaosProxy(f"{HOST}:{port}", seed=1) as proxy,
    ):
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            writer.write(payload)
            drained = asyncio.create_task(writer.drain())
            await until(lambda: proxy.connections, lambda: "no connection accepted")
            lane = proxy.connections[0]._lanes["upstream"]
            await until(
                lambda: lane.spliced and lane.splicer and lane.splicer._held,
                lambda: "the upstream lane's pipe never held bytes",
            )
            assert lane.splicer is not None
            held = lane.splicer._held
            proxy.add_toxic("latency", stream="upstream", latency=5)
            assert not lane.spliced
            go_on.set()
            async with asyncio.timeout(WAIT_S * 3):
                await drained
                writer.write_eof()
                answer = await reader.read()
        finally:
            writer.transport.abort()
    assert held > 0
    assert answer == b"done"
    assert len(received) == len(payload)
    assert bytes(received) == payload


@needs_splice
@pytest.mark.asyncio
async def test_half_close_and_eof_pass_through_the_fast_path() -> None:
    async def reply_at_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # to EOF: the client half-closed
        writer.write(b"got " + str(len(data)).encode())
        await writer.drain()

    async with (
        tcp_server(reply_at_eof) as port,
        ChaosProxy(f"{HOST}:{port}", seed=1) as proxy,
    ):
        reader, writer = await asyncio.open_connection(HOST, proxy.port)
        try:
            writer.write(b"x" * 100_000)
            await writer.drain()
            await until(
                lambda: proxy.connections and spliced(proxy.connections[0])["upstream"],
                lambda: "the upstream lane never took the fast path",
            )
            writer.write_eof()
            async with asyncio.timeout(WAIT_S):
                answer = await reader.read()  # the reply, then the server's FIN
        finally:
            writer.transport.abort()
    assert answer == b"got 100000"


@needs_splice
@pytest.mark.asyncio
async def test_closed_connections_leave_no_descriptor_behind(echo_port: int) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async with ChaosProxy(f"{HOST}:{echo_port}", seed=1) as proxy:
        await asyncio.sleep(0)
        before = open_fds()
        for _ in range(10):
            reader, writer = await asyncio.open_connection(HOST, proxy.port)
            await rtt(reader, writer)
            [conn] = proxy.connections
            await settle(conn, BOTH_ON)
            writer.close()
            await writer.wait_closed()
            await until(lambda: not proxy.connections, lambda: "a closed connection stayed live")
        await until(lambda: open_fds() <= before, lambda: f"{open_fds() - before} fds leaked")
    assert proxy.stats["connections"] == 10


@pytest.mark.asyncio
async def test_websocket_lanes_stay_on_the_frame_reader_and_a_mid_connection_fault_works() -> None:
    tokens = TokenFactory()
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    async with (
        ReferenceServer(config) as server,
        ChaosProxy(server.url, seed=1) as proxy,
        WsClient(proxy.url, user=tokens.user(), ping_interval=None) as client,
    ):
        await client.expect("connection_established", timeout=WAIT_S)
        await client.send_json({"type": "ping", "n": 1})
        await client.expect("pong", timeout=WAIT_S)
        [conn] = proxy.connections
        assert spliced(conn) == {"upstream": False, "downstream": False}

        async with proxy.message_fault("drop", select=lambda m: '"pong"' in m.text):
            await client.send_json({"type": "ping", "n": 2})
            with pytest.raises(WsTimeoutError):
                await client.expect("pong", timeout=0.3)
        await client.send_json({"type": "ping", "n": 3})
        pong = await client.expect("pong", timeout=WAIT_S)
    assert pong.get("n") == 3
    assert [d.outcome for d in proxy.decisions if d.subject.startswith("drop")] == ["dropped"]


@needs_splice
@pytest.mark.asyncio
async def test_lanes_beyond_the_splicer_cap_take_the_transport_path_and_still_work(
    echo_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(splice, "MAX_LIVE", splice.Splicer.live + 2)  # one connection's two
    async with ChaosProxy(f"{HOST}:{echo_port}", seed=1) as proxy:
        first = await asyncio.open_connection(HOST, proxy.port)
        second = await asyncio.open_connection(HOST, proxy.port)
        try:
            for reader, writer in (first, second):
                await rtt(reader, writer)
            one, two = proxy.connections
            await settle(one, BOTH_ON)
            assert spliced(two) == {"upstream": False, "downstream": False}
            reader, writer = second
            writer.write(b"y" * 100_000)
            async with asyncio.timeout(WAIT_S):
                assert await reader.readexactly(100_000) == b"y" * 100_000
        finally:
            for _, writer in (first, second):
                writer.transport.abort()
