"""Memory of one client over 10,000+ messages: the event log is bounded, growth is flat.

Usage: ``python benchmarks/memory.py [--messages N] [--tracemalloc] [--strict]``

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
import tracemalloc

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.load.rss import current_rss_bytes, rss_source
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

LIMIT_BYTES = 5 * 1024 * 1024
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the limit is missed")
    args = parser.parse_args(argv)
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
