"""Connecting `WsClient` over real loopback sockets: each auth method against the
reference server, the fallback chain, and misbehaving servers (rejections, 5xx, refused
ports, silent handshakes). The rules themselves are unit-tested without sockets in
``test_client_fallback.py`` and ``test_auth_methods.py``. Every wait here is bounded,
and timing assertions are generous bounds on behaviour that is itself about time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from peers import (
    flaky_server,
    late_listener,
    rejecting_server,
    silent_server,
)

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import RsaKeyPair, TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import DEFAULT_AUTH_CHAIN, WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsConnectError,
    WsTimeoutError,
)
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

FAST_BACKOFF = Backoff(base=0.02, cap=0.08)
#: Scheduling slack allowed on top of a configured bound.
MARGIN_S = 1.0
#: asyncio may wake a timer up to one clock tick early.
CLOCK_SLACK_S = 0.005


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


# -- misbehaving servers ------------------------------------------------------------------


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
