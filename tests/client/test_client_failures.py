"""`WsClient` against misbehaving loopback servers: rejections, 5xx, refused ports,
silent handshakes and peers that never close. Every wait here is bounded, and timing
assertions are generous bounds on behaviour that is itself about time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from peers import (
    flaky_server,
    late_listener,
    never_closing_server,
    recording_server,
    rejecting_server,
    silent_server,
)

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import DEFAULT_AUTH_CHAIN, WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsConnectError,
    WsResilienceError,
    WsTimeoutError,
)

FAST_BACKOFF = Backoff(base=0.02, cap=0.08)
#: Scheduling slack allowed on top of a configured bound.
MARGIN_S = 1.0
#: asyncio may wake a timer up to one clock tick early.
CLOCK_SLACK_S = 0.005


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [401, 403])
async def test_auth_rejection_moves_on_at_once_one_attempt_per_method(
    tokens: TokenFactory, status: int
) -> None:
    user = tokens.user()
    async with rejecting_server(status) as server:
        # A backoff this slow would make any retry obvious in the elapsed time.
        client = WsClient(server.url, user=user, backoff=Backoff(base=5.0, cap=5.0))
        started = time.monotonic()
        with pytest.raises(WsAuthError) as info:
            await client.connect()
        elapsed = time.monotonic() - started
    assert elapsed < 5.0  # not one backoff sleep
    assert server.attempts == 4
    assert client.metrics.retries == 0
    assert list(info.value.attempts) == [Attempt(m, f"HTTP {status}", status)
                                         for m in DEFAULT_AUTH_CHAIN]  # fmt: skip
    # Each request carried the token the way its method says, in the chain's order.
    first, second, third, fourth = server.requests
    assert first.headers["Sec-WebSocket-Protocol"] == f"jwt-auth, jwt.{user.token}"
    assert f"token={user.token}" in second.path
    assert third.headers["Authorization"] == f"Bearer {user.token}"
    assert fourth.headers["Cookie"] == f"access_token={user.token}"
    message = str(info.value)
    assert server.url in message
    for method in DEFAULT_AUTH_CHAIN:
        assert f"{method}: HTTP {status}" in message
    assert user.token not in message


@pytest.mark.asyncio
async def test_query_auth_error_never_shows_the_token_in_the_url(tokens: TokenFactory) -> None:
    user = tokens.user()
    async with rejecting_server(401) as server:
        client = WsClient(server.url, user=user, auth="query")
        with pytest.raises(WsAuthError) as info:
            await client.connect()
    assert f"token={user.token}" in server.requests[0].path  # it did go over the wire
    for text in (str(info.value), repr(info.value), repr(client)):
        assert user.token not in text
    assert "query: HTTP 401" in str(info.value)


@pytest.mark.asyncio
async def test_5xx_is_retried_with_backoff_then_connects(tokens: TokenFactory) -> None:
    backoff = Backoff(base=0.05, factor=2.0, cap=0.5)
    async with flaky_server(fail_first=2) as server:
        client = WsClient(
            server.url, user=tokens.user(), auth="header", backoff=backoff, connect_retries=3
        )
        async with client:
            assert client.connected
        assert server.attempts == 3
        gaps = [b - a for a, b in zip(server.attempt_times, server.attempt_times[1:], strict=False)]
    expected = list(backoff.delays(2))
    assert all(gap >= delay - CLOCK_SLACK_S for gap, delay in zip(gaps, expected, strict=True))
    assert client.metrics.retries == 2
    assert [a.outcome for a in client.metrics.attempts] == ["HTTP 503", "HTTP 503", "connected"]
    assert client.metrics.auth_method == "header"


@pytest.mark.asyncio
async def test_refused_connections_are_retried_until_the_port_listens() -> None:
    async with late_listener(0.15) as late:
        client = WsClient(late.url, backoff=Backoff(base=0.05, cap=0.1), connect_retries=30)
        async with client:
            assert client.connected
            await client.send_json({"type": "hello"})
            assert (await client.expect("hello", timeout=5)) == {"type": "hello"}
    assert client.metrics.retries >= 1
    assert client.metrics.attempts[0].outcome == "connection refused"
    assert client.metrics.attempts[-1].outcome == "connected"


@pytest.mark.asyncio
async def test_exhausted_retries_raise_connect_error_with_every_attempt(
    tokens: TokenFactory,
) -> None:
    async with flaky_server(fail_first=100) as server:
        client = WsClient(
            server.url, user=tokens.user(), auth="cookie", backoff=FAST_BACKOFF, connect_retries=2
        )
        with pytest.raises(WsConnectError) as info:
            await client.connect()
    assert not isinstance(info.value, WsAuthError)
    assert server.attempts == 3
    assert client.metrics.retries == 2
    assert list(info.value.attempts) == [Attempt("cookie", "HTTP 503", 503)] * 3
    message = str(info.value)
    assert "after 2 retries" in message and "3 attempts" in message
    assert "cookie" in message and server.url in message


@pytest.mark.asyncio
async def test_refused_port_exhausts_retries_with_connect_error() -> None:
    async with late_listener(30.0) as late:  # never listens during this test
        client = WsClient(late.url, backoff=FAST_BACKOFF, connect_retries=1)
        with pytest.raises(WsConnectError, match="connection refused"):
            await client.connect()
        assert len(client.metrics.attempts) == 2


@pytest.mark.asyncio
async def test_unexpected_http_status_fails_at_once(tokens: TokenFactory) -> None:
    async with flaky_server(fail_first=100, status=404) as server:
        client = WsClient(server.url, user=tokens.user(), backoff=FAST_BACKOFF)
        with pytest.raises(WsConnectError, match="HTTP 404") as info:
            await client.connect()
    assert server.attempts == 1
    assert len(info.value.attempts) == 1


@pytest.mark.asyncio
async def test_silent_handshake_times_out_within_the_connect_timeout(
    tokens: TokenFactory,
) -> None:
    async with silent_server() as server:
        client = WsClient(
            server.url, user=tokens.user(), connect_timeout=0.3, backoff=Backoff(base=5.0)
        )
        started = time.monotonic()
        with pytest.raises(WsTimeoutError) as info:
            await client.connect()
        elapsed = time.monotonic() - started
    assert elapsed < 0.3 + MARGIN_S
    assert server.connections == 1  # no retry after a handshake timeout
    message = str(info.value)
    assert "connect_timeout=0.3s (explicit)" in message
    assert "subprotocol" in message


@pytest.mark.asyncio
async def test_connect_timeout_comes_from_settings_with_its_source() -> None:
    settings = replace(WsSettings(), connect_timeout=TimeoutValue(0.2, "profile test"))
    async with silent_server() as server:
        with pytest.raises(WsTimeoutError, match=r"0\.2s \(profile test\)"):
            await WsClient(server.url, settings=settings).connect()


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
