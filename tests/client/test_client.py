"""`WsClient` against the reference server over real loopback sockets: auth methods,
the fallback chain, waiting, reconnect, metrics, memory, redaction."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import secrets
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from peers import burst_server, recording_server

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.client.tokens import RsaKeyPair, TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import DEFAULT_AUTH_CHAIN, ServerChoice, WsSettings
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue
from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsConnectionClosedError,
    WsMessageTooLargeError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

AGENT_FLOW = ["agent_started", "agent_thinking", "tool_executing", "tool_completed",
              "agent_completed"]  # fmt: skip
FAST_BACKOFF = Backoff(base=0.02, cap=0.08)
#: Generous bound for "promptly": far below the timeouts the tests would otherwise hit.
PROMPT_S = 1.5


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(ServerConfig(secret=tokens.secret)) as running:
        yield running


@pytest.fixture(scope="module")
def rsa_keys() -> RsaKeyPair:
    return RsaKeyPair.generate()


def make_client(url: str, tokens: TokenFactory, **kwargs: object) -> WsClient:
    kwargs.setdefault("user", tokens.user())
    kwargs.setdefault("backoff", FAST_BACKOFF)
    return WsClient(url, **kwargs)  # type: ignore[arg-type]


# -- auth methods ------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("method", DEFAULT_AUTH_CHAIN)
async def test_each_auth_method_alone_connects_hs256(
    server: ReferenceServer, tokens: TokenFactory, method: str
) -> None:
    user = tokens.user()
    async with WsClient(server.url, user=user, auth=method) as client:
        hello = await client.expect("connection_established", timeout=5)
        assert hello["user_id"] == user.id
        assert client.metrics.auth_method == client.auth_method == method
        assert client.metrics.attempts == [Attempt(method, "connected", 101)]
        assert client.metrics.handshake_s is not None and client.metrics.handshake_s > 0
        assert client.metrics.connects == 1 and client.metrics.retries == 0
        assert client.connection_id == hello["connection_id"]


@pytest.mark.asyncio
@pytest.mark.parametrize("method", DEFAULT_AUTH_CHAIN)
async def test_each_auth_method_alone_connects_rs256(rsa_keys: RsaKeyPair, method: str) -> None:
    tokens = TokenFactory(private_key=rsa_keys.private_pem, public_key=rsa_keys.public_pem)
    user = tokens.user()
    config = ServerConfig(public_key=tokens.verification_key)
    async with ReferenceServer(config) as server, WsClient(server.url, user=user, auth=method) as c:
        hello = await c.expect("connection_established", timeout=5)
        assert hello["user_id"] == user.id
        assert c.metrics.auth_method == method


@pytest.mark.asyncio
async def test_fallback_chain_reaches_cookie_on_cookie_only_server(tokens: TokenFactory) -> None:
    config = ServerConfig(secret=tokens.secret, accepted_auth=("cookie",))
    async with ReferenceServer(config) as server:
        client = make_client(server.url, tokens)
        assert client.auth_methods == DEFAULT_AUTH_CHAIN
        async with client:
            await client.expect("connection_established", timeout=5)
            assert client.metrics.auth_method == "cookie"
            assert client.metrics.attempts == [
                Attempt("subprotocol", "HTTP 401", 401),
                Attempt("query", "HTTP 401", 401),
                Attempt("header", "HTTP 401", 401),
                Attempt("cookie", "connected", 101),
            ]
            assert client.metrics.retries == 0
        assert server.stats.handshakes_attempted == 4


@pytest.mark.asyncio
async def test_every_method_rejected_raises_auth_error_listing_all_four(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    user = tokens.user()
    client = WsClient(server.url, user=user, token=tokens.wrong_key(user), backoff=FAST_BACKOFF)
    with pytest.raises(WsAuthError) as info:
        await client.connect()
    message = str(info.value)
    for method in DEFAULT_AUTH_CHAIN:
        assert f"{method}: HTTP 401" in message
    assert [a.method for a in info.value.attempts] == list(DEFAULT_AUTH_CHAIN)
    assert server.stats.connections_opened == 0
    assert not client.connected and not client.closed


@pytest.mark.asyncio
async def test_concurrent_connects_open_one_connection(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    client = make_client(server.url, tokens, auth="subprotocol")
    try:
        results = await asyncio.gather(*(client.connect() for _ in range(10)))
        assert all(r is client for r in results)
        await client.expect("connection_established", timeout=5)
        assert server.stats.connections_opened == 1
        assert server.stats.handshakes_attempted == 1
        assert client.metrics.connects == 1
    finally:
        await client.close()


# -- waiting -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_expect_sequence_follows_the_agent_flow(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens) as client:
        await client.send_json({"type": "user_message", "text": "hi", "thread_id": "t1"})
        events = await client.expect_sequence(AGENT_FLOW, timeout=5)
        assert [e["type"] for e in events] == AGENT_FLOW
        assert {e["thread_id"] for e in events} == {"t1"}
        assert len({e["run_id"] for e in events}) == 1


@pytest.mark.asyncio
async def test_expect_matches_fields_and_skips_what_came_before(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens) as client:
        await client.send_json({"type": "user_message", "text": "a", "run_id": "run-a"})
        done = await client.expect(type="agent_completed", run_id="run-a", timeout=5)
        assert done["user_id"] == client.user.id  # type: ignore[union-attr]
        # Everything up to the match is consumed: the flow's earlier events are behind us.
        with pytest.raises(WsTimeoutError):
            await client.expect(type="agent_started", timeout=0.1)
        # A mapping step in a sequence and a predicate field.
        await client.send_json({"type": "ping", "n": 1})
        await client.send_json({"type": "ping", "n": 2})
        pongs = await client.expect_sequence([{"type": "pong", "n": 1}, {"n": 2}], timeout=5)
        assert [p["n"] for p in pongs] == [1, 2]
        await client.send_json({"type": "ping", "n": 7})
        assert (await client.expect("pong", n=lambda n: n > 5, timeout=5))["n"] == 7


@pytest.mark.asyncio
async def test_expect_timeout_error_says_what_was_expected_and_what_came(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens) as client:
        await client.send_json({"type": "ping", "marker": "seen-before-timeout"})
        await client.expect("pong", timeout=5)
        started = time.monotonic()
        with pytest.raises(WsTimeoutError) as info:
            await client.expect("never_sent", run_id="r9", timeout=0.2)
        assert time.monotonic() - started < PROMPT_S
        message = str(info.value)
        assert "never_sent" in message and "r9" in message
        assert "0.2s (explicit)" in message
        assert "seen-before-timeout" in message  # the recent events are shown


@pytest.mark.asyncio
async def test_expect_sequence_timeout_names_the_failing_step(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens) as client:
        await client.send_json({"type": "user_message", "text": "x"})
        with pytest.raises(WsTimeoutError) as info:
            await client.expect_sequence(["agent_started", "no_such_event"], timeout=0.5)
        message = str(info.value)
        assert "step 2/2" in message and "no_such_event" in message
        assert "agent_started" in message


@pytest.mark.asyncio
async def test_client_close_during_expect_raises_connection_closed_promptly(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    client = await make_client(server.url, tokens).connect()
    waiter = asyncio.create_task(client.expect("never_sent", timeout=30))
    await asyncio.sleep(0)  # let the wait start
    started = time.monotonic()
    await client.close()
    with pytest.raises(WsConnectionClosedError):
        async with asyncio.timeout(PROMPT_S):
            await waiter
    assert time.monotonic() - started < PROMPT_S
    assert client.closed and not client.connected
    assert client.close_code == 1000


@pytest.mark.asyncio
async def test_server_close_during_expect_raises_with_the_close_code(tokens: TokenFactory) -> None:
    config = ServerConfig(secret=tokens.secret, max_message_size=1024)
    async with ReferenceServer(config) as server, make_client(server.url, tokens) as client:
        await client.expect("connection_established", timeout=5)
        waiter = asyncio.create_task(client.expect("never_sent", timeout=30))
        await client.send_text("x" * 4096)  # above the server's limit: it closes with 1009
        with pytest.raises(WsConnectionClosedError) as info:
            async with asyncio.timeout(PROMPT_S):
                await waiter
        assert info.value.code == 1009
        assert client.closed and client.close_code == 1009
        with pytest.raises(WsConnectionClosedError):
            await client.send_json({"type": "ping"})


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
