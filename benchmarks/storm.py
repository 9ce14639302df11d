"""1,000 concurrent authenticated connections: `Storm` (what ``ws_storm`` runs) vs raw
`websockets` doing the same, as a ratio, with p50/p95/p99 of connect for both.

Usage: ``python benchmarks/storm.py [--connections N] [--rounds R] [--server process|thread]
[--no-memory] [--strict]``; on 2 cores, 5,000 at once: ``--connections 5000 --rounds 3``.

SPEC section 6: opening N authenticated connections at once through the framework takes
at most 1.3x the time raw ``websockets.connect`` takes for the same N, against the same
reference server. Both sides use the same users and tokens (subprotocol auth, a distinct
user per connection, as a storm of real users) and the same server: by default a
``ws-resilience-server`` process, so that its CPU is not shared with the side being
measured (``--server thread`` runs an `EmbeddedServer` in this process instead). Each
round runs both sides, alternating which goes first; a side's time is the whole storm,
opening every connection and closing them all. The ratio is the median over rounds of
(Storm / raw). Connect percentiles are per connection, from the start of its handshake
to the upgrade, pooled over the rounds. Each side's client CPU time (this process's
``time.process_time``) is printed too, with its median ratio: the framework's own cost,
less at the mercy of the server's scheduling than wall time on a shared machine.

Memory per connection (unless ``--no-memory``): in a fresh process per side (so that
neither inherits the other's freed heap), after a warm-up of 20 connections, the
resident memory (RSS) while all N connections are open minus before them, divided by
N: bytes per connection for `Storm` (every `WsClient`, its connection, event log and
metrics included) and for raw websockets, side by side, twice each, alternating. The
server runs in its own process, so its memory is not counted (``--server thread``
counts it on both sides).

Open files: both ends of every connection live on this machine. The benchmark raises
its soft RLIMIT_NOFILE (up to the hard limit) before it starts the server, which
inherits it; a hard limit too low for N connections ends the run with one line saying
so, before anything is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

from reference_process import server_process
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.load.collector import collector_paused
from pytest_ws_resilience.load.fd_limit import ensure_fd_limit
from pytest_ws_resilience.load.rss import current_rss_bytes, rss_source
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.stats import Distribution
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

TARGET = 1.15  # issue 16 (SPEC section 6 allows 1.3x)
SECRET_ENV = "WS_STORM_BENCH_SECRET"
# Generous handshake bound for both sides: 1,000 handshakes queue on one server.
OPEN_TIMEOUT_S = 60.0
SETTINGS = WsSettings(
    auth_methods=("subprotocol",), connect_timeout=TimeoutValue(OPEN_TIMEOUT_S, "benchmark")
)


MEMORY_WARMUP = 20


def raise_fd_limit(connections: int, server: str) -> None:
    """Make room for the sockets (`load.fd_limit.ensure_fd_limit`, as a storm does): the
    client's N, an in-process server's N too, and as many again for the server process
    (it inherits this limit) or for sockets still closing between sides. Loud when the
    hard limit is too low."""
    own = (2 if server == "thread" else 1) * connections
    try:
        limit = ensure_fd_limit(own, in_process_server=True)
    except WsConfigError as err:
        raise SystemExit(f"{err} (--server {server})") from None
    if limit.raised:
        print(f"open-file soft limit raised from {limit.was} to {limit.soft} (hard {limit.hard})")


@contextlib.contextmanager
def server_process_for(tokens: TokenFactory) -> Iterator[str]:
    """A ``ws-resilience-server`` subprocess accepting ``tokens``; yields its URL."""
    with server_process(SECRET_ENV, tokens.secret or "", ["--ping-interval", "0"]) as url:
        yield url


@contextlib.contextmanager
def server_thread(tokens: TokenFactory) -> Iterator[str]:
    with EmbeddedServer(ServerConfig(secret=tokens.secret, ping_interval=None)) as server:
        yield server.url


Side = tuple[float, float, list[float], int, float]  # whole s, opening s, connect ms,
# errors, client CPU s


async def storm_side(storm: Storm, users: list[TestUser]) -> Side:
    cpu = time.process_time()
    started = time.perf_counter()
    result = await storm.connect(users=users, label="benchmark")
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return elapsed, result.duration_s, result.connect_ms, result.error_count, cpu


async def raw_side(url: str, users: list[TestUser], pause_gc: bool = False) -> Side:
    if pause_gc:  # as `Storm` does: apples to apples for the collector
        with collector_paused():
            return await raw_side(url, users)
    connect_ms: list[float] = []

    async def open_one(user: TestUser) -> ClientConnection:
        offer = [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{user.token}")]
        begun = time.perf_counter()
        conn = await connect(url, subprotocols=offer, proxy=None, open_timeout=OPEN_TIMEOUT_S)
        connect_ms.append((time.perf_counter() - begun) * 1000.0)
        return conn

    cpu = time.process_time()
    started = time.perf_counter()
    opened = await asyncio.gather(*(open_one(u) for u in users), return_exceptions=True)
    opening = time.perf_counter() - started
    conns = [c for c in opened if isinstance(c, ClientConnection)]
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return elapsed, opening, connect_ms, len(opened) - len(conns), cpu


async def run(
    url: str, tokens: TokenFactory, users: list[TestUser], rounds: int, pause_gc: bool
) -> int:
    storm = Storm(url, tokens, SETTINGS)
    await storm_side(storm, users[:50])  # warm both paths up
    await raw_side(url, users[:50])
    ratios: list[float] = []
    open_ratios: list[float] = []
    cpu_ratios: list[float] = []
    storm_ms: list[float] = []
    raw_ms: list[float] = []
    errors = 0
    for n in range(rounds):
        if n % 2:
            raw = await raw_side(url, users, pause_gc)
            framework = await storm_side(storm, users)
        else:
            framework = await storm_side(storm, users)
            raw = await raw_side(url, users, pause_gc)
        ratios.append(framework[0] / raw[0])
        open_ratios.append(framework[1] / raw[1])
        cpu_ratios.append(framework[4] / raw[4])
        storm_ms += framework[2]
        raw_ms += raw[2]
        errors += framework[3] + raw[3]
        print(
            f"round {n + 1}: Storm {framework[0]:.3f} s (opening {framework[1]:.3f}) | "
            f"raw {raw[0]:.3f} s (opening {raw[1]:.3f}) | ratio {ratios[-1]:.3f}x | "
            f"client CPU {framework[4]:.3f} / {raw[4]:.3f} s"
        )
    print(f"connect, Storm: {Distribution.of(storm_ms).describe('ms')}")
    print(f"connect, raw:   {Distribution.of(raw_ms).describe('ms')}")
    ratio = statistics.median(ratios)
    ok = ratio <= TARGET and errors == 0
    print(f"opening only: median ratio Storm/raw {statistics.median(open_ratios):.3f}x")
    print(f"client CPU: median ratio Storm/raw {statistics.median(cpu_ratios):.3f}x")
    print(
        f"{len(users)} connections at once, open + close: median ratio Storm/raw "
        f"{ratio:.3f}x (target <= {TARGET}x), errors {errors}  {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


async def memory_probe(side: str, url: str, tokens: TokenFactory, users: list[TestUser]) -> str:
    """In a fresh process: RSS with every connection of ``users`` open minus before,
    per connection (after a warm-up of both code paths, so that imports and caches are
    not counted); the Storm side also prints its `StormResult`'s own figure."""
    storm = Storm(url, tokens, SETTINGS)
    warm = users[:MEMORY_WARMUP]
    await storm_side(storm, warm)
    await raw_side(url, warm)
    gc.collect()
    before = current_rss_bytes()
    own: float | None = None
    conns: list[ClientConnection] = []
    if side == "storm":
        result = await storm.connect(users=users, hold=True, label="memory")
        held, errors = result.succeeded, result.error_count
        own = result.rss_per_connection_bytes
    else:
        offers = [[Subprotocol("jwt-auth"), Subprotocol(f"jwt.{u.token}")] for u in users]
        opened = await asyncio.gather(
            *(
                connect(url, subprotocols=o, proxy=None, open_timeout=OPEN_TIMEOUT_S)
                for o in offers
            ),
            return_exceptions=True,
        )
        conns = [c for c in opened if isinstance(c, ClientConnection)]
        held, errors = len(conns), len(opened) - len(conns)
    after = current_rss_bytes()
    await storm.aclose()
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    if before is None or after is None or not held:
        return f"{side} none held={held} errors={errors}"
    own_text = "-" if own is None else f"{own:.0f}"
    return f"{side} {(after - before) / held:.0f} held={held} errors={errors} own={own_text}"


