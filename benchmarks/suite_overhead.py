"""What the plugin costs a whole pytest run: a suite of ``ws_client`` tests against the same
suite written with raw ``websockets``, as ratios measured in one run.

Usage: ``python benchmarks/suite_overhead.py [--tests N] [--rounds R] [--breakdown]
[--instructions] [--before DIR] [--strict]``

The suite is what most tests of a WebSocket service look like: N tests that each open an
authenticated client, send an application ping, expect the pong and close. Generated
projects (``benchmarks/suite_projects.py``) run it, each in its own ``pytest``
subprocess:

- plugin: ``async def test(ws_client)``, ``-p ws_resilience --ws-env=bench`` (an env of the
  project's ``pyproject.toml`` naming the server's URL and the variable holding its secret);
- raw: the same test with ``websockets.connect`` offering the same subprotocols and a
  token minted per test with pyjwt, in a run with ``-p no:ws_resilience``;
- raw, async fixture: the same, with the connection opened and closed by an async
  ``pytest_asyncio`` fixture, as many raw suites write it (pytest-asyncio runs a
  fixture's setup and its teardown each in a runner turn of their own);
- raw, sync fixture: the same, with the connection opened and closed by a plain
  synchronous fixture in the test's loop (pytest-asyncio's runner fixture is its
  argument; ``run_until_complete``), as ``ws_client`` does it: the floor of any fixture
  that hands a test a connected client and closes it after.

Both point at one reference server in its own process (``python -m
pytest_ws_resilience.testing``), so its CPU is not shared with the side measured. Rounds
alternate which side goes first. Per run it takes the wall time of the process and the
test phase (``pytest_runtestloop``, timed by a small plugin both sides load); the ratios
are medians over rounds of plugin / raw (the fastest round of each side against the
other's is printed beside them, and the ratio of the median steady test of each run,
which a burst of load on a few of the tests does not move). Start-up is ``pytest --co
-q`` of the same projects, interleaved the same way: the difference (plugin - raw) is
what every pytest process, and every xdist worker, pays before its first test.

``--breakdown`` also counts each side's Python function calls per test (cProfile, from
the second test on): a figure the machine's load does not move. And it runs the plugin
side once more with a stack sampler (a thread that looks
at the main thread's stack every 0.5 ms during the test phase) and splits the test phase
by where it is spent: each sample goes to the innermost frame of the package that is on
the stack (token minting, settings, observers, the isolation watch, event log, report
records, metrics, connect, send and expect, close and teardown, other plugin glue), or
to "waiting" (the loop blocked in select: the server's and the kernel's time) or
"outside" (pytest, pytest-asyncio, with no frame of ours). The sampler costs a little
of its own, so read the parts against each other and the measured per-test overhead.

``--instructions`` also counts each side's work per test with valgrind's cachegrind
(`instructions`): the run of all N tests less the run of the first 40, divided by the
difference, in instructions and in cachegrind's estimate of cycles (its cache model
charges code that runs cold), and the same for a suite of plain ``assert True`` tests
with the plugin loaded and without: what the plugin costs a test that uses none of it.
Time on a shared machine moves with the load; these counts do not.

Targets (issue 16): test phase <= 1.15x raw (and, counted, estimated cycles <= 1.15x raw);
``--co`` start-up difference <= 0.1 s.
Prints medians, ratios and PASS/FAIL; exits 0 unless ``--strict`` and a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from instructions import Counts, count, valgrind
from reference_process import server_process
from suite_projects import (
    LIBRARY_PARTS,
    PARTS,
    PLAIN_SIDES,
    SAMPLER_PLUGIN,
    SECRET_ENV,
    TESTS_PER_FILE,
    write_plain_projects,
    write_projects,
)

__all__ = ["main"]

TEST_RATIO_TARGET = 1.15
STARTUP_TARGET_S = 0.1
RUN_TIMEOUT_S = 300.0
#: The tests of the run ``--instructions`` subtracts (the first two files).
COUNT_BASE = 2 * TESTS_PER_FILE


@dataclass(frozen=True)
class Side:
    """One way of running the suite: its project, command and extra import path."""

    name: str
    project: Path
    plugin: bool
    #: A checkout of the package to import instead of the installed one (``--before``).
    path: str | None = None

    def command(self, *, collect_only: bool = False, files: Sequence[str] = ()) -> list[str]:
        """The pytest command line: the whole project, or only ``files`` of it."""
        command = [sys.executable, "-m", "pytest", "-q", "-p", "suite_clock"]
        command += ["-p", "no:cacheprovider", "-p", "no:randomly"]
        command += ["-c", str(self.project / "pyproject.toml")]
        command += [str(self.project / f) for f in files] if files else [str(self.project)]
        if self.plugin:
            command += ["-p", "ws_resilience", "--ws-env=bench"]
        else:
            command += ["-p", "no:ws_resilience"]
        if collect_only:
            command.append("--co")
        return command


@dataclass(frozen=True)
class Run:
    """One pytest run: wall time of the process; the test phase, wall and CPU; and the
    same after the first test (steady: without the run's one-off costs, such as the
    imports a fixture makes when it first runs, or the session fixtures)."""

    wall: float
    phase: float
    phase_cpu: float
    steady: float = 0.0
    steady_cpu: float = 0.0
    #: The median steady test's wall time (a burst of load on a few tests moves the
    #: sum, not the median).
    median_test: float = 0.0


def run_pytest(
    side: Side, env: dict[str, str], *, collect_only: bool = False, extra: Sequence[str] = ()
) -> Run:
    """One pytest run of ``side``; any failure ends the benchmark."""
    clock = side.project / "clock.txt"
    clock.unlink(missing_ok=True)
    command = [*side.command(collect_only=collect_only), *extra]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=side.project,
        env=_side_env(side, env, clock),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"pytest exited {done.returncode}: {' '.join(command)}\n{done.stdout[-3000:]}"
        )
    if not clock.exists():  # --co: no test phase
        return Run(wall, 0.0, 0.0)
    phase, cpu, steady, steady_cpu, median_test = (float(x) for x in clock.read_text().split())
    return Run(wall, phase, cpu, steady, steady_cpu, median_test)


def _side_env(side: Side, env: dict[str, str], clock: Path) -> dict[str, str]:
    """The environment of a run of ``side``: its clock file, and the checkout it imports
    the package from (``--before``) ahead of the project."""
    paths = [p for p in (side.path, str(side.project)) if p]
    return {**env, "SUITE_CLOCK_FILE": str(clock), "PYTHONPATH": os.pathsep.join(paths)}


def counted_per_test(side: Side, env: dict[str, str], tests: int) -> Counts:
    """``side``'s work per test, counted by cachegrind: the run of every test less the
    run of the first two files (`COUNT_BASE` tests), over the tests between. The one-off
    costs of a run (start-up, the first tests' imports and caches) are in both and
    cancel; a long difference also spreads the collector's full passes evenly."""
    files = sorted(p.name for p in side.project.glob("test_ping_*.py"))
    clock = side.project / f"clock-counted-{os.getpid()}-{side.name.replace(' ', '_')}.txt"
    # One hash seed: set and dict orders, and so the paths taken, the same in both runs.
    run_env = {**_side_env(side, env, clock), "PYTHONHASHSEED": "0"}
    base = files[: COUNT_BASE // TESTS_PER_FILE]
    first = count(side.command(files=base), cwd=side.project, env=run_env, timeout=3600)
    every = count(side.command(), cwd=side.project, env=run_env, timeout=3600)
    return (every - first).per(tests - COUNT_BASE)


def print_counted(counted: dict[str, Counts], tests: int) -> bool:
    """The counted table and the ratio to raw, and what the plugin costs a plain test;
    whether ws_client meets the target."""
    counted = dict(counted)
    loaded, plain = counted.pop("plain, plugin loaded"), counted.pop("plain")
    raw = counted["raw"]
    print(
        f"work per test, counted by cachegrind ({tests - COUNT_BASE} tests: all {tests} "
        f"less the first {COUNT_BASE}; the machine's load does not move it):"
    )
    header = ("side", "instructions", "est. cycles", "instr/raw", "cycles/raw")
    print("  {:<20} {:>13} {:>13} {:>10} {:>10}".format(*header))
    for name, c in counted.items():
        print(
            f"  {name:<20} {c.instructions:13,.0f} {c.estimated_cycles:13,.0f} "
            f"{c.instructions / raw.instructions:9.3f}x "
            f"{c.estimated_cycles / raw.estimated_cycles:9.3f}x"
        )
    ours = counted["ws_client"].estimated_cycles / raw.estimated_cycles
    ok = ours <= TEST_RATIO_TARGET
    print(
        f"ws_client / raw, counted: estimated cycles {ours:.3f}x "
        f"(target <= {TEST_RATIO_TARGET}x) {'PASS' if ok else 'FAIL'}"
    )
    # What loading the plugin costs a test that uses none of it (``assert True``).
    extra = loaded - plain
    print(
        f"the plugin on a test that uses none of it: {extra.instructions:+,.0f} instructions "
        f"per test ({loaded.estimated_cycles / plain.estimated_cycles:.3f}x estimated "
        f"cycles of {plain.instructions:,.0f} instructions)"
    )
    return ok


def interleaved(
    sides: Sequence[Side], rounds: int, env: dict[str, str], *, collect_only: bool = False
) -> dict[str, list[Run]]:
    """Every side ``rounds`` times; each round starts with the next side (rotation)."""
    runs: dict[str, list[Run]] = {side.name: [] for side in sides}
    for n in range(rounds):
        for k in range(len(sides)):
            side = sides[(n + k) % len(sides)]
            runs[side.name].append(run_pytest(side, env, collect_only=collect_only))
    return runs


def sample_side(side: Side, env: dict[str, str]) -> dict[str, float]:
    """Per part, seconds of the test phase: its share of the samples times the phase."""
    (side.project / "suite_sampler.py").write_text(SAMPLER_PLUGIN)
    out = side.project / "samples.json"
    parts = json.dumps([PARTS, LIBRARY_PARTS])
    sampled = {**env, "SUITE_SAMPLER_FILE": str(out), "SUITE_SAMPLER_PARTS": parts}
    phase = run_pytest(side, sampled, extra=["-p", "suite_sampler"]).phase
    counts: dict[str, int] = json.loads(out.read_text())
    total = sum(counts.values())
    if total == 0:
        raise SystemExit("the sampler took no sample: no breakdown")
    return {part: n / total * phase for part, n in counts.items()}


def calls_per_test(side: Side, env: dict[str, str]) -> float:
    """Python function calls per test of ``side`` (steady: from the second test on),
    counted by cProfile. Unlike time, a count does not move with the machine's load: it
    tells a change that removes work from noise that hides it."""
    out = side.project / "calls.txt"
    run_pytest(side, {**env, "SUITE_CALLS_FILE": str(out)})
    calls, tests = (int(x) for x in out.read_text().split())
    return calls / tests


def print_breakdown(ours: dict[str, float], theirs: dict[str, float], tests: int) -> None:
    print("where a test's time goes (sampled, us per test): ws_client, raw, difference")
    names = [p for p, _ in PARTS] + [p for p, _ in LIBRARY_PARTS] + ["other", "waiting"]
    for name in names:
        a, b = ours.get(name, 0.0) / tests * 1e6, theirs.get(name, 0.0) / tests * 1e6
        if a or b:
            print(f"  {name:<30} {a:8.0f} {b:8.0f} {a - b:+8.0f}")
    a, b = sum(ours.values()) / tests * 1e6, sum(theirs.values()) / tests * 1e6
    print(f"  {'total (sampled run)':<30} {a:8.0f} {b:8.0f} {a - b:+8.0f}")


def _ratio(runs: dict[str, list[Run]], a: str, b: str, field: str) -> float:
    """The median over rounds of side a / side b (same round: same machine state)."""
    pairs = zip(runs[a], runs[b], strict=True)
    return float(statistics.median(getattr(x, field) / getattr(y, field) for x, y in pairs))


def _fastest_ratio(runs: dict[str, list[Run]], a: str, b: str, field: str) -> float:
    """Side a's fastest round / side b's fastest round: on a shared machine load only
    ever adds time, so the fastest rounds are the least disturbed (as ``timeit`` reads
    its repeats). Printed beside the median, which decides."""
    fastest_a = min(float(getattr(x, field)) for x in runs[a])
    return fastest_a / min(float(getattr(y, field)) for y in runs[b])


def _difference(runs: dict[str, list[Run]], a: str, b: str, field: str) -> float:
    pairs = zip(runs[a], runs[b], strict=True)
    return float(statistics.median(getattr(x, field) - getattr(y, field) for x, y in pairs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=200, help="tests per suite (200)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side (5)")
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also run the plugin side importing the package from DIR (a checkout of an "
        "earlier commit): before and after in one run",
    )
    parser.add_argument("--breakdown", action="store_true", help="sample where time goes")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each side's work per test with cachegrind (needs valgrind)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.tests < 1 or args.rounds < 1:
        parser.error("--tests and --rounds must be at least 1")
    if args.instructions and valgrind() is None:
        parser.error("--instructions needs valgrind on PATH (apt install valgrind)")
    if args.instructions and args.tests < 2 * COUNT_BASE:
        parser.error(f"--instructions needs --tests {2 * COUNT_BASE} or more")
    if args.before and not (Path(args.before) / "pytest_ws_resilience").is_dir():
        parser.error(f"--before {args.before}: no pytest_ws_resilience package there")

    secret = secrets.token_urlsafe(32)
    with server_process(SECRET_ENV, secret) as url, tempfile.TemporaryDirectory() as tmp:
        projects = write_projects(Path(tmp), url, args.tests)
        env = {**os.environ, SECRET_ENV: secret, "SUITE_SERVER_URL": url}
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode, as users have it
        sides = [Side(name, project, name == "ws_client") for name, project in projects.items()]
        if args.before:
            before = Side("ws_client before", projects["ws_client"], True, str(Path(args.before)))
            sides.append(before)
        for side in sides:  # warm caches (bytecode, page cache)
            run_pytest(side, env)
        runs = interleaved(sides, args.rounds, env)
        collect = interleaved(sides, args.rounds, env, collect_only=True)
        sampled = (
            (sample_side(sides[0], env), sample_side(sides[1], env)) if args.breakdown else None
        )
        calls = {side.name: calls_per_test(side, env) for side in sides} if args.breakdown else {}
        counted: dict[str, Counts] = {}
        if args.instructions:  # two at a time: a count does not move with the load
            plain = write_plain_projects(Path(tmp), url, args.tests)
            plain_sides = [Side(name, plain[name], PLAIN_SIDES[name]) for name in plain]
            with ThreadPoolExecutor(max_workers=2) as pool:
                jobs = {
                    s.name: pool.submit(counted_per_test, s, env, args.tests)
                    for s in [*sides, *plain_sides]
                }
                counted = {name: job.result() for name, job in jobs.items()}

    print(f"{args.tests} tests x {args.rounds} rounds per side, interleaved; server {url}")
    header = ("side", "test phase", "CPU", "steady", "steady CPU", "wall", "--co wall")
    print("{:<18} {:>10} {:>8} {:>8} {:>10} {:>8} {:>9}".format(*header))
    for side in sides:
        r, c = runs[side.name], collect[side.name]
        cells = [
            statistics.median([getattr(x, f) for x in r])
            for f in ("phase", "phase_cpu", "steady", "steady_cpu", "wall")
        ]
        cells.append(statistics.median([x.wall for x in c]))
        widths = (10, 8, 8, 10, 8, 9)
        print(
            f"{side.name:<18} "
            + " ".join(f"{v:{w - 1}.3f}s" for v, w in zip(cells, widths, strict=True))
        )
    if sampled is not None:
        print_breakdown(*sampled, args.tests)
    if calls:
        raw_calls = calls["raw"]
        print("Python calls per test (cProfile, steady):")
        for name, count in calls.items():
            print(f"  {name:<18} {count:8.0f}  {count / raw_calls:.3f}x raw")
    missed = False
    if counted:
        missed = not print_counted(counted, args.tests)
    for name in [s.name for s in sides if s.plugin]:
        steady = _ratio(runs, name, "raw", "steady")
        steady_cpu = _ratio(runs, name, "raw", "steady_cpu")
        phase = _ratio(runs, name, "raw", "phase")
        wall = _ratio(runs, name, "raw", "wall")
        startup = _difference(collect, name, "raw", "wall")
        per_test = _difference(runs, name, "raw", "steady") / max(args.tests - 1, 1) * 1e6
        ok_test, ok_startup = steady <= TEST_RATIO_TARGET, startup <= STARTUP_TARGET_S
        print(f"{name} / raw:")
        print(
            f"  per test {steady:.3f}x (target <= {TEST_RATIO_TARGET}x) "
            f"{'PASS' if ok_test else 'FAIL'}; CPU {steady_cpu:.3f}x; {per_test:+.0f} us per test"
        )
        fastest = _fastest_ratio(runs, name, "raw", "steady")
        fastest_cpu = _fastest_ratio(runs, name, "raw", "steady_cpu")
        print(f"  per test, fastest rounds {fastest:.3f}x (CPU {fastest_cpu:.3f}x)")
        median_test = _ratio(runs, name, "raw", "median_test")
        print(f"  median test {median_test:.3f}x (each run's median test, then the median)")
        print(f"  whole test phase {phase:.3f}x (first test included); process wall {wall:.3f}x")
        print(
            f"  pytest --co start-up {startup:+.3f} s (target <= +{STARTUP_TARGET_S} s) "
            f"{'PASS' if ok_startup else 'FAIL'}"
        )
        if name == "ws_client":
            missed = missed or not (ok_test and ok_startup)
    # What a connection made in a fixture costs by itself, and ours beyond it.
    for fixture in ("raw, async fixture", "raw, sync fixture"):
        fixture_cost = _ratio(runs, fixture, "raw", "steady")
        fixture_cpu = _ratio(runs, fixture, "raw", "steady_cpu")
        ours = _ratio(runs, "ws_client", fixture, "steady")
        ours_cpu = _ratio(runs, "ws_client", fixture, "steady_cpu")
        fastest = _fastest_ratio(runs, fixture, "raw", "steady")
        ours_fastest = _fastest_ratio(runs, "ws_client", fixture, "steady")
        print(
            f"{fixture} / raw: per test {fixture_cost:.3f}x (CPU {fixture_cpu:.3f}x, "
            f"fastest rounds {fastest:.3f}x); ws_client / {fixture}: {ours:.3f}x "
            f"(CPU {ours_cpu:.3f}x, fastest rounds {ours_fastest:.3f}x)"
        )
    if args.before:
        gain = _ratio(runs, "ws_client", "ws_client before", "steady")
        gain_cpu = _ratio(runs, "ws_client", "ws_client before", "steady_cpu")
        gain_fastest = _fastest_ratio(runs, "ws_client", "ws_client before", "steady")
        gain_median = _ratio(runs, "ws_client", "ws_client before", "median_test")
        print(
            f"ws_client / ws_client before: per test {gain:.3f}x (CPU {gain_cpu:.3f}x, "
            f"fastest rounds {gain_fastest:.3f}x, median test {gain_median:.3f}x)"
        )
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
