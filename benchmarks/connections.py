"""1,000 concurrent authenticated connections: `WsClient` vs raw `websockets`, as a ratio.

Usage: ``python benchmarks/connections.py [--connections N] [--rounds R] [--strict]``

SPEC section 6: opening N authenticated connections at once through the framework takes
at most 1.3x the time raw ``websockets.connect`` takes for the same N, against the same
reference server (an `EmbeddedServer`, in its own thread and loop, so its work weighs on
both sides alike). Each connection is a distinct user with its own token (subprotocol
auth, as a storm of real users would be). Rounds alternate which side goes first, and
the ratio is the median over rounds of (framework / raw). Each round closes everything
before the next, and both sides' closes are timed too, for information.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from pytest_ws_resilience.client import WsClient
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig
from pytest_ws_resilience.tokens import TestUser, TokenFactory

__all__ = ["main"]

TARGET = 1.3


async def open_with_client(url: str, users: list[TestUser]) -> tuple[float, float]:
    clients = [WsClient(url, user=u, auth="subprotocol") for u in users]
    started = time.perf_counter()
    await asyncio.gather(*(c.connect() for c in clients))
    opened = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(c.close() for c in clients))
    return opened, time.perf_counter() - started


async def open_raw(url: str, users: list[TestUser]) -> tuple[float, float]:
    def offer(user: TestUser) -> list[Subprotocol]:
        return [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{user.token}")]

    started = time.perf_counter()
    conns: list[ClientConnection] = await asyncio.gather(
        *(connect(url, subprotocols=offer(u), proxy=None, open_timeout=60) for u in users)
    )
    opened = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(c.close() for c in conns))
    return opened, time.perf_counter() - started


async def run(url: str, users: list[TestUser], rounds: int) -> list[tuple[float, ...]]:
    await open_with_client(url, users[:50])  # warm both paths up
    await open_raw(url, users[:50])
    results = []
    for n in range(rounds):
        if n % 2:
            raw = await open_raw(url, users)
            framework = await open_with_client(url, users)
        else:
            framework = await open_with_client(url, users)
            raw = await open_raw(url, users)
        results.append((*framework, *raw))
        print(
            f"round {n + 1}: WsClient open {framework[0]:.3f} s close {framework[1]:.3f} s | "
            f"raw open {raw[0]:.3f} s close {raw[1]:.3f} s | ratio {framework[0] / raw[0]:.3f}x"
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    tokens = TokenFactory()
    users = [tokens.user() for _ in range(args.connections)]
    # No server pings: this measures opening connections, not keepalive traffic.
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    with EmbeddedServer(config) as server:
        print(
            f"server {server.url}; {args.connections} concurrent connections, {args.rounds} rounds"
        )
        results = asyncio.run(run(server.url, users, args.rounds))
    ratio = statistics.median(fw_open / raw_open for fw_open, _, raw_open, _ in results)
    ok = ratio <= TARGET
    print(
        f"open {args.connections} at once: median ratio WsClient/raw {ratio:.3f}x "
        f"(target <= {TARGET}x)  {'PASS' if ok else 'FAIL'}"
    )
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