def memory_figures(url: str, tokens: TokenFactory, connections: int) -> int:
    """Bytes per connection, Storm and raw, each in a fresh process (twice, alternating)."""
    env = {**os.environ, SECRET_ENV: tokens.secret or ""}
    per: dict[str, list[float]] = {"storm": [], "raw": []}
    errors = 0
    for side in ("storm", "raw", "raw", "storm"):
        command = [sys.executable, __file__, "--memory-probe", side, "--url", url]
        command += ["--connections", str(connections)]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=OPEN_TIMEOUT_S * 3
        )
        line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        fields = line.split()
        if done.returncode or len(fields) < 4 or fields[1] == "none":
            print(f"memory probe {side} failed: {line or done.stderr.strip()[-300:]}")
            errors += 1
            continue
        errors += int(fields[3].removeprefix("errors="))
        per[side].append(float(fields[1]))
        print(f"memory probe: {line}")
    if not per["storm"] or not per["raw"]:
        print("memory per connection: NOT MEASURED (a probe failed)")
        return 1
    storm_b, raw_b = statistics.median(per["storm"]), statistics.median(per["raw"])
    print(
        f"client memory per connection ({rss_source()} RSS, {connections} open): "
        f"Storm {storm_b / 1024:.1f} KiB, raw {raw_b / 1024:.1f} KiB "
        f"({storm_b / raw_b:.2f}x), errors {errors}"
    )
    return 1 if errors else 0


def probe_main(side: str, url: str, connections: int) -> int:
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise SystemExit(f"--memory-probe needs ${SECRET_ENV}")
    tokens = TokenFactory(secret)
    users = [tokens.user() for _ in range(connections)]
    print(asyncio.run(memory_probe(side, url, tokens, users)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument(
        "--raw-gc-paused",
        action="store_true",
        help="pause the garbage collector on the raw side too, as Storm does",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip memory per connection")
    parser.add_argument("--memory-probe", choices=("storm", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    raise_fd_limit(args.connections, args.server)
    if args.memory_probe:
        return probe_main(args.memory_probe, args.url, args.connections)
    tokens = TokenFactory()
    users = [tokens.user() for _ in range(args.connections)]
    serve = server_process_for if args.server == "process" else server_thread
    with serve(tokens) as url:
        print(
            f"server {url} ({args.server}); {args.connections} concurrent authenticated "
            f"connections, {args.rounds} rounds; garbage collector paused during the "
            f"storm for Storm{' and for raw' if args.raw_gc_paused else ' only'}"
        )
        missed = asyncio.run(run(url, tokens, users, args.rounds, args.raw_gc_paused))
        if not args.no_memory:
            missed |= memory_figures(url, tokens, args.connections)
    return missed if args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
