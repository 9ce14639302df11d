"""How long fuzzing takes to find each of the two bugs of ``tests/fuzz``, over 10 seeds.

Usage: ``python benchmarks/fuzz_find.py [--seeds N]``

For each server (a lone surrogate in ``text`` -> 1011; a nesting past 64 levels ->
1011) and each seed 0..N-1, one fuzzing run with the ``local`` profile's budget (the
default), over a real connection to the server in a process of its own. Prints, per
bug: how many seeds found it, the median (min/max) time to the first failing message
and to the end of shrinking, the examples each took, and the minimal messages found.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections import Counter

from fuzz_server_process import fuzz_server

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.fuzz.frames import shown
from pytest_ws_resilience.fuzz.profiles import FUZZ_PROFILES
from pytest_ws_resilience.fuzz.result import FuzzResult
from pytest_ws_resilience.fuzz.runner import FuzzRunner
from pytest_ws_resilience.fuzz.strategies import frame_strategy

__all__ = ["main"]

EXAMPLES = [{"type": "ping"}, {"type": "user_message", "text": "hello"}]
LOCAL = FUZZ_PROFILES["local"]


async def fuzz_once(url: str, seed: int) -> FuzzResult:
    client = WsClient(url, settings=WsSettings(greeting=None))

    async def connect() -> WsClient:
        return await client.connect()

    runner = FuzzRunner(connect, answer_timeout=10.0, connect_bound=10.0)
    try:
        return await runner.run(
            frame_strategy(EXAMPLES),
            max_examples=LOCAL.max_examples,
            seed=seed,
            budget_s=LOCAL.budget_s,
            max_reconnects=LOCAL.max_reconnects,
        )
    finally:
        await client.close()


def _spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    if not values:
        return "-"
    return (
        f"{statistics.median(values):.{digits}f} {unit} "
        f"(min {min(values):.{digits}f}, max {max(values):.{digits}f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"local profile: {LOCAL.max_examples} examples, budget {LOCAL.budget_s:g} s")
    for bug in ("surrogate", "nesting"):
        with fuzz_server(bug) as url:
            results = [asyncio.run(fuzz_once(url, seed)) for seed in range(args.seeds)]
        found = [r for r in results if r.minimal is not None]
        first = [r.first_failure_s for r in found if r.first_failure_s is not None]
        at = [float(r.first_failure_example or 0) for r in found]
        total = [r.elapsed_s for r in found]
        examples = [float(r.examples_run) for r in found]
        minimal = Counter(shown(r.minimal.frame, 80) for r in found if r.minimal is not None)
        print(f"\n{bug}: found with {len(found)}/{len(results)} seeds")
        print(f"  time to the first failure: {_spread(first)}")
        print(f"  message number of it:      {_spread(at, 'th', 0)}")
        print(f"  time to the minimal one:   {_spread(total)} (search + shrinking)")
        print(f"  messages sent in all:      {_spread(examples, '', 0)}")
        for text, count in minimal.most_common():
            print(f"  minimal x{count}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
