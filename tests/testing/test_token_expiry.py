"""The reference server enforces token lifetime on open connections: a connection whose
token expires is closed with ``4001 token expired``; the ``keep_expired_sessions``
fault (a socket that outlives its token) keeps it open, and the test that checks for
it fails with a clear line. Real sockets throughout; `seconds_left` is pure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.errors import WsTimeoutError
from pytest_ws_resilience.testing import ACCEPT_INVALID_TOKENS, ReferenceServer, ServerConfig
from pytest_ws_resilience.testing.faults import FAULTS, KEEP_EXPIRED_SESSIONS, parse_faults
from pytest_ws_resilience.testing.token_check import (
    TOKEN_EXPIRED_CLOSE_CODE,
    TOKEN_EXPIRED_REASON,
    Identity,
    seconds_left,
)

#: A ``ttl=1`` token is valid 1 to 2 s after minting: this bound leaves a margin.
EXPIRY_WAIT_S = 4.0


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    async with ReferenceServer(config) as running:
        yield running


def subprotocols(token: str) -> list[Subprotocol]:
    return [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{token}")]


# -- the rule (pure) ---------------------------------------------------------------------


def test_seconds_left_counts_to_the_whole_second_of_exp() -> None:
    identity = Identity("u1", claims={"sub": "u1", "exp": 1000})
    assert seconds_left(identity, 998.5) == 1.5
    assert seconds_left(identity, 1000.0) == 0.0  # expired: pyjwt's int(exp) <= now


@pytest.mark.parametrize(
    "identity",
    [
        Identity("u1", claims={"sub": "u1"}),  # no exp: never expires
        Identity("u1", claims={"sub": "u1", "exp": "soon"}),
        Identity("u1", claims={"sub": "u1", "exp": True}),
        # let in by accept_invalid_tokens, or by a server without auth: not enforced
        Identity("u1", verified=False, claims={"sub": "u1", "exp": 1000}),
    ],
)
def test_lifetime_is_enforced_only_for_a_verified_numeric_exp(identity: Identity) -> None:
    assert seconds_left(identity, 2000.0) is None


def test_keep_expired_sessions_is_a_fault_like_the_others() -> None:
    assert KEEP_EXPIRED_SESSIONS == "keep_expired_sessions"
    assert KEEP_EXPIRED_SESSIONS in FAULTS
    assert parse_faults(["keep_expired_sessions"]) == {KEEP_EXPIRED_SESSIONS}


# -- the server, with a raw websockets client ------------------------------------------------


@pytest.mark.asyncio
async def test_the_server_closes_a_connection_when_its_token_expires(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    user = tokens.user(ttl=1)
    async with connect(server.url, subprotocols=subprotocols(user.token)) as ws:
        await asyncio.wait_for(ws.recv(), EXPIRY_WAIT_S)  # the greeting: accepted
        async with asyncio.timeout(EXPIRY_WAIT_S):
            await ws.wait_closed()
        closed_at = time.time()

    assert ws.close_code == TOKEN_EXPIRED_CLOSE_CODE == 4001
    assert ws.close_reason == TOKEN_EXPIRED_REASON == "token expired"
    assert user.expires_at is not None and closed_at >= user.expires_at  # not before exp


@pytest.mark.asyncio
async def test_an_expired_token_is_still_refused_at_the_handshake(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    user = tokens.user()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.url, subprotocols=subprotocols(tokens.expired(user))):
            pass
    assert refused.value.response.status_code == 401


@pytest.mark.asyncio
async def test_a_token_let_in_by_accept_invalid_tokens_is_not_closed_for_its_expiry(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    server.set_faults(ACCEPT_INVALID_TOKENS)
    user = tokens.user()
    async with WsClient(server.url, user=user, token=tokens.expired(user)) as client:
        await client.expect(type="connection_established")
        # A wait bounded short: nothing would close it, the end never comes.
        with pytest.raises(WsTimeoutError, match=r"still open after 0\.5 s"):
            await client.expect_close(within=0.5)


@pytest.mark.asyncio
async def test_a_server_without_auth_does_not_enforce_lifetimes() -> None:
    tokens = TokenFactory()
    async with ReferenceServer(ServerConfig(require_auth=False, ping_interval=None)) as server:
        async with WsClient(server.url, user=tokens.user(ttl=1)) as client:
            with pytest.raises(WsTimeoutError, match="still open after"):
                await client.expect_close(within=EXPIRY_WAIT_S)


@pytest.mark.asyncio
async def test_server_stop_while_an_expiry_is_pending_ends_cleanly(tokens: TokenFactory) -> None:
    server = ReferenceServer(ServerConfig(secret=tokens.secret, ping_interval=None))
    await server.start()
    user = tokens.user(ttl=3600)
    async with connect(server.url, subprotocols=subprotocols(user.token)) as ws:
        await asyncio.wait_for(ws.recv(), EXPIRY_WAIT_S)
        await server.stop(timeout=EXPIRY_WAIT_S)
        async with asyncio.timeout(EXPIRY_WAIT_S):
            await ws.wait_closed()
    assert ws.close_code == 1001  # going away: the stop, not an expiry
    assert not server.running


# -- the same test, clean and faulty, with the client ----------------------------------------


async def token_lifetime_check(server: ReferenceServer, tokens: TokenFactory) -> int:
    """What a user's test does: a short-lived user's connection must be closed."""
    async with WsClient(server.url, user=tokens.user(ttl=1)) as client:
        return await client.expect_close(code=4001, within=EXPIRY_WAIT_S)


@pytest.mark.asyncio
async def test_the_check_passes_against_the_clean_server(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    assert await token_lifetime_check(server, tokens) == 4001


@pytest.mark.asyncio
async def test_the_check_fails_against_a_server_that_keeps_expired_sessions(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    server.set_faults(KEEP_EXPIRED_SESSIONS)
    with pytest.raises(WsTimeoutError) as failed:
        await token_lifetime_check(server, tokens)

    assert "still open after 4.0 s (explicit); expected close 4001" in str(failed.value)


# -- as users run it: a pytester suite with -p ws_resilience --------------------------------

SUITE = """
import pytest

@pytest.mark.asyncio
async def test_expired_token_closes_the_connection(ws_client_factory, ws_user_factory):
    client = await ws_client_factory(ws_user_factory(ttl=1))
    assert await client.expect_close(code=4001, within=4) == 4001

@pytest.mark.asyncio
async def test_a_session_that_outlives_its_token(ws_server, ws_client_factory, ws_user_factory):
    with ws_server.faults("keep_expired_sessions"):
        client = await ws_client_factory(ws_user_factory(ttl=1))
        await client.expect_close(code=4001, within=4)

def test_bad_ttl(ws_user_factory):
    ws_user_factory(ttl=0)
"""


def test_a_plugin_suite_passes_clean_and_fails_where_the_session_outlives_its_token(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(test_lifetime=SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience")

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*WsTimeoutError: connection user-*#* to ws://127.0.0.1:*: still open after "
            "4.0 s (explicit); expected close 4001; *",
            "*ValueError: ttl=0 is invalid: the token lifetime must be a positive number *",
            "FAILED test_lifetime.py::test_a_session_that_outlives_its_token - *",
            "FAILED test_lifetime.py::test_bad_ttl - *",
        ],
        consecutive=False,
    )
    # The summary counts the server's 4001 and the faulty session's normal close.
    result.stdout.fnmatch_lines(["close codes: *4001 x 1*"])
