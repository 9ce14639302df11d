"""The suites ``benchmarks/suite_overhead.py`` runs, written as projects: the same N
tests on ``ws_client`` and on raw ``websockets`` (in the body, in an async fixture, in
a synchronous fixture), the small plugins that time them, and the parts its stack
sampler splits the plugin's time into.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "LIBRARY_PARTS",
    "PARTS",
    "PLAIN_SIDES",
    "SAMPLER_PLUGIN",
    "SECRET_ENV",
    "TESTS_PER_FILE",
    "write_plain_projects",
    "write_projects",
]

#: The variable the server and both sides read the HS256 secret from.
SECRET_ENV = "WS_SUITE_BENCH_SECRET"
#: Tests per generated file (``--instructions`` subtracts whole files).
TESTS_PER_FILE = 20

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


# A test that uses nothing of the plugin, for what loading it costs such a test
# (``--instructions`` only: "plain" and "plain, plugin loaded").
PLAIN_TEST = """
def test_plain_{n}():
    assert True
"""

#: The sides of the plain suite, by name: whether the plugin is loaded.
PLAIN_SIDES = {"plain": False, "plain, plugin loaded": True}


def _new_project(project: Path, url: str, *, plugin: bool) -> None:
    """An empty project with the clock plugin, configured for ours when ``plugin``."""
    project.mkdir()
    (project / "suite_clock.py").write_text(CLOCK_PLUGIN)
    extra = PLUGIN_ENV.format(url=url, secret_env=SECRET_ENV) if plugin else ""
    (project / "pyproject.toml").write_text(PYPROJECT.format(extra=extra))


def _write_tests(project: Path, template: str, tests: int) -> None:
    """``tests`` tests from ``template``, `TESTS_PER_FILE` to a file, the files named in
    the order they run."""
    for first in range(0, tests, TESTS_PER_FILE):
        numbers = range(first, min(first + TESTS_PER_FILE, tests))
        text = "".join(template.format(n=n) for n in numbers)
        (project / f"test_ping_{first // TESTS_PER_FILE:03d}.py").write_text(text)


def write_plain_projects(root: Path, url: str, tests: int) -> dict[str, Path]:
    """Two projects of N plain tests, one configured for the plugin (its env), one not."""
    projects = {name: root / name.replace(", ", "_").replace(" ", "_") for name in PLAIN_SIDES}
    for name, project in projects.items():
        _new_project(project, url, plugin=PLAIN_SIDES[name])
        _write_tests(project, PLAIN_TEST, tests)
    return projects


def write_projects(root: Path, url: str, tests: int) -> dict[str, Path]:
    """The generated projects by side name (plugin, raw, raw with an async fixture, raw
    with a sync fixture), N tests each."""
    projects = {
        "ws_client": root / "plugin",
        "raw": root / "raw",
        "raw, async fixture": root / "raw_fixture",
        "raw, sync fixture": root / "raw_sync",
    }
    for name, project in projects.items():
        _new_project(project, url, plugin=name == "ws_client")
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
    for name, template in tests_of.items():
        _write_tests(projects[name], template, tests)
    return projects
