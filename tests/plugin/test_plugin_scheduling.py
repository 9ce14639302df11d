"""concurrent_safe scheduling under pytest-xdist, through real pytest runs.

Each inner test does real WebSocket round trips to the embedded reference server with a
short sleep between them, and records its interval (wall clock, from before its fixtures
are set up to after they are torn down) and its worker in a file. The outer test then
checks the intervals: unsafe connection tests never overlap; concurrent_safe ones do.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

XDIST = ("-p", "ws_resilience")


@pytest.fixture
def xdist_pytester(ws_pytester: pytest.Pytester) -> pytest.Pytester:
    """``ws_pytester`` for runs that need pytest-xdist; skips where it is not installed
    (the tox env ``noxdist``), which is then what the remaining tests check."""
    pytest.importorskip("xdist")
    return ws_pytester


# The recorder: autouse, so it is set up before (and torn down after) every other
# fixture of the test, ws_client included.
CONFTEST = """
import json
import os
import time
from pathlib import Path

import pytest

OUT = Path({out!r})


@pytest.fixture(autouse=True)
def _interval(request):
    start = time.time()
    yield
    record = {{
        "test": request.node.name,
        "safe": request.node.get_closest_marker("concurrent_safe") is not None,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "start": start,
        "end": time.time(),
    }}
    (OUT / (request.node.name + ".json")).write_text(json.dumps(record))
"""

IO = """
import asyncio

import pytest


async def round_trips(client):
    await client.send_json({"type": "ping"})
    await client.expect(type="pong")
    await asyncio.sleep(0.2)
    await client.send_json({"type": "ping"})
    await client.expect(type="pong")
"""

UNSAFE = """

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(8))
async def test_unsafe(ws_client, n):
    await round_trips(ws_client)
"""

SAFE = """

@pytest.mark.asyncio
@pytest.mark.concurrent_safe
@pytest.mark.parametrize("n", range(8))
async def test_safe(ws_client, n):
    await round_trips(ws_client)
"""


def make_suite(pytester: pytest.Pytester, *, unsafe: bool, safe: bool) -> Path:
    """Write the suite; return the folder its tests record their intervals in."""
    out = pytester.path / "intervals"
    out.mkdir()
    pytester.makeconftest(CONFTEST.format(out=str(out)))
    pytester.makepyfile(test_suite=IO + (UNSAFE if unsafe else "") + (SAFE if safe else ""))
    return out


def intervals(out: Path, *, safe: bool) -> list[dict[str, object]]:
    records = [json.loads(path.read_text()) for path in out.glob("*.json")]
    return sorted((r for r in records if r["safe"] is safe), key=lambda r: float(r["start"]))


def overlapping_pairs(records: list[dict[str, object]]) -> list[tuple[str, str]]:
    return [
        (str(a["test"]), str(b["test"]))
        for a, b in itertools.combinations(records, 2)
        if float(a["start"]) < float(b["end"]) and float(b["start"]) < float(a["end"])
    ]


def warning_count(stdout: str) -> int:
    return stdout.count("WsSchedulingWarning:")


def test_unsafe_connection_tests_never_overlap_under_loadgroup(xdist_pytester):
    out = make_suite(xdist_pytester, unsafe=True, safe=True)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=16)
    unsafe, safe = intervals(out, safe=False), intervals(out, safe=True)
    assert len(unsafe) == 8
    assert len(safe) == 8
    assert overlapping_pairs(unsafe) == []
    assert len({r["worker"] for r in unsafe}) == 1  # the whole group on one worker
    # ... while the other worker ran concurrent_safe tests at the same time.
    assert overlapping_pairs(unsafe + safe), "nothing ran in parallel with the serial group"
    result.stdout.fnmatch_lines(
        [
            "ws-resilience scheduling: --dist loadgroup: connection tests without "
            "concurrent_safe run one at a time (xdist_group ws_resilience_serial)*",
            "*PASSED test_suite.py::test_unsafe[[]0[]]@ws_resilience_serial*",
            "ws-resilience scheduling: 8 connection tests serialized (xdist_group "
            "ws_resilience_serial), 8 concurrent_safe spread over 2 workers",
        ]
    )
    assert warning_count(result.stdout.str()) == 0


def test_concurrent_safe_tests_overlap_on_both_workers(xdist_pytester):
    out = make_suite(xdist_pytester, unsafe=False, safe=True)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=8)
    safe = intervals(out, safe=True)
    assert len(safe) == 8
    assert {r["worker"] for r in safe} == {"gw0", "gw1"}
    assert overlapping_pairs(safe), "concurrent_safe tests never ran at the same time"


@pytest.mark.parametrize("dist", [["--dist", "load"], []], ids=["dist-load", "n-alone"])
def test_a_mode_that_ignores_groups_is_warned_once(xdist_pytester, dist):
    out = make_suite(xdist_pytester, unsafe=True, safe=False)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "2", *dist)
    result.assert_outcomes(passed=8, warnings=1)
    # The group was ignored: the unsafe tests went to both workers.
    assert {r["worker"] for r in intervals(out, safe=False)} == {"gw0", "gw1"}
    assert warning_count(result.stdout.str()) == 1
    result.stdout.fnmatch_lines(
        [
            "ws-resilience scheduling: --dist load sends any test to any free worker*"
            "NOT serialized (use --dist loadgroup)",
            "*WsSchedulingWarning: --dist load sends any test to any free worker and "
            "ignores xdist_group (it is what -n alone means), so 8 tests using WebSocket "
            "connections without @pytest.mark.concurrent_safe may run at the same time*"
            '--dist loadgroup (addopts = "-n auto --dist loadgroup"*',
        ]
    )


@pytest.mark.parametrize("dist", ["worksteal", "loadscope", "loadfile"])
def test_other_modes_that_ignore_groups_are_warned(xdist_pytester, dist):
    make_suite(xdist_pytester, unsafe=True, safe=False)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "2", "--dist", dist)
    result.assert_outcomes(passed=8, warnings=1)
    result.stdout.fnmatch_lines([f"*WsSchedulingWarning: --dist {dist} *--dist loadgroup*"])


def test_no_warning_when_every_connection_test_is_concurrent_safe(xdist_pytester):
    make_suite(xdist_pytester, unsafe=False, safe=True)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "2", "--dist", "load")
    result.assert_outcomes(passed=8)
    assert warning_count(result.stdout.str()) == 0


def test_deselected_unsafe_tests_do_not_trigger_the_warning(xdist_pytester):
    make_suite(xdist_pytester, unsafe=True, safe=True)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "2", "-k", "test_safe")
    result.assert_outcomes(passed=8)
    assert warning_count(result.stdout.str()) == 0


def test_the_warning_as_an_error_fails_the_run_with_one_line(xdist_pytester):
    make_suite(xdist_pytester, unsafe=True, safe=False)
    result = xdist_pytester.runpytest_subprocess(
        *XDIST,
        "-n",
        "2",
        "-W",
        "error::pytest_ws_resilience.errors.WsSchedulingWarning",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["ERROR: WsSchedulingWarning: --dist load sends any test*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_the_warning_can_be_filtered(xdist_pytester):
    make_suite(xdist_pytester, unsafe=True, safe=False)
    result = xdist_pytester.runpytest_subprocess(
        *XDIST,
        "-n",
        "2",
        "-W",
        "ignore::pytest_ws_resilience.errors.WsSchedulingWarning",
    )
    result.assert_outcomes(passed=8)
    assert warning_count(result.stdout.str()) == 0


USER_GROUPS = """
import pytest

