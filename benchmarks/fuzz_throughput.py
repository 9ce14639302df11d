"""Fuzzing throughput over a real connection against raw sends of the same messages.

Usage: ``python benchmarks/fuzz_throughput.py [--rounds N] [--examples N]``

The clean server of ``tests/fuzz`` runs in a process of its own; every message gets one
answer. Each round, interleaved A/B (the first side swapped every round, so the
machine's noise hits both alike), with seed = the round:

- fuzz: `FuzzRunner.run` (Hypothesis in its worker thread, each example sent from the
  loop, its answer awaited, then the health ping and its pong), examples per second;
- fuzz, no health: the same without the health round trip;
- raw: the same frames (drawn beforehand with the same strategy and seed, no I/O)
  sent with plain ``websockets``: ``send`` + ``recv`` per frame, frames per second.

Also printed: Hypothesis' generation alone (the frames drawn, nothing sent) and the
thread hop alone (a no-op coroutine run from a worker thread on the loop, as the engine
runs each example), so the gap can be split into generation, the hop and the health
round trip. Ratios are
raw rate / fuzz rate: how many times slower fuzzing sends than a bare loop.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from fuzz_server_process import fuzz_server
from hypothesis import HealthCheck, Phase, given, seed, settings
from websockets.asyncio.client import connect

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.fuzz.frames import FuzzFrame
from pytest_ws_resilience.fuzz.runner import FuzzRunner, Health
from pytest_ws_resilience.fuzz.strategies import frame_strategy

__all__ = ["main"]

EXAMPLES = [{"type": "ping"}, {"type": "user_message", "text": "hello"}]
HEALTH = Health({"type": "ping"}, {"type": "pong"})


def draw_frames(n: int, seed_value: int) -> tuple[list[FuzzFrame], float]:
    """The frames the fuzzer draws for ``seed_value`` (generation only), and its time."""
    frames: list[FuzzFrame] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(frame_strategy(EXAMPLES))
    def collect(frame: FuzzFrame) -> None:
        frames.append(frame)

    started = time.perf_counter()
    collect()
    return frames, time.perf_counter() - started


async def fuzz_rate(url: str, n: int, seed_value: int, health: Health | None) -> float:
    client = WsClient(url, settings=WsSettings(greeting=None))

    async def open_client() -> WsClient:
        return await client.connect()

    runner = FuzzRunner(open_client, answer_timeout=10.0, connect_bound=10.0, health=health)
    await client.connect()  # the handshake is not part of the throughput
    try:
        result = await runner.run(
            frame_strategy(EXAMPLES),
            max_examples=n,
            seed=seed_value,
            budget_s=600.0,
            max_reconnects=0,
        )
    finally:
        await client.close()
    assert result.ok, result.report()
    return result.examples_run / result.elapsed_s


async def hop_rate(n: int) -> float:
    """Round trips per second from a worker thread to the loop and back (no I/O)."""
    loop = asyncio.get_running_loop()

    async def nothing() -> None:
        return None

    def hops() -> float:
        started = time.perf_counter()
        for _ in range(n):
            asyncio.run_coroutine_threadsafe(nothing(), loop).result(timeout=10)
        return n / (time.perf_counter() - started)

    return await asyncio.to_thread(hops)


async def raw_rate(url: str, frames: list[FuzzFrame]) -> float:
    async with connect(url, proxy=None, max_size=None) as conn:
        started = time.perf_counter()
        for frame in frames:
            await conn.send(frame.wire)
            await conn.recv()
        return len(frames) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--examples", type=int, default=300)
    args = parser.parse_args(argv)
    rates: dict[str, list[float]] = {
        "fuzz": [],
        "bare": [],
        "raw": [],
        "generate": [],
        "hop": [],
    }
    with fuzz_server("none") as url:
        print(f"server {url}; {args.rounds} rounds of {args.examples} examples per side")
        for n in range(args.rounds):
            frames, gen_s = draw_frames(args.examples, n)
            rates["generate"].append(len(frames) / gen_s)
            rates["hop"].append(asyncio.run(hop_rate(args.examples)))
            sides = ["fuzz", "bare", "raw"]
            for side in sides if n % 2 == 0 else reversed(sides):
                if side == "raw":
                    rate = asyncio.run(raw_rate(url, frames))
                else:
                    health = HEALTH if side == "fuzz" else None
                    rate = asyncio.run(fuzz_rate(url, args.examples, n, health))
                rates[side].append(rate)
    med = statistics.median
    for side, label in (
        ("raw", "raw websockets send+recv "),
        ("fuzz", "fuzz, health each example"),
        ("bare", "fuzz, no health check    "),
        ("generate", "generation alone (no I/O)"),
        ("hop", "thread hop alone (no I/O)"),
    ):
        values = rates[side]
        print(f"{label}  {med(values):8.0f} /s  (min {min(values):.0f}, max {max(values):.0f})")
    raw = med(rates["raw"])
    print(f"ratio raw / fuzz:            {raw / med(rates['fuzz']):6.2f}x")
    print(f"ratio raw / fuzz no health:  {raw / med(rates['bare']):6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
