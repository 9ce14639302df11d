"""A TCP echo server on its own event loop in a daemon thread, for the benchmarks that
push raw bytes through the chaos proxy (``benchmarks/chaos_proxy.py``,
``benchmarks/idle_timeout.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["CHUNK", "HOST", "echo_server_thread", "pipelined_echo_s"]

HOST = "127.0.0.1"
CHUNK = 64 * 1024
#: The most one pipelined round may take: a forwarder that stalls fails the run, loudly.
ROUND_TIMEOUT_S = 60.0


@contextlib.contextmanager
def echo_server_thread() -> Iterator[int]:
    """A TCP echo server on its own loop in a daemon thread; yields its port."""
    ready = threading.Event()
    port: list[int] = []
    stop: list[Callable[[], object]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(256 * 1024):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, HOST, 0)
        port.append(server.sockets[0].getsockname()[1])
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        ready.set()
        await done.wait()
        server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("echo server did not start within 10 s")
    try:
        yield port[0]
    finally:
        stop[0]()
        thread.join(5)


async def pipelined_echo_s(port: int, total: int) -> float:
    """Seconds to push ``total`` bytes through an echo at ``port`` and read them all back,
    writing and reading at once (pipelined, in 64 KiB writes).

    Raises:
        TimeoutError: the round took more than `ROUND_TIMEOUT_S` (a stalled forwarder).
    """
    async with asyncio.timeout(ROUND_TIMEOUT_S):
        return await _pipelined_echo_s(port, total)


async def _pipelined_echo_s(port: int, total: int) -> float:
    reader, writer = await asyncio.open_connection(HOST, port)
    payload = bytes(CHUNK)
    try:
        started = time.perf_counter()

        async def send() -> None:
            for _ in range(total // CHUNK):
                writer.write(payload)
                await writer.drain()

        sender = asyncio.create_task(send())
        received = 0
        while received < total:
            data = await reader.read(256 * 1024)
            if not data:
                raise RuntimeError("echo connection closed early")
            received += len(data)
        await sender
        return time.perf_counter() - started
    finally:
        writer.transport.abort()
