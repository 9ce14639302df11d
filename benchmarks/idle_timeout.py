"""How late `ChaosProxy`'s ``idle_timeout`` toxic cuts an idle connection, measured.

Usage: ``python benchmarks/idle_timeout.py [--connections N] [--settings MS,MS,...]
[--strict]``

For each setting (200 ms and 1 s by default) and each path through the proxy, N
connections (20 by default) go idle at once after one last exchange, and each records
how late, after its idle timeout, the test saw the proxy drop it. Two references:

- the proxy's own stamp of the connection's last byte (`chaos.clocks`, read from the
  proxy in this process, on the loop's clock): the idle timeout runs from there, so
  this is the cut's lateness as the toxic promises it, plus the time the client's loop
  takes to see the drop. The verdict is on this one;
- the client's last write, taken before it: an upper bound that adds that exchange's
  round trip (through the server, whose thread competes for the GIL: several ms under
  load, and what made this figure swing from run to run).

The paths:

1. ``tcp``: a bytes-only ``tcp://`` upstream (an echo server in its own thread), whose
   lanes stay on the splice(2) fast path (`chaos.splice`): the idle clock sees its
   reads through the splicer's byte count;
2. ``ws``: a WebSocket client to the reference server through a ``ws://`` proxy (the
   frame reader's path); the last exchange is a WebSocket ping, the drop is seen as
   the connection closing with 1006.

Then, in the same run, the cost of watching: raw bytes echoed through a proxy with an
``idle_timeout`` armed (never reached) against one without, interleaved. Target (issue
14, Must show): the cut within 50 ms of its setting, at p50 and at max.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from echo_server import echo_server_thread, pipelined_echo_s
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from pytest_ws_resilience.chaos import splice
from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.chaos.toxics import ToxicSpec
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

HOST = "127.0.0.1"
#: Issue 14: the idle-timeout toxic cuts within 50 ms of its setting.
TARGET_MS = 50.0
#: Bound on one connection's wait for its cut, beyond the setting.
WAIT_S = 10.0


def _now() -> float:
    return asyncio.get_running_loop().time()


def _stamp(proxy: ChaosProxy, client_port: int) -> float:
    """When the proxy last saw a byte of this client's connection (its loop's clock)."""
    for conn in proxy.connections:
        if conn.client_address is not None and conn.client_address[1] == client_port:
            return conn._clocks.last_active
    raise RuntimeError(f"no live proxy connection from port {client_port}")


async def _tcp_lateness(proxy: ChaosProxy, setting_s: float) -> tuple[float, float]:
    """One connection: two echoes, then silence; seconds from the last write + setting
    to EOF, and from the proxy's last stamp + setting (the first echo waits for the
    upstream connection, which is not measured)."""
    reader, writer = await asyncio.open_connection(HOST, proxy.port)
    try:
        writer.write(b"x")
        await reader.readexactly(1)  # connected through to the echo server
        last = time.perf_counter()
        writer.write(b"x")
        await reader.readexactly(1)
        stamp = _stamp(proxy, writer.get_extra_info("sockname")[1])
        lanes = [lane for conn in proxy.connections for lane in conn._lanes.values()]
        if splice.SUPPORTED and not all(lane.spliced for lane in lanes):
            raise RuntimeError("a tcp lane left the splice fast path: not what is measured")
        async with asyncio.timeout(setting_s + WAIT_S):
            with contextlib.suppress(ConnectionError):
                if await reader.read() != b"":
                    raise RuntimeError("bytes arrived on an idle connection")
        return time.perf_counter() - last - setting_s, _now() - stamp - setting_s
    finally:
        writer.transport.abort()


async def _ws_lateness(proxy: ChaosProxy, token: str, setting_s: float) -> tuple[float, float]:
    """One WebSocket client: a ping, then silence; seconds from it + setting to 1006,
    and from the proxy's last stamp (the pong) + setting."""
    protocols = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{token}")]
    async with connect(proxy.url, subprotocols=protocols, proxy=None, ping_interval=None) as ws:
        await ws.recv()  # connection_established
        last = time.perf_counter()
        await (await ws.ping())
        stamp = _stamp(proxy, ws.local_address[1])
        try:
            async with asyncio.timeout(setting_s + WAIT_S):
                await ws.recv()
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                raise RuntimeError(f"closed with a close frame {closed.rcvd}, not cut") from None
            return time.perf_counter() - last - setting_s, _now() - stamp - setting_s
        raise RuntimeError("a message arrived on an idle connection")


