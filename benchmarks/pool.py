"""What the connection pool saves, as figures measured in one run.

Usage: ``python benchmarks/pool.py [--rounds N] [--tests N] [--skip-suite] [--strict]``

1. Getting a ready client, interleaved (A/B/C, rotating which goes first) against one
   `EmbeddedServer` so that the machine's noise hits every side alike:

   - hit: ``pool.acquire(user)`` of an idle, open connection + ``pool.release(client)``
     with the default health check (state check; a ping unless the connection proved
     alive within ``health_check_interval``, 0.5 s);
   - hit, ping every reuse: the same with ``health_check_interval=0`` (one WebSocket
     ping round trip per hit);
   - fresh: ``WsClient(url, user=user).connect()`` (authenticated: the JWT is checked
     by the server) + ``close()``.

   Target (SPEC section 6): a hit at least 10x faster than fresh, judged on the default
   pool. The ping-every-reuse figure is printed beside it: its floor is one loopback
   round trip, which bounds its speed-up to what a handshake costs in round trips.

2. Reuse across a suite: a sample suite of ``--tests`` tests (default 20), each leasing a
   connection for one of 3 fixed users through the ``ws_pool`` fixture, run by pytest in
   a subprocess with the session event loop (``ws_loop_scope = session``,
   ``asyncio_default_test_loop_scope = session``). Its conftest writes the pool's stats
   to a JSON file; the script prints the reuse rate (3 users: at best 1 - 3/N).

Exits 0 unless ``--strict`` and a target is missed (or the suite could not run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.pool.pool import ConnectionPool
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

SPEED_UP_TARGET = 10.0
SUITE_USERS = 3
#: Bound of the sample suite's subprocess (it takes about a second).
SUITE_TIMEOUT_S = 120.0


async def _timed(action: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def _interleaved(
    actions: Sequence[Callable[[], Awaitable[None]]], rounds: int
) -> list[list[float]]:
    """Run the actions in turn, rotating which goes first each round; times per action."""
    times: list[list[float]] = [[] for _ in actions]
    for n in range(rounds):
        for k in range(len(actions)):
            i = (n + k) % len(actions)
            times[i].append(await _timed(actions[i]))
    return times


def _hit(pool: ConnectionPool, user: TestUser, url: str) -> Callable[[], Awaitable[None]]:
    async def hit() -> None:
        client = await pool.acquire(user, url=url)
        await pool.release(client)

    return hit


async def bench_hit_vs_fresh(
    url: str, users: Sequence[TestUser], rounds: int
) -> tuple[float, float, float]:
    """Median seconds of a default hit, a ping-every-reuse hit and a fresh connect."""
    default_pool = ConnectionPool()
    ping_pool = ConnectionPool(health_check_interval=0)
    pools = (default_pool, ping_pool)
    try:
        for pool, user in zip(pools, users, strict=False):
            await pool.release(await pool.acquire(user, url=url))  # the connection reused

        async def fresh() -> None:
            client = WsClient(url, user=users[2])
            await client.connect()
            await client.close()

        actions = [_hit(default_pool, users[0], url), _hit(ping_pool, users[1], url), fresh]
        await _interleaved(actions, 20)  # warm up every path
        times = await _interleaved(actions, rounds)
        for pool in pools:
            stats = pool.stats
            assert stats.misses == 1 and stats.created == 1, f"hits were not hits: {pool!r}"
    finally:
        for pool in pools:
            await pool.cleanup_all()
    hit_s, ping_hit_s, fresh_s = (statistics.median(t) for t in times)
    return hit_s, ping_hit_s, fresh_s


# -- part 2: a sample suite -------------------------------------------------------------

_CONFTEST = """
import json
import os

import pytest

STATS = {}


@pytest.fixture(scope="session")
def bench_users(ws_tokens):
    return [ws_tokens.user() for _ in range(%(users)d)]


@pytest.fixture(autouse=True)
def record_pool_stats(ws_pool):
    yield
    stats = ws_pool.stats
    STATS.update(stats.as_dict() if hasattr(stats, "as_dict") else dict(stats))


def pytest_sessionfinish(session):
    with open(os.environ["POOL_BENCH_STATS"], "w") as f:
        json.dump(STATS, f)
