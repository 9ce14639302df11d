"""What `ChaosProxy` costs, and how exact its latency toxic is, measured in one run.

Usage: ``python benchmarks/chaos_proxy.py [--megabytes N] [--rounds N] [--strict]``

Three measurements, each interleaved A/B/A/B... so the machine's noise hits both sides:

1. pipelined throughput through a toxic-free proxy vs straight to the same server, two
   workloads; target (SPEC section 6) at least 0.7x the direct throughput:
   a. WebSocket messages: 2,000 ``{"type": "ping"}`` sent at once to the reference server,
      then their 2,000 pongs read (the workload the proxy exists for);
   b. raw bytes: N MB written to a TCP echo server and read back at once. This is the
      worst case: the proxy's work (two more socket reads and writes per chunk) is all
      there is, on the same interpreter as the client, so expect about 0.5x here;
2. the round trip the proxy adds with no toxics (a 32-byte echo), p50 in microseconds;
3. a 50 ms ``latency`` toxic (downstream): its added round trip, p50 and p99, against a
   toxic-free proxy; target 50 ms +- 3 ms at p50.

The echo server runs in its own thread and event loop, so its work does not land on the
loop under test; the proxy runs on the benchmark's loop, beside the client, as it does in
a user's test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

HOST = "127.0.0.1"
THROUGHPUT_TARGET = 0.7
LATENCY_MS = 50.0
LATENCY_TOLERANCE_MS = 3.0
CHUNK = 64 * 1024


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


async def _pipelined(port: int, total: int) -> float:
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


async def _ws_pipelined(url: str, token: str, count: int) -> float:
    protocols = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{token}")]
    async with connect(url, subprotocols=protocols, proxy=None, compression=None) as ws:
        await ws.recv()  # connection_established
        started = time.perf_counter()
        await asyncio.gather(*(ws.send('{"type": "ping"}') for _ in range(count)))
        for _ in range(count):
            await ws.recv()
        return time.perf_counter() - started


async def _interleaved(
    a: Callable[[], Awaitable[float]], b: Callable[[], Awaitable[float]], rounds: int
) -> tuple[list[float], list[float]]:
    """Run a and b alternately, swapping which goes first each round."""
    times_a: list[float] = []
    times_b: list[float] = []
    for n in range(rounds):
        if n % 2:
            times_b.append(await b())
            times_a.append(await a())
        else:
            times_a.append(await a())
            times_b.append(await b())
    return times_a, times_b


class _Echo:
    """One open connection doing 32-byte echo round trips."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Echo:
        return cls(*await asyncio.open_connection(HOST, port))

    async def rtt(self) -> float:
        started = time.perf_counter()
        self.writer.write(b"r" * 32)
        await self.reader.readexactly(32)
        return time.perf_counter() - started

    def close(self) -> None:
        self.writer.transport.abort()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _run(port: int, ws_url: str, token: str, megabytes: int, rounds: int) -> bool:
    total = megabytes * 1024 * 1024 // CHUNK * CHUNK
    async with (
        ChaosProxy(f"{HOST}:{port}", seed=1) as plain,
        ChaosProxy(f"{HOST}:{port}", seed=1) as slow,
        ChaosProxy(ws_url, seed=1) as ws_proxy,
    ):
        slow.add_toxic("latency", latency=LATENCY_MS)

        # 1a. pipelined WebSocket messages
        count = 2000
        await _interleaved(
            lambda: _ws_pipelined(ws_proxy.url, token, count),
            lambda: _ws_pipelined(ws_url, token, count),
            2,
        )
        via_ws, direct_ws = await _interleaved(
            lambda: _ws_pipelined(ws_proxy.url, token, count),
            lambda: _ws_pipelined(ws_url, token, count),
            8,
        )
        ws_ratio = statistics.median(direct_ws) / statistics.median(via_ws)
        ok_ws = ws_ratio >= THROUGHPUT_TARGET
        print(
            f"ws messages     proxy {count / statistics.median(via_ws):8.0f} msg/s "
            f"direct {count / statistics.median(direct_ws):8.0f} msg/s "
            f"ratio {ws_ratio:5.3f}x (target >= {THROUGHPUT_TARGET}x)  "
            f"{'PASS' if ok_ws else 'FAIL'}"
        )

        # 1b. pipelined raw bytes
        await _interleaved(
            lambda: _pipelined(plain.port, total // 4), lambda: _pipelined(port, total // 4), 2
        )
        via_proxy, direct = await _interleaved(
            lambda: _pipelined(plain.port, total), lambda: _pipelined(port, total), 6
        )
        ratio = statistics.median(direct) / statistics.median(via_proxy)
        mbps_proxy = total / statistics.median(via_proxy) / 1e6
        mbps_direct = total / statistics.median(direct) / 1e6
        ok_throughput = ratio >= THROUGHPUT_TARGET
        print(
            f"raw bytes       proxy {mbps_proxy:8.1f} MB/s   direct {mbps_direct:8.1f} MB/s   "
            f"ratio {ratio:5.3f}x (target >= {THROUGHPUT_TARGET}x)  "
            f"{'PASS' if ok_throughput else 'FAIL'}"
        )

        # 2. the round trip a toxic-free proxy adds
        through, straight = await _Echo.open(plain.port), await _Echo.open(port)
        try:
            await _interleaved(through.rtt, straight.rtt, 200)
            proxied, raw = await _interleaved(through.rtt, straight.rtt, rounds * 4)
        finally:
            through.close()
            straight.close()
        added_us = (statistics.median(proxied) - statistics.median(raw)) * 1e6
        print(
            f"added rtt       p50 {added_us:8.1f} us   (proxy p50 "
            f"{statistics.median(proxied) * 1e6:.1f} us, direct {statistics.median(raw) * 1e6:.1f}"
            " us; informational)"
        )

        # 3. the latency toxic's accuracy
        delayed, undelayed = await _Echo.open(slow.port), await _Echo.open(plain.port)
        try:
            await _interleaved(delayed.rtt, undelayed.rtt, 5)
            with_toxic, without = await _interleaved(delayed.rtt, undelayed.rtt, rounds)
        finally:
            delayed.close()
            undelayed.close()
        base = statistics.median(without)
        added = [(t - base) * 1e3 for t in with_toxic]
        p50 = statistics.median(added)
        p99 = _percentile(added, 99)
        ok_latency = abs(p50 - LATENCY_MS) <= LATENCY_TOLERANCE_MS
        print(
            f"latency {LATENCY_MS:.0f} ms   added p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
            f"(target {LATENCY_MS:.0f} +- {LATENCY_TOLERANCE_MS:.0f} ms at p50)  "
            f"{'PASS' if ok_latency else 'FAIL'}"
        )
    return ok_ws and ok_throughput and ok_latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=int, default=32, help="MB per throughput round")
    parser.add_argument("--rounds", type=int, default=100, help="latency round trips per side")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    tokens = TokenFactory()
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    with echo_server_thread() as port, EmbeddedServer(config) as server:
        print(
            f"echo server 127.0.0.1:{port}, reference server {server.url}; "
            f"{args.megabytes} MB per raw round, {args.rounds} latency round trips per side"
        )
        ok = asyncio.run(_run(port, server.url, tokens.user().token, args.megabytes, args.rounds))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
