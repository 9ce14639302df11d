"""The step player's cost: the same ping/pong per user, as a storm (`Storm.connect` with
``message=``/``reply=``) and as a scenario (`Storm.run`), side by side, as ratios.

Usage: ``python benchmarks/scenario_run.py [--users N] [--rounds R]``.

Every side opens N authenticated connections at once against one ``ws-resilience-server``
process (so that its CPU is not shared with the side measured); each connection sends
one ping and times its pong. The sides:

- ``storm``: `Storm.connect`; replies matched in a receive hook (`load.exchange`); every
  connection closed together once all are done;
- ``scenario``: `Storm.run` of connect, send, expect: the same workload through the
  step player (`load.player`: ``client.expect`` per reply, an outcome reported per
  step); the runner closes every connection together at the end, as the storm does;
- ``+close``: the same scenario ending with ``close()``: each user closes its own
  connection as soon as it is done, so closing handshakes run while later users still
  connect (a different workload, shown for what it costs the server).

Each round runs every side, rotating which goes first. Printed per round and as
medians: each side's wall time and this process's CPU time (the client's own cost,
less at the mercy of the shared machine than wall time), and their ratios to the storm;
the round trips of each side, pooled over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from reference_process import server_process

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.load.fd_limit import ensure_fd_limit
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.load.scenario import Scenario
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.stats import Distribution

SECRET_ENV = "WS_BENCH_SCENARIO_SECRET"
SETTINGS = WsSettings(
    connect_timeout=TimeoutValue(30.0, "benchmark"),
    recv_timeout=TimeoutValue(30.0, "benchmark"),
    close_timeout=TimeoutValue(10.0, "benchmark"),
)
PING = {"type": "ping"}
PING_PONG = Scenario("ping_pong").connect().send(PING).expect(type="pong")
SIDES = ("storm", "scenario", "+close")


async def timed(run: Callable[[], Awaitable[StormResult]]) -> tuple[float, float, StormResult]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = await run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


Measured = tuple[float, float, StormResult]


async def one_round(storm: Storm, users: int, first: int) -> dict[str, Measured]:
    sides: dict[str, Callable[[], Awaitable[StormResult]]] = {
        "storm": lambda: storm.connect(users, message=PING, reply={"type": "pong"}),
        "scenario": lambda: storm.run(PING_PONG, users=users),
        "+close": lambda: storm.run(PING_PONG.close(), users=users),
    }
    order = [SIDES[(first + k) % len(SIDES)] for k in range(len(SIDES))]
    measured = {}
    for side in order:
        wall, cpu, result = await timed(sides[side])
        if result.succeeded != users:
            raise SystemExit(f"{side}: {result.succeeded}/{users} succeeded\n{result.describe()}")
        measured[side] = (wall, cpu, result)
    return measured


async def main(users: int, rounds: int) -> None:
    tokens = TokenFactory()
    ensure_fd_limit(2 * users)
    with server_process(SECRET_ENV, tokens.secret or "", ["--ping-interval", "0"]) as url:
        async with Storm(url, tokens, SETTINGS) as storm:
            await storm.run(PING_PONG, users=20)  # warm-up: imports, first handshakes
            rows = []
            for number in range(rounds):
                rows.append(await one_round(storm, users, first=number % len(SIDES)))
    print(f"{users} users at once, one ping/pong each, {rounds} rounds (server: a process)")
    print("round  " + "  ".join(f"{side:>8} wall/cpu" for side in SIDES))
    for number, row in enumerate(rows, 1):
        cells = [f"{row[side][0]:>7.3f}s/{row[side][1]:.3f}s" for side in SIDES]
        print(f"{number:>5}  " + "  ".join(f"{cell:>17}" for cell in cells))
    for side in SIDES[1:]:
        walls = [row[side][0] / row["storm"][0] for row in rows]
        cpus = [row[side][1] / row["storm"][1] for row in rows]
        print(
            f"median ratio {side}/storm: wall {statistics.median(walls):.2f}, "
            f"client CPU {statistics.median(cpus):.2f}"
        )
    for side in SIDES:
        pooled = [ms for row in rows for ms in row[side][2].round_trip_ms]
        print(f"round trip, {side:<8}: {Distribution.of(pooled).describe('ms')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.users, args.rounds))
