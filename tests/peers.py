"""Misbehaving loopback servers for the client's failure tests.

Each one is an async context manager that listens on a free 127.0.0.1 port, yields
an object with a ``url`` and what it observed, and stops within a bounded time. They
are real servers on real sockets: the client under test cannot tell them from a
production backend having a bad day.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

__all__ = [
    "LateListener",
    "RawServer",
    "RecordingServer",
    "burst_server",
    "flaky_server",
    "late_listener",
    "never_closing_server",
    "never_reading_server",
    "recording_server",
    "rejecting_server",
    "silent_server",
]

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 2.0


@dataclass
class RecordingServer:
    """What a websockets-based test server saw."""

    url: str = ""
    #: ``time.monotonic()`` of every handshake request, accepted or not.
    attempt_times: list[float] = field(default_factory=list)
    #: every handshake request (path and headers), to tell which auth method came.
    requests: list[Request] = field(default_factory=list)
    #: messages received on accepted connections, in order.
    messages: list[str | bytes] = field(default_factory=list)
    connections: int = 0

    @property
    def attempts(self) -> int:
        return len(self.attempt_times)


async def _stop_server(server: Server) -> None:
    server.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await server.wait_closed()


async def _echo(record: RecordingServer, connection: ServerConnection) -> None:
    """Record and echo every message until the client leaves."""
    record.connections += 1
    with contextlib.suppress(ConnectionClosed):
        async for message in connection:
            record.messages.append(message)
            await connection.send(message)


@contextlib.asynccontextmanager
async def _websockets_server(
    record: RecordingServer, *, fail_first: int = 0, status: int = 503, port: int = 0
) -> AsyncIterator[RecordingServer]:
    """An echo server answering ``status`` to the first ``fail_first`` handshakes."""

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        record.attempt_times.append(time.monotonic())
        record.requests.append(request)
        if record.attempts <= fail_first:
            return connection.respond(status, f"test server answers {status}\n")
        return None

    async def handler(connection: ServerConnection) -> None:
        await _echo(record, connection)

    server = await serve(handler, HOST, port, process_request=process_request, close_timeout=0.5)
    record.url = f"ws://{HOST}:{server.sockets[0].getsockname()[1]}/"
    try:
        yield record
    finally:
        await _stop_server(server)


@contextlib.asynccontextmanager
async def flaky_server(fail_first: int, *, status: int = 503) -> AsyncIterator[RecordingServer]:
    """Answers HTTP ``status`` to the first ``fail_first`` handshakes, then accepts (echo)."""
    async with _websockets_server(RecordingServer(), fail_first=fail_first, status=status) as rec:
        yield rec


@contextlib.asynccontextmanager
async def rejecting_server(status: int = 401) -> AsyncIterator[RecordingServer]:
    """Answers HTTP ``status`` (401/403) to every handshake, recording each request."""
    # sys.maxsize failures: every handshake is refused.
    async with _websockets_server(RecordingServer(), fail_first=sys.maxsize, status=status) as rec:
        yield rec


@contextlib.asynccontextmanager
async def recording_server() -> AsyncIterator[RecordingServer]:
    """Accepts every handshake; records and echoes every message."""
    async with _websockets_server(RecordingServer()) as rec:
        yield rec


@contextlib.asynccontextmanager
async def burst_server() -> AsyncIterator[RecordingServer]:
    """On ``{"burst": N, "start": K}`` sends N small JSON messages numbered K.. K+N-1.

    Lets a test push 10,000+ frames through one client quickly.
    """
    record = RecordingServer()

    async def handler(connection: ServerConnection) -> None:
        record.connections += 1
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                request = json.loads(message)
                start = int(request.get("start", 0))
                for n in range(start, start + int(request["burst"])):
                    await connection.send(json.dumps({"type": "burst", "n": n, "pad": "x" * 64}))

    server = await serve(handler, HOST, 0, close_timeout=0.5)
    record.url = f"ws://{HOST}:{server.sockets[0].getsockname()[1]}/"
    try:
        yield record
    finally:
        await _stop_server(server)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LateListener:
    url: str
    #: ``time.monotonic()`` when the listener started accepting; None before.
    listening_since: float | None = None
    record: RecordingServer = field(default_factory=RecordingServer)


@contextlib.asynccontextmanager
async def late_listener(delay: float) -> AsyncIterator[LateListener]:
    """A port that refuses connections for ``delay`` seconds, then serves (echo)."""
    port = _free_port()
    late = LateListener(url=f"ws://{HOST}:{port}/")
    stop = asyncio.Event()

    async def run() -> None:
        await asyncio.sleep(delay)
        async with _websockets_server(late.record, port=port):
            late.listening_since = time.monotonic()
            await stop.wait()

    task = asyncio.create_task(run())
    try:
        yield late
    finally:
        stop.set()
        if late.listening_since is None:
            task.cancel()  # still waiting to listen: nothing to stop gracefully
        await asyncio.wait({task}, timeout=STOP_TIMEOUT_S + 1.0)


@dataclass
class RawServer:
    """A raw asyncio server; ``handshakes`` counts connections that reached it."""

    url: str = ""
    connections: int = 0
    handshakes: int = 0
    bytes_after_handshake: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    #: The handlers, cancelled at the end: one that hangs would outlive the test's loop.
    handlers: list[asyncio.Task[Any]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def _raw_server(
    handle: Callable[[RawServer, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[RawServer]:
    raw = RawServer()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw.connections += 1
        raw.writers.append(writer)
        if (task := asyncio.current_task()) is not None:
            raw.handlers.append(task)
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await handle(raw, reader, writer)

    server = await asyncio.start_server(on_connect, HOST, 0)
    raw.url = f"ws://{HOST}:{server.sockets[0].getsockname()[1]}/"
    try:
        yield raw
    finally:
        server.close()
        for writer in raw.writers:
            writer.transport.abort()
        for task in raw.handlers:
            task.cancel()
        if raw.handlers:
            await asyncio.wait(raw.handlers, timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await server.wait_closed()


async def _ignore_input(reader: asyncio.StreamReader, raw: RawServer | None = None) -> None:
    while data := await reader.read(65536):
        if raw is not None:
            raw.bytes_after_handshake += len(data)


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[RawServer]:
    """Accepts TCP and never answers the WebSocket handshake."""

    async def handle(raw: RawServer, reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await _ignore_input(reader)

    async with _raw_server(handle) as raw:
        yield raw


async def _accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Complete the opening handshake (websockets' sans-I/O `ServerProtocol`); False when
    the client went away first."""
    protocol = ServerProtocol()
    while not (events := protocol.events_received()):
        data = await reader.read(65536)
        if not data:
            return False
        protocol.receive_data(data)
    request = events[0]
    assert isinstance(request, Request)
    protocol.send_response(protocol.accept(request))
    writer.write(b"".join(protocol.data_to_send()))
    await writer.drain()
    return True


@contextlib.asynccontextmanager
async def never_reading_server() -> AsyncIterator[RawServer]:
    """Completes the handshake, then never reads again: the client's writes fill the
    socket buffers, then its transport's buffer."""

    async def handle(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if await _accept(reader, writer):
            raw.handshakes += 1
            await asyncio.Event().wait()  # until the server stops (its writers aborted)

    async with _raw_server(handle) as raw:
        yield raw


@contextlib.asynccontextmanager
async def never_closing_server() -> AsyncIterator[RawServer]:
    """Completes the handshake (websockets' sans-I/O `ServerProtocol`), then ignores all
    input: never answers a close frame, never closes the TCP connection."""

    async def handle(
        raw: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if await _accept(reader, writer):
            raw.handshakes += 1
            await _ignore_input(reader, raw)

    async with _raw_server(handle) as raw:
        yield raw