"""

_TEST_FILE = """
import pytest


@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(%(tests)d))
async def test_pooled(ws_pool, bench_users, n):
    user = bench_users[n %% len(bench_users)]
    client = await ws_pool.acquire(user)
    await client.send_json({"type": "ping", "n": n})
    pong = await client.expect("pong", n=n)
    assert pong["n"] == n
"""

_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = session
"""


def run_sample_suite(tests: int) -> tuple[dict[str, object] | None, str]:
    """Run the sample suite; the pool stats it wrote (None on failure) and a message."""
    with tempfile.TemporaryDirectory(prefix="ws-pool-bench-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text(_INI)
        (root / "conftest.py").write_text(textwrap.dedent(_CONFTEST % {"users": SUITE_USERS}))
        (root / "test_sample.py").write_text(textwrap.dedent(_TEST_FILE % {"tests": tests}))
        stats_path = root / "stats.json"
        command = [
            sys.executable, "-m", "pytest", str(root), "-p", "ws_resilience",
            "-o", "ws_loop_scope=session", "-o", "asyncio_default_test_loop_scope=session",
            "-p", "no:cacheprovider", "-q",
        ]  # fmt: skip
        env = {**os.environ, "POOL_BENCH_STATS": str(stats_path)}
        try:
            done = subprocess.run(
                command, cwd=root, env=env, capture_output=True, text=True,
                timeout=SUITE_TIMEOUT_S, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None, f"sample suite did not finish within {SUITE_TIMEOUT_S:g}s"
        output = done.stdout + done.stderr
        if "fixture 'ws_pool' not found" in output:
            return None, "the ws_pool fixture is not available (plugin without ws_pool?)"
        if done.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-15:])
            return None, f"sample suite failed (exit {done.returncode}):\n{tail}"
        if not stats_path.exists() or not json.loads(stats_path.read_text()):
            return None, "sample suite passed but wrote no pool stats"
        summary = output.strip().splitlines()[-1]
        stats: dict[str, object] = json.loads(stats_path.read_text())
        return stats, summary


def _report_suite(tests: int) -> bool:
    started = time.perf_counter()
    stats, message = run_sample_suite(tests)
    elapsed = time.perf_counter() - started
    if stats is None:
        print(f"suite reuse      FAIL: {message}")
        return False
    best = 1 - SUITE_USERS / tests
    rate = stats.get("reuse_rate")
    rate_text = f"{rate:.3f}" if isinstance(rate, (int, float)) else repr(rate)
    ok = isinstance(rate, (int, float)) and rate >= best - 1e-9
    print(
        f"suite reuse      {tests} tests, {SUITE_USERS} users: reuse rate {rate_text} "
        f"(hits {stats.get('hits')}, misses {stats.get('misses')}; best possible "
        f"{best:.3f})  {'PASS' if ok else 'FAIL'}   [{message}; {elapsed:.1f}s]"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=300, help="rounds per side")
    parser.add_argument("--tests", type=int, default=20, help="tests in the sample suite")
    parser.add_argument("--skip-suite", action="store_true", help="only part 1")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    tokens = TokenFactory()
    users = [tokens.user() for _ in range(3)]
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    with EmbeddedServer(config) as server:
        print(f"server {server.url}; {args.rounds} rounds per side, interleaved")
        hit_s, ping_hit_s, fresh_s = asyncio.run(bench_hit_vs_fresh(server.url, users, args.rounds))
    print(f"fresh connect+close            {fresh_s * 1e6:9.1f} us")
    speed_up = fresh_s / hit_s
    ok = speed_up >= SPEED_UP_TARGET
    print(
        f"pool hit (default)             {hit_s * 1e6:9.1f} us   speed-up {speed_up:5.1f}x "
        f"(target >= {SPEED_UP_TARGET:g}x)  {'PASS' if ok else 'FAIL'}"
    )
    print(
        f"pool hit (ping every reuse)    {ping_hit_s * 1e6:9.1f} us   speed-up "
        f"{fresh_s / ping_hit_s:5.1f}x (for information: one round trip per hit)"
    )
    if not args.skip_suite:
        ok = _report_suite(args.tests) and ok
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
