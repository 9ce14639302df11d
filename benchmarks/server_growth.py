"""What measuring a server's growth costs, and what it finds, as figures of one run.

Usage: ``python benchmarks/server_growth.py [--cycles N] [--rounds N] [--no-docker]``

Against the reference server started as a local process (``ServiceHandle``), clean and
with ``leak_connections``:

1. One sample: milliseconds per ``handle.resources()`` of a process (psutil over its
   process tree) and, unless ``--no-docker`` or no daemon answers, of a container (one
   Docker stats call plus its host pid read with psutil); median of ``--rounds``.
2. Cycles with and without the server's resources, interleaved (A/B, rotating which
   goes first) so that the machine's noise hits both alike: the median duration of
   ``storm.cycles(N)`` measured end to end (sampling and settling included) and the
   ratio. Settling waits for two samples 50 ms apart that show nothing falling, so the
   overhead is about 0.2 s per storm, whatever ``N``.
3. The growth per 1,000 cycles each server showed (fds, sockets, threads, RSS).

Prints figures only; no pass/fail (this is a cost, not a contract).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import statistics
import sys
import time
from collections.abc import Callable

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.servers.handle import ServiceHandle

__all__ = ["main"]


def reference(secret: str, *faults: str, image: str | None = None) -> ServiceSpec:
    command = [sys.executable, "-m", "pytest_ws_resilience.testing", "--port={port}"]
    command += [f"--fault={name}" for name in faults]
    spec = ServiceSpec("growth-bench", command=command, env={"WS_RESILIENCE_SECRET": secret})
    if image is None:
        return spec
    from pytest_ws_resilience.servers.images import host_python_mounts

    return dataclasses.replace(spec, image=image, mounts=host_python_mounts())


def sample_ms(take: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        take()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def timed_cycles(storm: Storm, n: int) -> tuple[float, object]:
    started = time.perf_counter()
    result = await storm.cycles(n, concurrency=10)
    return time.perf_counter() - started, result


async def compare(handle: ServiceHandle, tokens: TokenFactory, n: int, rounds: int) -> None:
    plain = Storm(handle.url, tokens)
    measured = Storm(handle.url, tokens, resources=handle.resources)
    await plain.cycles(50)  # warm-up
    durations: dict[str, list[float]] = {"without": [], "with": []}
    last = None
    for round_ in range(rounds):
        order = [("without", plain), ("with", measured)]
        for name, storm in order if round_ % 2 == 0 else order[::-1]:
            seconds, result = await timed_cycles(storm, n)
            durations[name].append(seconds)
            if name == "with":
                last = result
    without, with_ = (statistics.median(durations[k]) for k in ("without", "with"))
    print(
        f"  cycles({n}): without resources {without:.3f} s, with {with_:.3f} s "
        f"(ratio {with_ / without:.2f}x, +{(with_ - without) * 1000:.0f} ms; median of {rounds})"
    )
    growth = getattr(last, "server_growth", None)
    print(f"  {growth.describe() if growth is not None else 'no growth measured'}")


async def run(args: argparse.Namespace) -> None:
    secret = secrets.token_urlsafe(32)
    tokens = TokenFactory(secret)
    for faults in ((), ("leak_connections",)):
        print(f"reference server as a process, faults: {', '.join(faults) or 'none'}")
        with ServiceHandle(reference(secret, *faults)) as handle:
            print(f"  one sample (process tree): {sample_ms(handle.resources, args.rounds):.1f} ms")
            await compare(handle, tokens, args.cycles, args.rounds)
    if args.no_docker:
        return
    from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
    from pytest_ws_resilience.servers.images import HOST_IMAGE, ensure_host_image

    reason = docker_unavailable_reason()
    if reason is not None:
        print(f"container: skipped ({reason})")
        return
    client = docker_client()
    ensure_host_image(client)
    with ServiceHandle(reference(secret, image=HOST_IMAGE), docker=client) as handle:
        print(f"container: one sample: {sample_ms(handle.resources, args.rounds):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-docker", action="store_true")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
