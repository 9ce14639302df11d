"""A worker killed in a test under ``-n 2 --dist loadgroup`` ends the run at once with
one line naming the worker, the test and its group, instead of pytest-xdist running the
crash again on replacement workers until the run looks hung. Real xdist runs, each
bounded by a subprocess timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pytest_ws_resilience.plugin.controller import lost_worker_message

pytest.importorskip("xdist")

#: Bound of the inner run: before the guard it ran the crash 9 times (minutes here).
_RUN_BOUND_S = 120.0

SUITE = """
import os, signal
import pytest

@pytest.mark.xdist_group("victims")
def test_before():
    pass

@pytest.mark.xdist_group("victims")
def test_killed():
    os.kill(os.getpid(), signal.SIGKILL)

@pytest.mark.xdist_group("victims")
def test_after():
    pass

def test_elsewhere():
    pass
"""


def test_a_worker_killed_in_a_grouped_test_stops_the_run_with_one_line(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(test_crash=SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "WS_"))}
    command = [sys.executable, "-m", "pytest", "-p", "ws_resilience", "-n", "2"]
    command += ["--dist", "loadgroup", "test_crash.py"]
    began = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=ws_pytester.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=_RUN_BOUND_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run did not end within {_RUN_BOUND_S:g} s", pytrace=False)
    took = time.monotonic() - began
    output = completed.stdout
    assert completed.returncode not in (0, 5), output
    lines = [line for line in output.splitlines() if "crashed" in line and "xdist_group" in line]
    assert lines, output
    assert any(
        line.startswith("ws-resilience: xdist worker gw")
        and "while running test_crash.py::test_killed of xdist_group 'victims'" in line
        and "under --dist loadgroup" in line
        for line in lines
    ), output
    # The crash ran once: no replacement worker ran it again.
    assert output.count("crashed while running 'test_crash.py::test_killed") <= 1, output
    assert "maximum crashed workers reached" not in output, f"{took:.1f} s\n{output}"


def test_the_line_names_the_worker_test_group_and_why() -> None:
    line = lost_worker_message(
        "gw3", "tests/test_a.py::test_b@db", "loadgroup", "Not properly\nterminated"
    )
    assert line == (
        "ws-resilience: xdist worker gw3 crashed (Not properly terminated) while running "
        "tests/test_a.py::test_b of xdist_group 'db'; under --dist loadgroup a replacement "
        "worker would run that crash again with the rest of its group: run stopped (run "
        "that test alone to see why)"
    )
    ungrouped = lost_worker_message("gw0", "tests/test_a.py::test_b", "loadfile", None)
    assert "test_b of scope 'tests/test_a.py';" in ungrouped
    assert "crashed while" in ungrouped
