"""What ``concurrent_safe`` buys under pytest-xdist, as wall times measured in one run.

Usage: ``python benchmarks/parallel.py [--tests N] [--rounds N] [--sleep S] [--strict]``

Writes an I/O-bound sample suite of ``--tests`` tests (default 40) to a temporary
folder: each test takes ``ws_client`` (a real, authenticated connection to the embedded
reference server), does a ping/pong round trip, awaits ``--sleep`` seconds (default
0.25, standing for a slow backend), and does a second round trip. The suite is run by
pytest in a subprocess three ways, interleaved (the order rotates each round, so the
machine's noise hits every side alike):

- ``safe -n 2``: every test marked ``concurrent_safe``, ``-n 2 --dist loadgroup``;
- ``safe -n 0``: the same suite, not distributed;
- ``unsafe -n 2``: the same tests without ``concurrent_safe``, ``-n 2 --dist loadgroup``:
  the plugin serializes them (one ``xdist_group``), so they run one at a time.

Prints each run's median wall time, the speed-up of ``safe -n 2`` over ``-n 0``
(ideally close to 2 on two workers, less worker start-up) and the ratio of
``unsafe -n 2`` to ``-n 0`` (about 1: what serialization costs is the parallelism).

Exits 0 unless ``--strict`` and ``safe -n 2`` is not at least `SPEED_UP_TARGET` times
faster than ``-n 0`` (or a run failed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

SPEED_UP_TARGET = 1.3
#: Bound of one pytest run of the sample suite.
RUN_TIMEOUT_S = 300.0

INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""

SUITE = """\
import asyncio

import pytest


@pytest.mark.asyncio
{marker}@pytest.mark.parametrize("n", range({tests}))
async def test_io_bound(ws_client, n):
    await ws_client.send_json({{"type": "ping"}})
    await ws_client.expect(type="pong")
    await asyncio.sleep({sleep})
    await ws_client.send_json({{"type": "ping"}})
    await ws_client.expect(type="pong")
"""

RUNS: dict[str, tuple[str, list[str]]] = {
    # name: (suite folder, pytest arguments)
    "safe -n 2": ("safe", ["-n", "2", "--dist", "loadgroup"]),
    "safe -n 0": ("safe", ["-n", "0"]),
    "unsafe -n 2": ("unsafe", ["-n", "2", "--dist", "loadgroup"]),
}


def write_suites(root: Path, *, tests: int, sleep: float) -> None:
    """The sample suite twice: with ``concurrent_safe`` (folder safe) and without."""
    for folder, marker in (("safe", "@pytest.mark.concurrent_safe\n"), ("unsafe", "")):
        suite = root / folder
        suite.mkdir()
        (suite / "pytest.ini").write_text(INI)
        (suite / "test_parallel.py").write_text(
            SUITE.format(marker=marker, tests=tests, sleep=sleep)
        )


def run_once(root: Path, name: str, tests: int) -> float:
    """One pytest run in a subprocess; its wall time in seconds."""
    folder, args = RUNS[name]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=root / folder,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or f"{tests} passed" not in done.stdout:
        tail = "\n".join(done.stdout.splitlines()[-15:])
        raise SystemExit(f"{name}: pytest exited {done.returncode}:\n{tail}\n{done.stderr[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=40, help="tests in the suite (40)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (2)")
    parser.add_argument("--sleep", type=float, default=0.25, help="await per test, s (0.25)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    options = parser.parse_args(argv)

    names = list(RUNS)
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="ws-parallel-") as tmp:
        root = Path(tmp)
        write_suites(root, tests=options.tests, sleep=options.sleep)
        for n in range(options.rounds):
            for k in range(len(names)):
                name = names[(n + k) % len(names)]
                times[name].append(run_once(root, name, options.tests))

    wall = {name: statistics.median(values) for name, values in times.items()}
    speed_up = wall["safe -n 0"] / wall["safe -n 2"]
    serial_ratio = wall["unsafe -n 2"] / wall["safe -n 0"]
    lines = [
        f"{options.tests} I/O-bound connection tests ({options.sleep} s await each), "
        f"{options.rounds} interleaved rounds; median wall time of a pytest run:",
        f"  concurrent_safe,     -n 2 --dist loadgroup: {wall['safe -n 2']:6.2f} s",
        f"  concurrent_safe,     -n 0:                  {wall['safe -n 0']:6.2f} s",
        f"  not concurrent_safe, -n 2 --dist loadgroup: {wall['unsafe -n 2']:6.2f} s (serialized)",
        f"speed-up of concurrent_safe under -n 2 over -n 0: {speed_up:.2f}x "
        f"(target >= {SPEED_UP_TARGET}x; worker start-up is part of the wall time)",
        f"serialized -n 2 / -n 0: {serial_ratio:.2f}x (about 1: no parallelism, plus "
        f"worker start-up)",
    ]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines.append(f"machine: {os.cpu_count()} cores, load average {load} (1, 5, 15 min)")
    print("\n".join(lines))
    if options.strict and speed_up < SPEED_UP_TARGET:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
