"""Waiting for events (`WsClient.expect`, ``expect_sequence``) over real loopback
sockets against the reference server: matching, consuming, timeouts that say what
came, and waits ended by a close. What counts as a match is unit-tested in
``test_client_matching.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.errors import WsConnectionClosedError, WsTimeoutError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

AGENT_FLOW = ["agent_started", "agent_thinking", "tool_executing", "tool_completed",
              "agent_completed"]  # fmt: skip
FAST_BACKOFF = Backoff(base=0.02, cap=0.08)
#: Generous bound for "promptly": far below the timeouts the tests would otherwise hit.
PROMPT_S = 1.5


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (local state, cheap) until true; fail after `PROMPT_S`."""
    deadline = time.monotonic() + PROMPT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {PROMPT_S}s: {what}"
        await asyncio.sleep(0.01)


def make_client(url: str, tokens: TokenFactory, **kwargs: object) -> WsClient:
    kwargs.setdefault("user", tokens.user())
    kwargs.setdefault("backoff", FAST_BACKOFF)
    return WsClient(url, **kwargs)  # type: ignore[arg-type]


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


@pytest.mark.asyncio
async def test_a_short_wait_started_after_a_long_one_times_out_on_its_own_deadline(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens) as client:
        await client.expect("connection_established", timeout=5)
        long_wait = asyncio.create_task(client.expect("pong", timeout=5))
        await asyncio.sleep(0)  # the long wait arms the shared timer first
        started = time.monotonic()
        with pytest.raises(WsTimeoutError, match=r"0\.2s \(explicit\)"):
            await client.expect("never_sent", timeout=0.2)
        assert time.monotonic() - started < PROMPT_S
        assert not long_wait.done()  # woken by the short deadline, it went back to waiting
        await client.send_json({"type": "ping", "n": 1})
        async with asyncio.timeout(PROMPT_S):
            assert (await long_wait)["n"] == 1


@pytest.mark.asyncio
async def test_a_long_wait_outliving_a_short_one_still_ends_on_its_own_deadline(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with make_client(server.url, tokens) as client:
        await client.expect("connection_established", timeout=5)
        short_wait = asyncio.create_task(client.expect("never_sent", timeout=0.1))
        started = time.monotonic()
        with pytest.raises(WsTimeoutError, match=r"0\.4s \(explicit\)"):
            await client.expect("never_sent_either", timeout=0.4)
        elapsed = time.monotonic() - started
        assert 0.4 - 0.005 <= elapsed < 0.4 + PROMPT_S
        with pytest.raises(WsTimeoutError, match=r"0\.1s \(explicit\)"):
            await short_wait


@pytest.mark.asyncio
async def test_frames_received_before_a_close_can_still_be_matched(tokens: TokenFactory) -> None:
    config = ServerConfig(secret=tokens.secret, max_message_size=1024)
    async with ReferenceServer(config) as server, make_client(server.url, tokens) as client:
        await client.expect("connection_established", timeout=5)
        await client.send_json({"type": "ping", "n": 1})
        await until(lambda: client.log.total == 2, "the pong arrives (unconsumed)")
        await client.send_text("x" * 4096)  # above the server's limit: it closes with 1009
        await until(lambda: client.closed, "the server closes")
        assert (await client.expect("pong", timeout=5))["n"] == 1
        with pytest.raises(WsConnectionClosedError, match="closed \\(code 1009\\)") as info:
            await client.expect("pong", timeout=5)
        assert info.value.code == 1009
