"""What `WsClient` costs over raw `websockets`, as ratios measured in one run.

Usage: ``python benchmarks/client_overhead.py [--rounds N] [--strict]``

Two comparisons, each interleaved A/B/A/B... so that the machine's noise (other jobs,
frequency scaling) hits both sides alike:

1. connect + close: ``WsClient(auth="subprotocol")`` vs ``websockets.connect`` offering
   the same ``["jwt-auth", "jwt.<token>"]`` subprotocols with the same token;
2. round trip on an open connection: ``send_json({"type": "ping"})`` +
   ``expect(type="pong")`` vs raw ``send(json.dumps(...))`` + ``recv()`` + ``json.loads``
   (a raw test parses the frame too, or it could not check it).

Targets (SPEC section 6): connect <= 1.15x, round trip <= 1.25x. Prints medians, ratios
and PASS/FAIL; exits 0 unless ``--strict`` and a target is missed.

The server is an `EmbeddedServer` (the reference server in its own thread and loop), not
a `ReferenceServer` on the benchmark's loop: on a shared loop the server's work would be
added to both sides of every ratio and dilute the client's overhead toward 1.0x, and the
server's tasks would interleave with the client's on the hot path. In its own thread the
server costs the same for A and B, and the loop under test runs only the code measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

CONNECT_TARGET = 1.15
ROUND_TRIP_TARGET = 1.25


async def _timed(action: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def _interleaved(
    a: Callable[[], Awaitable[None]], b: Callable[[], Awaitable[None]], rounds: int
) -> tuple[list[float], list[float]]:
    """Run a and b alternately, swapping which goes first each round."""
    times_a: list[float] = []
    times_b: list[float] = []
    for n in range(rounds):
        if n % 2:
            times_b.append(await _timed(b))
            times_a.append(await _timed(a))
        else:
            times_a.append(await _timed(a))
            times_b.append(await _timed(b))
    return times_a, times_b


async def bench_connect(url: str, user: TestUser, rounds: int) -> tuple[float, float]:
    subprotocols = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{user.token}")]

    async def client_path() -> None:
        client = WsClient(url, user=user, auth="subprotocol")
        await client.connect()
        await client.close()

    async def raw_path() -> None:
        conn = await connect(url, subprotocols=subprotocols, proxy=None)
        await conn.close()

    await _interleaved(client_path, raw_path, 20)  # warm up both paths
    times_client, times_raw = await _interleaved(client_path, raw_path, rounds)
    return statistics.median(times_client), statistics.median(times_raw)


async def bench_round_trip(url: str, user: TestUser, rounds: int) -> tuple[float, float]:
    subprotocols = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{user.token}")]
    client = await WsClient(url, user=user, auth="subprotocol").connect()
    raw = await connect(url, subprotocols=subprotocols, proxy=None)
    try:
        await client.expect("connection_established", timeout=10)
        json.loads(await raw.recv())  # the raw side's connection_established

        async def client_path() -> None:
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")

        async def raw_path() -> None:
            await raw.send(json.dumps({"type": "ping"}))
            reply = json.loads(await raw.recv())
            assert reply["type"] == "pong"

        await _interleaved(client_path, raw_path, 200)
        times_client, times_raw = await _interleaved(client_path, raw_path, rounds)
    finally:
        await client.close()
        await raw.close()
    return statistics.median(times_client), statistics.median(times_raw)


def _report(name: str, client_s: float, raw_s: float, target: float) -> bool:
    ratio = client_s / raw_s
    verdict = "PASS" if ratio <= target else "FAIL"
    print(
        f"{name:<16} WsClient {client_s * 1e6:9.1f} us   raw {raw_s * 1e6:9.1f} us   "
        f"ratio {ratio:5.3f}x (target <= {target}x)  {verdict}"
    )
    return ratio <= target


async def _run(url: str, user: TestUser, rounds: int) -> bool:
    connect_client, connect_raw = await bench_connect(url, user, rounds)
    rt_client, rt_raw = await bench_round_trip(url, user, rounds * 5)
    ok_connect = _report("connect+close", connect_client, connect_raw, CONNECT_TARGET)
    ok_rt = _report("round trip", rt_client, rt_raw, ROUND_TRIP_TARGET)
    return ok_connect and ok_rt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=300, help="connect rounds per side")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    tokens = TokenFactory()
    user = tokens.user()
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    with EmbeddedServer(config) as server:
        print(f"server {server.url}; {args.rounds} connect rounds, {args.rounds * 5} round trips")
        ok = asyncio.run(_run(server.url, user, args.rounds))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
