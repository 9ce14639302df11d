"""What the plugin costs a whole pytest run: a suite of ``ws_client`` tests against the same
suite written with raw ``websockets``, as ratios measured in one run.

Usage: ``python benchmarks/suite_overhead.py [--tests N] [--rounds R] [--breakdown]
[--strict]``

The suite is what most tests of a WebSocket service look like: N tests that each open an
authenticated client, send an application ping, expect the pong and close. Two
generated projects run it, each in its own ``pytest`` subprocess:

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

Targets (issue 16): test phase <= 1.15x raw; ``--co`` start-up difference <= 0.1 s.
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
from dataclasses import dataclass
from pathlib import Path

from reference_process import server_process

__all__ = ["main"]

TEST_RATIO_TARGET = 1.15
STARTUP_TARGET_S = 0.1
RUN_TIMEOUT_S = 300.0
SECRET_ENV = "WS_SUITE_BENCH_SECRET"

# The test-phase clock, loaded by both sides (``-p suite_clock``). With
# ``SUITE_CALLS_FILE`` set (``--breakdown``) it also counts the Python calls of the steady
# tests with cProfile, in a run of their own: the profiler slows the run it is in.
CLOCK_PLUGIN = """
import os, time

import pytest

_first_done = []
_calls_file = os.environ.get("SUITE_CALLS_FILE")
if _calls_file:
    import cProfile, pstats

    _profile = cProfile.Profile()


_durations = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        if not _first_done:  # the first test carries the run's one-off costs
            _first_done.append((time.perf_counter(), time.process_time()))
            if _calls_file:
                _profile.enable()
        else:
            _first_done.append(None)
            _durations.append(time.perf_counter() - started)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    started, cpu = time.perf_counter(), time.process_time()
    try:
        return (yield)
    finally:
        now, now_cpu = time.perf_counter(), time.process_time()
        first, first_cpu = _first_done[0] if _first_done else (started, cpu)
        with open(os.environ["SUITE_CLOCK_FILE"], "w") as out:
            times = (now - started, now_cpu - cpu, now - first, now_cpu - first_cpu)
            median = sorted(_durations)[len(_durations) // 2] if _durations else 0.0
            out.write(" ".join(repr(t) for t in (*times, median)))
        if _calls_file:
            _profile.disable()
            calls = sum(row[1] for row in pstats.Stats(_profile).stats.values())
            with open(_calls_file, "w") as out:
                out.write(f"{calls} {max(len(_first_done) - 1, 1)}")
"""

# The stack sampler of ``--breakdown`` (``-p suite_sampler``): counts per part.
SAMPLER_PLUGIN = """
import json, os, sys, threading, time

import pytest

OURS, LIBRARIES = json.loads(os.environ["SUITE_SAMPLER_PARTS"])


def part_of(frame, parts):
    while frame is not None:
        name = frame.f_code.co_filename
        for part, fragments in parts:
            if any(fragment in name for fragment in fragments):
                return part
        frame = frame.f_back
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    main = threading.main_thread().ident
    counts = {}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.0005):
            frame = sys._current_frames().get(main)
            if frame is None:
                continue
            code = frame.f_code
            if code.co_name in ("select", "poll") and "selectors" in code.co_filename:
                part = "waiting"
            else:
                part = part_of(frame, OURS) or part_of(frame, LIBRARIES) or "other"
            counts[part] = counts.get(part, 0) + 1

    sys.setswitchinterval(0.0002)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        return (yield)
    finally:
        stop.set()
        thread.join(5)
        with open(os.environ["SUITE_SAMPLER_FILE"], "w") as out:
            json.dump(counts, out)
"""

PLUGIN_TEST = """
import pytest


@pytest.mark.asyncio
async def test_ping_{n}(ws_client):
    await ws_client.send_json({{"type": "ping"}})
    await ws_client.expect(type="pong")
"""

RAW_CONFTEST = """
import os
import time
import uuid

import jwt
import pytest

SECRET = os.environ["{secret_env}"]
URL = os.environ["SUITE_SERVER_URL"]


@pytest.fixture
def raw_token():
    now = int(time.time())
    claims = {{"sub": f"user-{{uuid.uuid4().hex[:12]}}", "iat": now, "exp": now + 300}}
    return jwt.encode(claims, SECRET, algorithm="HS256")
"""

RAW_TEST = """
import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from conftest import URL


@pytest.mark.asyncio
async def test_ping_{n}(raw_token):
    offer = [Subprotocol("jwt-auth"), Subprotocol("jwt." + raw_token)]
    async with connect(URL, subprotocols=offer, proxy=None, open_timeout=10) as ws:
        await ws.send(json.dumps({{"type": "ping"}}))
        async with asyncio.timeout(10):
            while json.loads(await ws.recv()).get("type") != "pong":
                pass
"""

# The same raw test with its connection in an async fixture, as many raw suites write it:
# what pytest-asyncio's fixture costs, apart from the plugin.
RAW_FIXTURE_CONFTEST = """
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from conftest_token import URL, raw_token  # noqa: F401


@pytest_asyncio.fixture
async def raw_ws(raw_token):
    offer = [Subprotocol("jwt-auth"), Subprotocol("jwt." + raw_token)]
    async with connect(URL, subprotocols=offer, proxy=None, open_timeout=10) as ws:
        yield ws