from pytest_ws_resilience.plugin.xdist_groups import SERIAL_GROUP


def groups(request):
    return [m.args[0] for m in request.node.iter_markers("xdist_group")]


@pytest.mark.asyncio
@pytest.mark.xdist_group("db")
async def test_own_group(ws_client, request):
    assert groups(request) == ["db"]


@pytest.mark.asyncio
@pytest.mark.xdist_group("cache")
async def test_own_group_too(ws_client, request):
    assert groups(request) == ["cache"]


@pytest.mark.asyncio
async def test_serialized(ws_client, request):
    assert groups(request) == [SERIAL_GROUP]


@pytest.mark.asyncio
@pytest.mark.concurrent_safe
async def test_spread(ws_client, request):
    assert groups(request) == []


@pytest.mark.xdist_group("db")
def test_no_connection(request):
    assert groups(request) == ["db"]
"""


def test_a_user_group_on_an_unsafe_test_is_kept_and_warned_once(xdist_pytester):
    xdist_pytester.makepyfile(test_groups=USER_GROUPS)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=5, warnings=1)
    result.stdout.fnmatch_lines_random(
        [
            "*PASSED test_groups.py::test_own_group@db*",
            "*PASSED test_groups.py::test_own_group_too@cache*",
            "*PASSED test_groups.py::test_serialized@ws_resilience_serial*",
            "*PASSED test_groups.py::test_no_connection@db*",
            "*WsSchedulingWarning: Tests using WebSocket connections without "
            "@pytest.mark.concurrent_safe keep their own xdist_group*: "
            "test_groups.py::test_own_group (group 'db'), "
            "test_groups.py::test_own_group_too (group 'cache').*",
        ]
    )
    assert warning_count(result.stdout.str()) == 1


def test_groups_are_added_without_distribution(xdist_pytester):
    """xdist loaded, -n 0: same markers (so --collect-only shows the truth), no warning."""
    xdist_pytester.makepyfile(test_groups=USER_GROUPS)
    result = xdist_pytester.runpytest_subprocess(*XDIST, "-n", "0")
    result.assert_outcomes(passed=5)
    assert "ws-resilience scheduling" not in result.stdout.str()


WITHOUT_XDIST = """
import pytest


@pytest.mark.asyncio
async def test_unsafe(ws_client, request):
    assert request.node.get_closest_marker("xdist_group") is None
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")


@pytest.mark.asyncio
@pytest.mark.concurrent_safe
async def test_safe(ws_client):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
"""


def test_everything_works_without_xdist(ws_pytester):
    ws_pytester.makepyfile(test_plain=WITHOUT_XDIST)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", "-p", "no:xdist", "--strict-markers"
    )
    result.assert_outcomes(passed=2)
    assert "ws-resilience scheduling" not in result.stdout.str()
