"""1,000 concurrent authenticated connections: `Storm` (what ``ws_storm`` runs) vs raw
`websockets` doing the same, as a ratio, with p50/p95/p99 of connect for both.

Usage: ``python benchmarks/storm.py [--connections N] [--rounds R] [--server process|thread]
[--strict]``

SPEC section 6: opening N authenticated connections at once through the framework takes
at most 1.3x the time raw ``websockets.connect`` takes for the same N, against the same
reference server. Both sides use the same users and tokens (subprotocol auth, a distinct
user per connection, as a storm of real users) and the same server: by default a
``ws-resilience-server`` process, so that its CPU is not shared with the side being
measured (``--server thread`` runs an `EmbeddedServer` in this process instead). Each
round runs both sides, alternating which goes first; a side's time is the whole storm,
opening every connection and closing them all. The ratio is the median over rounds of
(Storm / raw). Connect percentiles are per connection, from the start of its handshake
to the upgrade, pooled over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.stats import Distribution
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

TARGET = 1.3
SERVER_START_S = 15.0
SECRET_ENV = "WS_STORM_BENCH_SECRET"
# Generous handshake bound for both sides: 1,000 handshakes queue on one server.
OPEN_TIMEOUT_S = 60.0
SETTINGS = WsSettings(
    auth_methods=("subprotocol",), connect_timeout=TimeoutValue(OPEN_TIMEOUT_S, "benchmark")
)


def raise_fd_limit(needed: int) -> None:
    """Both ends of every connection live on this machine: make room for the sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


@contextlib.contextmanager
def server_process(tokens: TokenFactory) -> Iterator[str]:
    """A ``ws-resilience-server`` subprocess; yields its URL once it listens (bounded)."""
    env = {**os.environ, SECRET_ENV: tokens.secret or ""}
    command = [sys.executable, "-m", "pytest_ws_resilience.testing", "--secret-env", SECRET_ENV]
    command += ["--ping-interval", "0"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=SERVER_START_S):
                raise SystemExit(f"server did not start within {SERVER_START_S:g} s")
        line = proc.stdout.readline().strip()
        if " listening on " not in line:
            raise SystemExit(f"server did not start: {line!r}")
        yield line.rsplit(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def server_thread(tokens: TokenFactory) -> Iterator[str]:
    with EmbeddedServer(ServerConfig(secret=tokens.secret, ping_interval=None)) as server:
        yield server.url


Side = tuple[float, float, list[float], int]  # whole s, opening s, connect ms, errors


async def storm_side(storm: Storm, users: list[TestUser]) -> Side:
    started = time.perf_counter()
    result = await storm.connect(users=users, label="benchmark")
    elapsed = time.perf_counter() - started
    return elapsed, result.duration_s, result.connect_ms, result.error_count


async def raw_side(url: str, users: list[TestUser]) -> Side:
    connect_ms: list[float] = []

    async def open_one(user: TestUser) -> ClientConnection:
        offer = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{user.token}")]
        begun = time.perf_counter()
        conn = await connect(url, subprotocols=offer, proxy=None, open_timeout=OPEN_TIMEOUT_S)
        connect_ms.append((time.perf_counter() - begun) * 1000.0)
        return conn

    started = time.perf_counter()
    opened = await asyncio.gather(*(open_one(u) for u in users), return_exceptions=True)
    opening = time.perf_counter() - started
    conns = [c for c in opened if isinstance(c, ClientConnection)]
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    elapsed = time.perf_counter() - started
    return elapsed, opening, connect_ms, len(opened) - len(conns)


async def run(url: str, tokens: TokenFactory, users: list[TestUser], rounds: int) -> int:
    storm = Storm(url, tokens, SETTINGS)
    await storm_side(storm, users[:50])  # warm both paths up
    await raw_side(url, users[:50])
    ratios: list[float] = []
    open_ratios: list[float] = []
    storm_ms: list[float] = []
    raw_ms: list[float] = []
    errors = 0
    for n in range(rounds):
        if n % 2:
            raw = await raw_side(url, users)
            framework = await storm_side(storm, users)
        else:
            framework = await storm_side(storm, users)
            raw = await raw_side(url, users)
        ratios.append(framework[0] / raw[0])
        open_ratios.append(framework[1] / raw[1])
        storm_ms += framework[2]
        raw_ms += raw[2]
        errors += framework[3] + raw[3]
        print(
            f"round {n + 1}: Storm {framework[0]:.3f} s (opening {framework[1]:.3f}) | "
            f"raw {raw[0]:.3f} s (opening {raw[1]:.3f}) | ratio {ratios[-1]:.3f}x"
        )
    print(f"connect, Storm: {Distribution.of(storm_ms).describe('ms')}")
    print(f"connect, raw:   {Distribution.of(raw_ms).describe('ms')}")
    ratio = statistics.median(ratios)
    ok = ratio <= TARGET and errors == 0
    print(f"opening only: median ratio Storm/raw {statistics.median(open_ratios):.3f}x")
    print(
        f"{len(users)} connections at once, open + close: median ratio Storm/raw "
        f"{ratio:.3f}x (target <= {TARGET}x), errors {errors}  {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    raise_fd_limit(4 * args.connections + 256)
    tokens = TokenFactory()
    users = [tokens.user() for _ in range(args.connections)]
    serve = server_process if args.server == "process" else server_thread
    with serve(tokens) as url:
        print(
            f"server {url} ({args.server}); {args.connections} concurrent authenticated "
            f"connections, {args.rounds} rounds"
        )
        missed = asyncio.run(run(url, tokens, users, args.rounds))
    return missed if args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
