"""Plain TCP upstreams for the proxy's bytes-only tests: a loopback server running one
handler per connection, and the echo handler most tests use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["HOST", "Handler", "echo", "tcp_server"]

HOST = "127.0.0.1"
#: Bound on the server's stop (its handlers are cancelled first).
STOP_S = 10.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[int]:
    """A server on a free loopback port running ``handler`` for each connection; yields
    the port. On exit its handlers are cancelled and it stops, bounded."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(handle, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_S):
                await server.wait_closed()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Write back whatever comes."""
    while data := await reader.read(256 * 1024):
        writer.write(data)
        await writer.drain()
