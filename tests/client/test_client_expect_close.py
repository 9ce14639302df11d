"""``WsClient.expect_close``: waiting for the server to close, against real servers.

The reference server closes a connection when its token expires (``4001 token
expired``); small websockets servers close with a reason of their choice or drop the
TCP connection. The argument checks are pure (`client.close_codes`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.close_codes import ExpectedClose, expected_close
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.errors import (
    WsConnectionClosedError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.redaction import register_secret
from pytest_ws_resilience.testing import ReferenceServer
from pytest_ws_resilience.testing.faults import KEEP_EXPIRED_SESSIONS
from pytest_ws_resilience.testing.token_check import TOKEN_EXPIRED_CLOSE_CODE

#: Long enough for a ``ttl=1`` token (valid 1 to 2 s after minting) to expire.
EXPIRY_WAIT_S = 4.0

Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest_asyncio.fixture(loop_scope="function")
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a plain websockets server with a given handler; its URL."""
    servers = []

    async def start(handler: Handler) -> str:
        server = await serve(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/"

    yield start
    for server in servers:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


@pytest.mark.asyncio
async def test_the_server_closes_an_expired_token_and_expect_close_returns_its_code(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with WsClient(server.url, user=tokens.user(ttl=1)) as client:
        code = await client.expect_close(code=TOKEN_EXPIRED_CLOSE_CODE, within=EXPIRY_WAIT_S)

        assert code == 4001
        assert client.closed
        assert client.close_code == 4001


@pytest.mark.asyncio
async def test_a_collection_of_codes_accepts_any_of_them(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with WsClient(server.url, user=tokens.user(ttl=1)) as client:
        assert await client.expect_close(code=(1008, 4001), within=EXPIRY_WAIT_S) == 4001


@pytest.mark.asyncio
async def test_a_connection_that_outlives_its_token_fails_with_still_open(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    server.set_faults(KEEP_EXPIRED_SESSIONS)
    async with WsClient(server.url, user=tokens.user(ttl=1)) as client:
        with pytest.raises(WsTimeoutError) as failed:
            await client.expect_close(code=4001, within=EXPIRY_WAIT_S)

        message = str(failed.value)
        assert "still open after 4.0 s (explicit); expected close 4001" in message
        assert "\n" not in message
        assert client.connected  # the failed wait did not close it
        # What came meanwhile was not consumed: the greeting is still there to expect.
        await client.expect(type="connection_established")


@pytest.mark.asyncio
async def test_another_code_names_both_codes_who_closed_and_the_reason(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with WsClient(server.url, user=tokens.user(ttl=1)) as client:
        with pytest.raises(WsConnectionClosedError) as failed:
            await client.expect_close(code=1000, within=EXPIRY_WAIT_S)

    error = failed.value
    assert "closed with code 4001, expected close 1000" in str(error)
    assert "the server sent 4001 (private use): token expired" in str(error)
    assert (error.code, error.reason, error.closed_by) == (4001, "token expired", "server")


@pytest.mark.asyncio
async def test_an_already_closed_client_answers_at_once(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    client = WsClient(server.url, user=tokens.user())
    await client.connect()
    await client.close()

    waiting = asyncio.ensure_future(client.expect_close(1000, within=60))
    await asyncio.sleep(0)  # one turn of the loop: no wait was needed

    assert waiting.done()
    assert waiting.result() == 1000


@pytest.mark.asyncio
async def test_a_client_that_closed_itself_is_named_as_the_closer(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    client = WsClient(server.url, user=tokens.user())
    await client.connect()
    await client.close()

    with pytest.raises(WsConnectionClosedError) as failed:
        await client.expect_close(code=4001)

    assert "closed with code 1000, expected close 4001: we sent 1000 (OK)" in str(failed.value)
    assert failed.value.closed_by == "client"


@pytest.mark.asyncio
async def test_any_code_is_accepted_without_code(
    raw_server: Callable[[Handler], Awaitable[str]],
) -> None:
    async def close_with_4404(connection: ServerConnection) -> None:
        await connection.close(4404, "room gone")

    async with WsClient(await raw_server(close_with_4404), auth="none") as client:
        assert await client.expect_close(within=EXPIRY_WAIT_S) == 4404


@pytest.mark.asyncio
async def test_a_lost_connection_is_1006(
    raw_server: Callable[[Handler], Awaitable[str]],
) -> None:
    async def drop(connection: ServerConnection) -> None:
        connection.transport.abort()

    async with WsClient(await raw_server(drop), auth="none") as client:
        assert await client.expect_close(code=1006, within=EXPIRY_WAIT_S) == 1006
    span = client.metrics.spans[-1]  # recorded once the reader has ended
    assert (span.close_code, span.closed_by) == (1006, "network")


@pytest.mark.asyncio
async def test_a_close_reason_holding_a_secret_is_redacted(
    raw_server: Callable[[Handler], Awaitable[str]],
) -> None:
    secret = "s3cr3t-" + "q" * 30
    register_secret(secret)

    async def close_with_secret(connection: ServerConnection) -> None:
        await connection.close(4003, f"bad key {secret}")

    async with WsClient(await raw_server(close_with_secret), auth="none") as client:
        with pytest.raises(WsConnectionClosedError) as failed:
            await client.expect_close(code=4001, within=EXPIRY_WAIT_S)

    assert secret not in str(failed.value)
    assert "closed with code 4003, expected close 4001" in str(failed.value)
    assert "<redacted>" in str(failed.value)


@pytest.mark.asyncio
async def test_close_codes_are_recorded_per_connection_with_who_closed(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    expiring = WsClient(server.url, user=tokens.user(ttl=1))
    closing = WsClient(server.url, user=tokens.user())
    await expiring.connect()
    await closing.connect()
    await closing.close()
    await expiring.expect_close(4001, within=EXPIRY_WAIT_S)
    await expiring.close()  # a no-op on a closed connection: the record stays

    assert [(s.close_code, s.closed_by) for s in expiring.metrics.spans] == [(4001, "server")]
    assert [(s.close_code, s.closed_by) for s in closing.metrics.spans] == [(1000, "client")]


@pytest.mark.asyncio
async def test_expect_close_before_connect_says_so(tokens: TokenFactory) -> None:
    client = WsClient("ws://127.0.0.1:9/", user=tokens.user())
    with pytest.raises(WsResilienceError, match="not connected"):
        await client.expect_close(1000, within=1)


@pytest.mark.asyncio
@pytest.mark.parametrize("within", [0, -1, float("nan"), "2"])
async def test_a_bad_within_is_one_line_naming_it(
    server: ReferenceServer, tokens: TokenFactory, within: object
) -> None:
    async with WsClient(server.url, user=tokens.user()) as client:
        with pytest.raises(ValueError, match=r"^expect_close\(within=\) = .* is invalid") as bad:
            await client.expect_close(1000, within=within)  # type: ignore[arg-type]
    assert "\n" not in str(bad.value)


# -- the code argument (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "codes"),
    [(None, ()), (4001, (4001,)), ([1000, 4001, 1000], (1000, 4001)), (frozenset({1006}), (1006,))],
)
def test_code_may_be_one_code_a_collection_or_none(code: object, codes: tuple[int, ...]) -> None:
    assert expected_close(code) == ExpectedClose(codes)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["4001", True, 999, 5000, [], [4001, "x"], 4001.0, b"\x0f\xa1"])
def test_a_bad_code_is_one_line_naming_the_argument(code: object) -> None:
    with pytest.raises(ValueError, match=r"^expect_close\(code=.*\) is invalid") as bad:
        expected_close(code)  # type: ignore[arg-type]
    assert "\n" not in str(bad.value)


def test_expected_codes_are_worded_for_errors() -> None:
    assert ExpectedClose().describe() == "a close"
    assert ExpectedClose((4001,)).describe() == "close 4001"
    assert ExpectedClose((1000, 4001)).describe() == "close 1000 or 4001"
    assert ExpectedClose((4001,)).judge("c", 4001, None) == 4001
    with pytest.raises(WsConnectionClosedError, match="closed with code 1006, expected close"):
        ExpectedClose((4001,)).judge("c", None, None)  # no code known: lost, 1006