"""

# The floor of ws_client's design: a plain synchronous fixture in the test's loop (taken
# from pytest-asyncio's runner fixture, as ws_client takes it), which connects at setup
# and closes at teardown, each with run_until_complete.
RAW_SYNC_CONFTEST = """
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from conftest_token import URL, raw_token  # noqa: F401


@pytest.fixture
def raw_ws(raw_token, _function_scoped_runner):
    loop = _function_scoped_runner.get_loop()
    offer = [Subprotocol("jwt-auth"), Subprotocol("jwt." + raw_token)]
    ws = loop.run_until_complete(connect(URL, subprotocols=offer, proxy=None, open_timeout=10))
    try:
        yield ws
    finally:
        loop.run_until_complete(ws.close())
"""

RAW_FIXTURE_TEST = """
import asyncio
import json

import pytest


@pytest.mark.asyncio
async def test_ping_{n}(raw_ws):
    await raw_ws.send(json.dumps({{"type": "ping"}}))
    async with asyncio.timeout(10):
        while json.loads(await raw_ws.recv()).get("type") != "pong":
            pass
"""

PYPROJECT = """
[tool.pytest.ini_options]
asyncio_mode = "strict"
asyncio_default_fixture_loop_scope = "function"
asyncio_default_test_loop_scope = "function"
{extra}
"""

PLUGIN_ENV = """
[tool.ws_resilience.envs.bench]
url = "{url}"
jwt_secret_env = "{secret_env}"
"""

# Where the plugin side's time goes: (part, path fragments of the modules that do it).
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("token minting", ("client/tokens.py", "/jwt/")),
    ("settings", ("pytest_ws_resilience/config/",)),
    ("observers", ("client/observers.py",)),
    ("isolation watch", ("plugin/watch.py", "pytest_ws_resilience/isolation/")),
    ("event log", ("client/eventlog.py",)),
    ("report records", ("pytest_ws_resilience/report/", "plugin/report.py")),
    ("metrics", ("client/metrics.py", "pytest_ws_resilience/stats.py")),
    ("connect", ("client/handshake.py", "client/auth_methods.py", "client/fallback.py")),
    ("close and teardown", ("client/closing.py", "client/ending.py", "client/close_cause.py")),
    ("send and expect", ("pytest_ws_resilience/client/",)),
    ("other plugin glue", ("pytest_ws_resilience/",)),
]
# With no frame of ours on the stack: the libraries both sides use.
LIBRARY_PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("websockets (no frame of ours)", ("/websockets/",)),
    ("pyjwt (no frame of ours)", ("/jwt/",)),
    ("pytest-asyncio", ("/pytest_asyncio/",)),
    ("asyncio loop", ("/asyncio/",)),
    ("pytest", ("/_pytest/", "/pluggy/")),
]


def write_projects(root: Path, url: str, tests: int) -> dict[str, Path]:
    """The generated projects by side name (plugin, raw, raw with an async fixture, raw
    with a sync fixture), N tests each, one file per 20 tests."""
    projects = {
        "ws_client": root / "plugin",
        "raw": root / "raw",
        "raw, async fixture": root / "raw_fixture",
        "raw, sync fixture": root / "raw_sync",
    }
    for project in projects.values():
        project.mkdir()
        (project / "suite_clock.py").write_text(CLOCK_PLUGIN)
        extra = PLUGIN_ENV.format(url=url, secret_env=SECRET_ENV)
        extra = extra if project.name == "plugin" else ""
        (project / "pyproject.toml").write_text(PYPROJECT.format(extra=extra))
    token = RAW_CONFTEST.format(secret_env=SECRET_ENV)
    (projects["raw"] / "conftest.py").write_text(token)
    fixtures = {"raw, async fixture": RAW_FIXTURE_CONFTEST, "raw, sync fixture": RAW_SYNC_CONFTEST}
    for name, conftest in fixtures.items():
        (projects[name] / "conftest_token.py").write_text(token)
        (projects[name] / "conftest.py").write_text(conftest)
    tests_of = {
        "ws_client": PLUGIN_TEST,
        "raw": RAW_TEST,
        "raw, async fixture": RAW_FIXTURE_TEST,
        "raw, sync fixture": RAW_FIXTURE_TEST,
    }
    for first in range(0, tests, 20):
        numbers = range(first, min(first + 20, tests))
        file_name = f"test_ping_{first // 20:03d}.py"
        for name, template in tests_of.items():
            text = "".join(template.format(n=n) for n in numbers)
            (projects[name] / file_name).write_text(text)
    return projects


@dataclass(frozen=True)
class Side:
    """One way of running the suite: its project, command and extra import path."""

    name: str
    project: Path
    plugin: bool
    #: A checkout of the package to import instead of the installed one (``--before``).
    path: str | None = None

    def command(self, *, collect_only: bool = False) -> list[str]:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "suite_clock"]
        command += ["-p", "no:cacheprovider", "-p", "no:randomly"]
        command += ["-c", str(self.project / "pyproject.toml"), str(self.project)]
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
    paths = [p for p in (side.path, str(side.project)) if p]
    command = [*side.command(collect_only=collect_only), *extra]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=side.project,
        env={**env, "SUITE_CLOCK_FILE": str(clock), "PYTHONPATH": os.pathsep.join(paths)},
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
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.tests < 1 or args.rounds < 1:
        parser.error("--tests and --rounds must be at least 1")
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
            missed = not (ok_test and ok_startup)
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
