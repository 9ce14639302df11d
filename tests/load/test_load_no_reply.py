"""A storm that sent messages and got no answer says so (issue 17: no silent green).

Real loopback servers that greet every connection (``connection_established``, the
default ``settings.greeting``) and then answer nothing, or answer: the greeting is
never a reply, so a round trip is only timed for a frame that came because of the
message.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from websockets.asyncio.server import ServerConnection, serve

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import StormThresholdError
from pytest_ws_resilience.load.storm import Storm

pytestmark = [pytest.mark.websocket_integration, pytest.mark.asyncio]

HOST = "127.0.0.1"
#: A short recv bound: the silent server's connections all wait it out once.
SETTINGS = WsSettings(
    connect_timeout=TimeoutValue(5.0, "test"),
    recv_timeout=TimeoutValue(0.5, "test"),
    close_timeout=TimeoutValue(1.0, "test"),
    backoff=Backoff(base=0.01, cap=0.02),
)
GREETING = json.dumps({"type": "connection_established", "connection_id": "c1"})


@contextlib.asynccontextmanager
async def greeting_server(*, answer: bool) -> AsyncIterator[str]:
    """Greets each connection; then echoes a pong for each message, or stays silent."""

    async def handler(conn: ServerConnection) -> None:
        await conn.send(GREETING)
        async for message in conn:
            if answer:
                await conn.send(json.dumps({"type": "pong", "echo": str(message)[:20]}))

    async with serve(handler, HOST, 0, close_timeout=0.5) as srv:
        yield f"ws://{HOST}:{srv.sockets[0].getsockname()[1]}/"


async def test_a_server_that_only_greets_fails_a_storm_with_a_message_and_no_reply_spec():
    # Before: 20/20 succeeded, round_trip_ms p95 ~1 ms (the greeting timed as the
    # reply), and assert_errors(max=0) passed against a server that answers nothing.
    async with greeting_server(answer=False) as url, Storm(url, TokenFactory(), SETTINGS) as storm:
        result = await storm.connect(5, message={"type": "ping"})
    assert result.succeeded == 0
    assert result.errors["timeout"] == 5
    assert result.round_trip_ms == [] and result.replies_received == 0
    assert (
        "no reply to 1 message(s) (the greeting is not a reply)"
        in (result.error_examples["timeout"])
    )
    assert result.nothing_checked is not None
    assert "NO REPLY SEEN" in result.describe()
    with pytest.raises(StormThresholdError, match="no reply seen"):
        result.assert_errors(max=5)


async def test_a_server_that_answers_is_timed_from_its_answer_not_its_greeting():
    async with greeting_server(answer=True) as url, Storm(url, TokenFactory(), SETTINGS) as storm:
        result = await storm.connect(5, message={"type": "ping"})
    result.assert_errors(max=0)
    assert result.replies_received == 5 and len(result.round_trip_ms) == 5
    assert result.nothing_checked is None


@contextlib.asynccontextmanager
async def answers_with_a_greeting_frame() -> AsyncIterator[str]:
    """Says nothing at open; answers each message with a greeting-shaped frame."""

    async def handler(conn: ServerConnection) -> None:
        async for _ in conn:
            await conn.send(GREETING)

    async with serve(handler, HOST, 0, close_timeout=0.5) as srv:
        yield f"ws://{HOST}:{srv.sockets[0].getsockname()[1]}/"


async def test_with_no_greeting_configured_the_first_frame_after_the_send_is_the_reply():
    # With greeting = false, a frame of the default greeting's type is a frame like any
    # other: the first one after the send is taken as the answer, as documented.
    settings = replace(SETTINGS, greeting=None)
    async with (
        answers_with_a_greeting_frame() as url,
        Storm(url, TokenFactory(), settings) as storm,
    ):
        result = await storm.connect(2, message={"type": "ping"})
    assert result.replies_received == 2
    assert all(math.isfinite(v) and v >= 0 for v in result.round_trip_ms)


async def test_cycles_against_a_silent_server_count_no_reply_as_timeouts():
    async with greeting_server(answer=False) as url, Storm(url, TokenFactory(), SETTINGS) as storm:
        result = await storm.cycles(2, concurrency=2, message={"type": "ping"})
    assert result.errors["timeout"] == 2
    with pytest.raises(StormThresholdError):
        result.assert_error_rate(max=1.0)
