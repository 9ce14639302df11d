"""Distributed load on loopback: a Locust master and its workers against the reference
server in its own process, next to ``ws_storm`` (a `Storm`) in one process.

Usage: ``python benchmarks/distributed_load.py [--users 3000] [--workers 3]
[--scaling-users 1500] [--no-scaling] [--spawn-rate 1000]``

1. The run of issue 15: a master and ``--workers`` worker processes, ``--users``
   authenticated users, each playing connect + ping/pong + close once: zero errors
   expected, the connect count summed from every worker's statistics, each worker's
   share printed.
2. Connections per second per Locust worker against ``ws_storm`` in one process: the
   same users' work (connect, one application round trip, close) through
   `Storm.connect(n, message=..., reply=...)` on one asyncio loop. The ratio is (total
   connections per second of the Locust run / workers) / (ws_storm's).
3. Scaling: total connections per second with 1, 2 and 3 workers (``--scaling-users``
   users each run).

A Locust run's duration is its master's, from the start of the test to the last
user's end (Locust's own start-up and the processes' start are not in it). Figures,
not thresholds: run it 2-3 times and report every run (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time

from reference_process import server_process

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.load.fd_limit import ensure_fd_limit
from pytest_ws_resilience.load.scenario import Scenario
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.locust.distributed import DistributedRun, run_distributed
from pytest_ws_resilience.locust.spec import SECRET_ENV, RunSpec
from pytest_ws_resilience.locust.stats import DistributedResult

PING = Scenario("ping").connect().send({"type": "ping"}).expect(type="pong").close()
#: Users started per second by Locust (``--spawn-rate``): above what the server here
#: serves (about 300/s), so spawning is not the limit, yet not all 3,000 at once (their
#: handshakes would queue past the 10 s connect timeout on a busy machine).
SPAWN_RATE = 1000.0
RUN_TIME_S = 300.0


def _locust(
    url: str, secret: str, users: int, workers: int, spawn_rate: float
) -> DistributedResult:
    spec = RunSpec(PING, url, users, label=f"locust {workers} worker(s) x {users} users")
    run = DistributedRun(
        spec, spawn_rate=spawn_rate, workers=workers, run_time=RUN_TIME_S, secret=secret
    )
    return run_distributed(run)


async def _storm(url: str, secret: str, users: int) -> tuple[float, int]:
    settings = WsSettings(connect_retries=0)
    async with Storm(url, TokenFactory(secret), settings) as storm:
        started = time.monotonic()
        result = await storm.connect(
            users, message={"type": "ping"}, reply={"type": "pong"}, label="ws_storm"
        )
        elapsed = time.monotonic() - started
    return users / elapsed, result.error_count


def _rate(result: DistributedResult) -> float:
    return len(result.connect_ms) / result.duration_s if result.duration_s else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--scaling-users", type=int, default=1500)
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--spawn-rate", type=float, default=SPAWN_RATE)
    args = parser.parse_args()
    ensure_fd_limit(args.users * 2 + 100)
    secret = secrets.token_urlsafe(32)
    os.environ[SECRET_ENV] = secret
    with server_process(SECRET_ENV, secret) as url:
        print(f"reference server (own process) at {url}; {os.cpu_count()} CPUs")
        run = _locust(url, secret, args.users, args.workers, args.spawn_rate)
        connects = sum(share.connects for share in run.workers.values())
        print(f"\n1. master + {args.workers} workers, {args.users} users:")
        print(run.describe())
        print(
            f"   connects summed over the workers: {connects} (Locust's aggregate: "
            f"{len(run.connect_ms)}), errors: {run.error_count}"
        )
        locust_rate = _rate(run)
        storm_rate, storm_errors = asyncio.run(_storm(url, secret, args.users))
        per_worker = locust_rate / args.workers
        print(f"\n2. connections per second ({args.users} users, connect + ping/pong + close):")
        print(
            f"   Locust, {args.workers} workers: {locust_rate:.0f}/s in all, "
            f"{per_worker:.0f}/s per worker"
        )
        print(f"   ws_storm, one process:  {storm_rate:.0f}/s ({storm_errors} errors)")
        print(f"   ratio per Locust worker / ws_storm: {per_worker / storm_rate:.2f}x")
        if args.no_scaling:
            return
        print(f"\n3. scaling, {args.scaling_users} users per run:")
        base = None
        for workers in (1, 2, 3):
            result = _locust(url, secret, args.scaling_users, workers, args.spawn_rate)
            rate = _rate(result)
            base = base or rate
            print(
                f"   {workers} worker(s): {rate:.0f} connections/s in all "
                f"({rate / base:.2f}x of 1 worker), errors {result.error_count}"
            )


if __name__ == "__main__":
    main()
