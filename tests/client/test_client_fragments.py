"""`WsClient.send_fragments`: one message sent as several frames, over real sockets.

A websockets server reads each message with ``recv_streaming`` and records its
fragments one by one, so the tests see the frames the client put on the wire (and
websockets' empty final frame after them). The reference server must answer a
fragmented message as any other. Bad parts fail in one line before the socket is
touched; a sent message is limited, observed and counted once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.client.sending import joined_fragments
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsConnectionClosedError, WsMessageTooLargeError
from pytest_ws_resilience.testing import ReferenceServer

pytestmark = pytest.mark.asyncio

WAIT_S = 5.0


@dataclass
class Fragments:
    url: str = ""
    #: each message received, as the list of its fragments in arrival order.
    messages: list[list[str | bytes]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def fragment_server() -> AsyncIterator[Fragments]:
    """Records every message's fragments, then answers ``"got N fragments"``."""
    record = Fragments()

    async def handler(connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                parts = [part async for part in connection.recv_streaming()]
                record.messages.append(parts)
                await connection.send(f"got {len(parts)} fragments")

    server = await serve(handler, "127.0.0.1", 0, close_timeout=0.5)
    record.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        yield record
    finally:
        server.close()
        await server.wait_closed()


class SendWatcher:
    def __init__(self) -> None:
        self.sent: list[str | bytes] = []

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        pass

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        self.sent.append(raw)

    def on_canary(self, client: WsClient, marker: str) -> None:
        pass


async def test_text_parts_go_out_as_one_text_message_in_that_many_frames() -> None:
    async with fragment_server() as server, WsClient(server.url) as client:
        await client.send_fragments(["hel", "lo ", "wörld"])
        assert await client.expect_text("got 4 fragments", timeout=WAIT_S)
        # Each part is a frame; websockets ends the message with an empty final frame.
        assert server.messages == [["hel", "lo ", "wörld", ""]]


async def test_bytes_parts_go_out_as_one_binary_message() -> None:
    async with fragment_server() as server, WsClient(server.url) as client:
        await client.send_fragments([b"\x00\x01", bytearray(b"\x02"), memoryview(b"\x03")])
        await client.expect_text("got 4 fragments", timeout=WAIT_S)
        assert server.messages == [[b"\x00\x01", b"\x02", b"\x03", b""]]


async def test_counted_and_observed_once_as_the_whole_message() -> None:
    async with fragment_server() as server, WsClient(server.url) as client:
        watcher = SendWatcher()
        client.add_observer(watcher)
        await client.send_fragments(["ab", "cd", "é"])
        await client.expect_text("got 4 fragments", timeout=WAIT_S)
        assert (client.metrics.sent, client.metrics.bytes_sent) == (1, 6)
        assert watcher.sent == ["abcdé"]


@pytest.mark.parametrize(
    ("parts", "error", "message"),
    [
        (["a", b"b"], TypeError, "send_fragments parts must be all str (a text message) or all "),
        ([1, 2], TypeError, "send_fragments parts must be all str (a text message) or all "),
        ([], ValueError, "send_fragments needs at least one part; got an empty list"),
        ("abc", TypeError, "send_fragments takes a list of parts, not one str; use send_text"),
        (b"abc", TypeError, "send_fragments takes a list of parts, not one bytes; use send_"),
    ],
)
async def test_bad_parts_fail_in_one_line_before_the_socket(
    parts: Any, error: type[Exception], message: str
) -> None:
    async with fragment_server() as server, WsClient(server.url) as client:
        with pytest.raises(error) as info:
            await client.send_fragments(parts)
        assert str(info.value).startswith(message) and "\n" not in str(info.value)
        await client.send_fragments(["still", " open"])
        await client.expect_text("got 3 fragments", timeout=WAIT_S)
        assert server.messages == [["still", " open", ""]]
        assert client.metrics.sent == 1


async def test_the_size_limit_applies_to_the_whole_message_before_the_socket() -> None:
    async with fragment_server() as server, WsClient(server.url, max_message_size=64) as client:
        with pytest.raises(WsMessageTooLargeError) as info:
            await client.send_fragments(["x" * 40, "y" * 25])  # each part fits, 65 bytes not
        assert (info.value.size, info.value.limit) == (65, 64)
        await client.send_fragments(["x" * 40, "y" * 24])
        await client.expect_text("got 3 fragments", timeout=WAIT_S)
        assert server.messages == [["x" * 40, "y" * 24, ""]]
        assert client.metrics.sent == 1


async def test_sending_fragments_on_a_closed_connection_says_so() -> None:
    async with fragment_server() as server:
        client = WsClient(server.url)
        await client.connect()
        await client.close()
        with pytest.raises(WsConnectionClosedError, match="cannot send: connection"):
            await client.send_fragments(["a", "b"])


async def test_reference_server_answers_a_fragmented_message(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with WsClient(server.url, user=tokens.user(), settings=WsSettings()) as client:
        await client.send_fragments(['{"type": "pi', 'ng", "n": 7, "text": "', "é" * 30, '"}'])
        pong = await client.expect(type="pong", n=7, timeout=WAIT_S)
        assert pong["text"] == "é" * 30
        assert client.metrics.sent == 1


async def test_joined_fragments_keeps_the_parts_websockets_sends() -> None:
    assert joined_fragments(("a", "b")) == ("ab", ["a", "b"])
    assert joined_fragments([bytearray(b"x"), b"y"]) == (b"xy", [b"x", b"y"])
