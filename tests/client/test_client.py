"""`WsClient` over real loopback sockets: construction, the greeting's timeouts,
reconnect, ping, metrics, receive hooks, sending limits, closing, memory, redaction.

Connecting (auth methods, the fallback chain, retries) is tested in
``test_client_handshake.py``, waiting in ``test_client_waiting.py``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import secrets
import time
import tracemalloc
from dataclasses import replace

import pytest
from peers import burst_server, never_closing_server, never_reading_server, recording_server
from websockets.protocol import State

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.closing import start_closing
from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import DEFAULT_AUTH_CHAIN, ServerChoice, WsSettings
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue
from pytest_ws_resilience.errors import (
    WsAuthError,
    WsMessageTooLargeError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

FAST_BACKOFF = Backoff(base=0.02, cap=0.08)
#: Generous bound for "promptly": far below the timeouts the tests would otherwise hit.
PROMPT_S = 1.5
#: Scheduling slack allowed on top of a configured bound.
MARGIN_S = 1.0


def make_client(url: str, tokens: TokenFactory, **kwargs: object) -> WsClient:
    kwargs.setdefault("user", tokens.user())
    kwargs.setdefault("backoff", FAST_BACKOFF)
    return WsClient(url, **kwargs)  # type: ignore[arg-type]


# -- timeouts ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_negotiated_recv_timeout_is_used_with_source_server(tokens: TokenFactory) -> None:
    config = ServerConfig(secret=tokens.secret, recv_timeout=0.3)
    async with ReferenceServer(config) as server, make_client(server.url, tokens) as client:
        await client.expect("connection_established", timeout=5)
        assert client.timeouts["recv_timeout"] == TimeoutValue(0.3, Source.SERVER)
        started = time.monotonic()
        with pytest.raises(WsTimeoutError, match=r"0\.3s \(server\)"):
            await client.expect("never_sent")
        assert time.monotonic() - started < PROMPT_S


@pytest.mark.asyncio
async def test_explicit_recv_timeout_beats_the_negotiated_one(tokens: TokenFactory) -> None:
    config = ServerConfig(secret=tokens.secret, recv_timeout=30.0)
    async with ReferenceServer(config) as server:
        async with make_client(server.url, tokens, recv_timeout=0.25) as client:
            await client.expect("connection_established", timeout=5)
            assert client.timeouts["recv_timeout"] == TimeoutValue(0.25, Source.EXPLICIT)
            with pytest.raises(WsTimeoutError, match=r"0\.25s \(explicit\)"):
                await client.expect("never_sent")


def test_timeouts_come_from_settings_with_their_sources() -> None:
    client = WsClient("ws://127.0.0.1:1/", close_timeout=3)
    timeouts = client.timeouts
    assert timeouts["recv_timeout"] == TimeoutValue(10.0, "profile local")
    assert timeouts["close_timeout"] == TimeoutValue(3.0, Source.EXPLICIT)
    assert set(timeouts) == {"recv_timeout", "close_timeout", "connect_timeout", "agent_timeout"}


# -- reconnect, ping, metrics ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_reconnect_keeps_identity_and_history(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens, auth="header") as client:
        first = await client.expect("connection_established", timeout=5)
        await client.send_json({"type": "user_message", "text": "remember me", "thread_id": "t7"})
        await client.expect("agent_completed", thread_id="t7", timeout=5)
        received_before = client.log.total

        assert await client.reconnect() is client
        second = await client.expect("connection_established", timeout=5)
        assert second["user_id"] == first["user_id"] == client.user.id  # type: ignore[union-attr]
        assert second["connection_id"] != first["connection_id"]
        assert client.connection_id == second["connection_id"]
        assert client.metrics.reconnects == 1 and client.metrics.connects == 2
        assert client.auth_method == "header"
        assert client.log.total > received_before  # the log was kept

        await client.send_json({"type": "get_history", "thread_id": "t7"})
        history = await client.expect("history", timeout=5)
        assert "remember me" in json.dumps(history["messages"])
    assert server.stats.connections_opened == 2


@pytest.mark.asyncio
async def test_ping_measures_a_round_trip(server: ReferenceServer, tokens: TokenFactory) -> None:
    async with make_client(server.url, tokens) as client:
        rtt = await client.ping()
        assert 0 < rtt < PROMPT_S
        assert client.metrics.ping_rtt_s == rtt


@pytest.mark.asyncio
async def test_metrics_count_messages_and_bytes(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens) as client:
        await client.expect("connection_established", timeout=5)
        for n in range(5):
            await client.send_json({"type": "ping", "n": n})
        await client.send_text(json.dumps({"type": "ping", "text": "héllo"}))
        for n in range(5):
            await client.expect("pong", n=n, timeout=5)
        await client.expect("pong", text="héllo", timeout=5)
        metrics = client.metrics
        assert metrics.sent == 6
        assert metrics.received == client.log.total == 7
        sent = [json.dumps({"type": "ping", "n": n}) for n in range(5)]
        sent.append(json.dumps({"type": "ping", "text": "héllo"}))
        assert metrics.bytes_sent == sum(len(s.encode()) for s in sent)
        received = sum(len(str(r.raw).encode()) for r in client.log.records)
        assert metrics.bytes_received == received
        assert metrics.as_dict()["sent"] == 6


@pytest.mark.asyncio
async def test_receive_hooks_see_every_frame_in_order(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    seen: list[LogRecord] = []
    client = make_client(server.url, tokens)
    client.add_receive_hook(seen.append)
    async with client:
        await client.send_json({"type": "ping", "n": 1})
        await client.expect("pong", timeout=5)
    assert [r.data["type"] for r in seen] == ["connection_established", "pong"]
    assert [r.index for r in seen] == [0, 1]


@pytest.mark.asyncio
async def test_a_failing_hook_surfaces_in_the_next_expect(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    def explode(record: LogRecord) -> None:
        raise RuntimeError(f"hook saw {record.index}")

    client = make_client(server.url, tokens)
    client.add_receive_hook(explode)
    async with client:
        with pytest.raises(RuntimeError, match="hook saw 0"):
            await client.expect("pong", timeout=5)
        await client.send_json({"type": "ping"})  # the reader kept going
        with pytest.raises(RuntimeError, match="hook saw"):
            await client.expect("pong", timeout=5)


# -- sending limits, state errors ----------------------------------------------------------


@pytest.mark.asyncio
async def test_send_above_max_size_raises_before_touching_the_socket() -> None:
    async with recording_server() as server:
        async with WsClient(server.url, max_message_size=1024) as client:
            for send in (
                client.send_text("x" * 1025),
                client.send_bytes(b"x" * 1025),
                client.send_json({"blob": "é" * 600}),  # 1,200+ bytes in UTF-8
            ):
                with pytest.raises(WsMessageTooLargeError) as info:
                    await send
                assert info.value.limit == 1024 and info.value.size > 1024
            # The echo of a later message proves the server got it, and only it.
            await client.send_json({"type": "after"})
            await client.expect("after", timeout=5)
            assert server.messages == [json.dumps({"type": "after"})]
            assert client.metrics.sent == 1


@pytest.mark.asyncio
async def test_using_a_client_that_is_not_connected_says_so() -> None:
    client = WsClient("ws://127.0.0.1:9/")
    with pytest.raises(WsResilienceError, match="not connected"):
        await client.send_json({"type": "ping"})
    with pytest.raises(WsResilienceError, match="not connected"):
        await client.expect("pong", timeout=0.1)
    await client.close()  # nothing to close: fine


def test_url_must_be_a_websocket_url() -> None:
    for url in ("http://127.0.0.1/", "127.0.0.1:80", "ws://"):
        with pytest.raises(ValueError, match="ws:// or wss://"):
            WsClient(url)


def test_auth_chain_defaults_follow_the_token_and_the_settings(tokens: TokenFactory) -> None:
    url = "ws://127.0.0.1:9/"
    # A remote URL with no key configured: no token means no auth, a token is presented.
    remote = WsSettings(server=ServerChoice(url=url))
    assert WsClient(url, settings=remote).auth_methods == ("none",)
    assert WsClient(url, settings=remote, user=tokens.user()).auth_methods == DEFAULT_AUTH_CHAIN
    configured = replace(remote, auth_methods=("header", "cookie"))
    assert WsClient(url, settings=configured, token="t" * 20).auth_methods == ("header", "cookie")
    assert WsClient(url, settings=configured, token="t" * 20, auth="query").auth_methods == (
        "query",
    )


def test_auth_method_without_a_token_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="need a token"):
        WsClient("ws://127.0.0.1:9/", auth="header")
    assert WsClient("ws://127.0.0.1:9/").auth_methods == ("none",)


# -- memory ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_ten_thousand_messages_keep_memory_flat() -> None:
    """SPEC 6: 10,000 messages through one client grow memory by under 5 MiB."""
    async with burst_server() as server, WsClient(server.url, log_size=1000) as client:
        tracemalloc.start()
        try:
            await client.send_json({"burst": 1000, "start": 0})
            await client.expect("burst", n=999, timeout=30)
            gc.collect()
            baseline, _ = tracemalloc.get_traced_memory()
            await client.send_json({"burst": 10_000, "start": 1000})
            await client.expect("burst", n=10_999, timeout=60)
            gc.collect()
            current, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert current - baseline < 5 * 1024 * 1024
        assert len(client.log) == client.log.maxlen == 1000
        assert client.log.total == client.metrics.received == 11_000
        assert client.log.dropped == 10_000
        assert len(client.events) == 1000


# -- redaction ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_token_never_shows_in_repr_errors_or_logs(
    server: ReferenceServer, tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # An opaque (not JWT-shaped) token, never seen by the redaction registry before:
    # the client itself must register it. The server rejects it with 401 everywhere.
    opaque = "opaque-" + secrets.token_urlsafe(24)
    client = WsClient(server.url, token=opaque, backoff=FAST_BACKOFF)
    assert client.auth_methods == DEFAULT_AUTH_CHAIN
    with pytest.raises(WsAuthError) as info:
        await client.connect()
    # A good token through the query string, the URL itself carrying a credential.
    user = tokens.user()
    async with WsClient(server.url + f"?token={opaque}", user=user, auth="query") as good:
        await good.expect("connection_established", timeout=5)
        assert user.token not in repr(good) and opaque not in repr(good)
    for text in (str(info.value), repr(info.value), repr(client), caplog.text):
        assert opaque not in text
        assert user.token not in text
    assert "query: HTTP 401" in str(info.value)
    assert any(r.name.startswith("pytest_ws_resilience.client") for r in caplog.records)


# -- closing -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_close_is_bounded_against_a_peer_that_never_closes() -> None:
    async with never_closing_server() as server:
        client = await WsClient(server.url, close_timeout=0.3).connect()
        assert server.handshakes == 1
        started = time.monotonic()
        await client.close()
        elapsed = time.monotonic() - started
        assert elapsed < 0.3 + MARGIN_S
        assert client.closed and not client.connected
        assert server.bytes_after_handshake > 0  # our close frame did go out
        assert client.close_code == 1006  # no close frame came back: abnormal closure


@pytest.mark.asyncio
async def test_close_is_bounded_when_the_peer_stopped_reading() -> None:
    # The close frame cannot even be written: the socket buffers and the transport's
    # are full. websockets' close timeout does not cover that write; the client's own
    # bound does.
    async with never_reading_server() as server:
        client = await WsClient(server.url, close_timeout=0.3, recv_timeout=0.3).connect()
        with pytest.raises(WsTimeoutError, match="the peer stopped reading"):
            for _ in range(200):  # the kernel's buffers take a few MiB first
                await client.send_bytes(secrets.token_bytes(1 << 20))
        transport = client.connection.transport
        assert transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]
        start_closing([client])  # no room for the frame: left to close, under its timer
        assert client.connection.protocol.state is State.OPEN
        started = time.monotonic()
        await client.close()
        assert time.monotonic() - started < 0.3 + MARGIN_S
        assert client.closed and not client.connected


@pytest.mark.asyncio
async def test_start_closing_sends_the_close_frame_at_once_and_close_ends_it() -> None:
    async with recording_server() as server:
        never_connected = WsClient(server.url)
        client = await WsClient(server.url).connect()
        start_closing([never_connected, client])  # synchronous: no turn of the loop
        assert never_connected.connection is None
        assert client.connection.protocol.state is State.CLOSING
        # The frame went out without close(): the server answers it.
        assert await client.expect_close(1000, within=PROMPT_S) == 1000
        start_closing([client])  # no longer open: nothing to write
        await asyncio.wait_for(client.close(), timeout=PROMPT_S)
        assert client.closed and client.close_code == 1000
        assert client.metrics.spans[-1].closed_by == "client"
        with pytest.raises(WsResilienceError):
            await client.send_text("late")


@pytest.mark.asyncio
async def test_close_is_idempotent_and_safe_on_a_dead_connection() -> None:
    async with recording_server() as server:
        client = await WsClient(server.url).connect()
        await client.close()
        await client.close()
        assert client.closed and client.close_code == 1000
    # The server is gone too: closing again must still not raise.
    await asyncio.wait_for(client.close(), timeout=MARGIN_S)
    with pytest.raises(WsResilienceError):
        await client.send_text("late")


@pytest.mark.asyncio
async def test_connect_after_close_opens_a_new_connection() -> None:
    async with recording_server() as server:
        client = await WsClient(server.url).connect()
        await client.close()
        async with client:
            assert client.connected
        assert server.connections == 2
        assert client.metrics.connects == 2