async def _lateness(
    n: int, one: Callable[[], Awaitable[tuple[float, float]]]
) -> tuple[list[float], list[float]]:
    """N connections at once; the cut's lateness of each, in ms: from the last write
    (an upper bound: it includes that exchange's round trip) and from the proxy's own
    stamp of the last byte (what the toxic promises)."""
    pairs = await asyncio.gather(*(one() for _ in range(n)))
    return [w * 1000 for w, _ in pairs], [a * 1000 for _, a in pairs]


async def _run(echo_port: int, ws_url: str, token: str, n: int, settings_ms: list[int]) -> bool:
    rows: list[tuple[str, int, tuple[list[float], list[float]]]] = []
    for setting_ms in settings_ms:
        spec = ToxicSpec.of("idle_timeout", timeout=setting_ms)
        setting_s = setting_ms / 1000
        async with ChaosProxy(f"{HOST}:{echo_port}", seed=1, toxics=[spec]) as tcp:
            late = await _lateness(n, functools.partial(_tcp_lateness, tcp, setting_s))
            path = "tcp (splice fast path)" if splice.SUPPORTED else "tcp (transport path)"
            rows.append((path, setting_ms, late))
        async with ChaosProxy(ws_url, seed=1, toxics=[spec]) as ws:
            late = await _lateness(n, functools.partial(_ws_lateness, ws, token, setting_s))
            rows.append(("ws (frame reader)", setting_ms, late))
    print()
    print(
        "| path | setting | connections | late p50 / max, from the proxy's last byte | "
        "from the client's last write | target | verdict |"
    )
    print("|---|---|---|---|---|---|---|")
    ok = True
    for path, setting_ms, (from_write, from_stamp) in rows:
        if min(from_stamp) < 0:
            raise RuntimeError(f"{path}: cut {-min(from_stamp):.1f} ms before its setting")
        met = max(from_stamp) <= TARGET_MS
        ok = ok and met
        print(
            f"| {path} | {setting_ms} ms | {len(from_stamp)} | "
            f"{statistics.median(from_stamp):.1f} / {max(from_stamp):.1f} ms | "
            f"{statistics.median(from_write):.1f} / {max(from_write):.1f} ms | "
            f"<= {TARGET_MS:g} ms | {'met' if met else 'MISSED'} |"
        )

    # The cost of watching: bytes echoed with an idle_timeout armed (never reached).
    total = 16 * 1024 * 1024
    spec = ToxicSpec.of("idle_timeout", timeout=600_000)
    async with (
        ChaosProxy(f"{HOST}:{echo_port}", seed=1) as bare,
        ChaosProxy(f"{HOST}:{echo_port}", seed=1, toxics=[spec]) as watched,
    ):
        times: dict[str, list[float]] = {"without": [], "with idle_timeout": []}
        for round_ in range(6):
            order = [("without", bare), ("with idle_timeout", watched)]
            for name, proxy in order if round_ % 2 else order[::-1]:
                times[name].append(await pipelined_echo_s(proxy.port, total))
    mbps = {k: total / statistics.median(v) / 1e6 for k, v in times.items()}
    print()
    print(
        f"raw echo, 16 MB x 6 rounds (median): {mbps['without']:.0f} MB/s without, "
        f"{mbps['with idle_timeout']:.0f} MB/s with an idle_timeout armed "
        f"({mbps['with idle_timeout'] / mbps['without']:.3f}x)"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=20, help="connections per setting")
    parser.add_argument("--settings", default="200,1000", help="idle timeouts to measure, ms")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    settings_ms = [int(s) for s in args.settings.split(",") if s.strip()]
    tokens = TokenFactory()
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    with echo_server_thread() as port, EmbeddedServer(config) as server:
        print(
            f"echo server 127.0.0.1:{port}, reference server {server.url}; "
            f"{args.connections} connections idle at once per setting and path"
        )
        ok = asyncio.run(_run(port, server.url, tokens.user().token, args.connections, settings_ms))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
