"""Memory of one client over 10,000+ messages: the event log is bounded, growth is flat;
and memory of a session of storms: a finished test keeps none of its clients.

Usage: ``python benchmarks/memory.py [--messages N] [--tracemalloc] [--strict]``;
``python benchmarks/memory.py --session [--clients 500] [--tests 20] [--strict]``

``--session`` (issue 17): a pytest run (a subprocess, with the plugin) of a warm-up test
and then ``--tests`` tests, each a ``ws_storm`` of ``--clients`` connections with a
ping/pong each, a chaos proxy and a client through it. It prints the run's RSS after
the warm-up and after the last test; the growth must stay under 50 MiB (before the fix
the per-test watch kept every client, proxy and loop: +646 MiB for 500 x 20).

SPEC section 6: 10,000 messages through one client grow memory by under 5 MiB. A
`WsClient` (default ring of 1,000 records) exchanges application pings with the
embedded reference server. The verdict is the growth of the process's resident memory
(RSS, read as ``ws_storm`` reads it: `pytest_ws_resilience.load.rss`) between the point
where the ring is full (after 1,000 messages, so its own size is the baseline) and the
end. The server runs in the same process, so its memory counts too: the figure is an
upper bound for the client. ``--tracemalloc`` also traces Python allocations over the
same span (tracing costs memory of its own, so it is off for the RSS verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.load.rss import current_rss_bytes, rss_source
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

LIMIT_BYTES = 5 * 1024 * 1024
SESSION_LIMIT_MIB = 50
SESSION_SUITE = """
import gc
import pytest
from pytest_ws_resilience.load.rss import current_rss_bytes

_rss = {}


def _measure():
    gc.collect()
    return current_rss_bytes() / 2**20


@pytest.mark.parametrize("n", range(TESTS + 1))  # 0: the warm-up
@pytest.mark.asyncio
async def test_storm(ws_storm, ws_chaos, ws_client_factory, n):
    _rss.setdefault("before", _measure())
    result = await ws_storm.connect(CLIENTS, message={"type": "ping"}, reply={"type": "pong"})
    result.assert_errors(max=0)
    proxy = await ws_chaos()
    client = await ws_client_factory(url=proxy.url)
    await client.expect("connection_established")


@pytest.fixture(autouse=True)
def _mark():
    yield
    _rss["start" if "start" not in _rss else "last"] = _measure()


def teardown_module():
    print(f"\\nRSS start {_rss['start']:.1f} MiB last {_rss['last']:.1f} MiB "
          f"before {_rss['before']:.1f} MiB")
"""
WINDOW = 100  # messages in flight at once
TOKENS = TokenFactory()  # its random secret is given to the server below


async def exchange(client: WsClient, count: int, start: int) -> None:
    for first in range(start, start + count, WINDOW):
        last = min(first + WINDOW, start + count)
        for n in range(first, last):
            await client.send_json({"type": "ping", "n": n, "pad": "x" * 100})
        await client.expect(type="pong", n=last - 1)


def traced() -> int:
    return tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0


async def run(url: str, messages: int) -> tuple[int, int, int, int, int]:
    async with WsClient(url, user=TOKENS.user(), auth="subprotocol") as client:
        await exchange(client, 1_000, 0)  # fill the ring: its size is the baseline
        rss_before, traced_before = current_rss_bytes() or 0, traced()
        await exchange(client, messages, 1_000)
        rss_grown = (current_rss_bytes() or 0) - rss_before
        traced_grown = traced() - traced_before
        return rss_grown, traced_grown, len(client.log), client.log.total, client.log.dropped


def session(clients: int, tests: int, strict: bool) -> int:
    """Run the storm suite in a pytest subprocess; print its RSS figures."""
    with tempfile.TemporaryDirectory(prefix="ws-memory-") as tmp:
        suite = f"CLIENTS = {clients}\nTESTS = {tests}\n{SESSION_SUITE}"
        Path(tmp, "test_memory_session.py").write_text(suite)
        Path(tmp, "pytest.ini").write_text(
            "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
            "asyncio_default_test_loop_scope = function\n"
        )
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "ws_resilience",
                "-s",
                "-q",
                "-p",
                "no:cacheprovider",
            ],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    found = re.search(r"RSS start ([\d.]+) MiB last ([\d.]+) MiB before ([\d.]+) MiB", run.stdout)
    if run.returncode != 0 or found is None:
        print(f"the storm session failed (exit {run.returncode}):\n{run.stdout[-3000:]}")
        return 1
    start, last, before = (float(v) for v in found.groups())
    ok = last - start < SESSION_LIMIT_MIB
    print(
        f"{tests} tests of {clients}-client storms: RSS {start:.1f} MiB after the warm-up "
        f"test -> {last:.1f} MiB after the last, growth {last - start:.1f} MiB (limit "
        f"{SESSION_LIMIT_MIB} MiB; {before:.1f} MiB before any storm)  {'PASS' if ok else 'FAIL'}"
    )
    return 1 if strict and not ok else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the limit is missed")
    parser.add_argument("--session", action="store_true", help="a pytest session of storms")
    parser.add_argument("--clients", type=int, default=500, help="clients per storm (--session)")
    parser.add_argument("--tests", type=int, default=20, help="storm tests (--session)")
    args = parser.parse_args(argv)
    if args.session:
        return session(args.clients, args.tests, args.strict)
    if current_rss_bytes() is None:
        print("cannot read this process's resident memory on this platform")
        return 1 if args.strict else 0
    if args.tracemalloc:
        tracemalloc.start()
    with EmbeddedServer(ServerConfig(secret=TOKENS.secret, ping_interval=None)) as server:
        grown, traced_grown, kept, total, dropped = asyncio.run(run(server.url, args.messages))
    ok = grown < LIMIT_BYTES
    print(
        f"{args.messages} messages after the ring filled: RSS growth {grown / 1024:.1f} KiB "
        f"({rss_source()}; limit {LIMIT_BYTES // 1024} KiB)  {'PASS' if ok else 'FAIL'}; "
        f"log keeps {kept} of {total} received ({dropped} dropped from the ring)"
    )
    if args.tracemalloc:
        print(f"traced Python allocations grew {traced_grown / 1024:.1f} KiB over the same span")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
