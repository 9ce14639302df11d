"""``ws_storm.cycles`` measures the server's growth as users run it: a reference server
that leaks a file descriptor per closed connection (``--fault leak_connections``,
started by ``--ws-server-cmd``) fails ``assert_server_growth`` with its growth named,
the clean server passes, and the embedded server says why it cannot be measured."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.websocket_integration

REFERENCE_CMD = f"{sys.executable} -m pytest_ws_resilience.testing --port {{port}}"

GROWTH_SUITE = """
import pytest

@pytest.mark.asyncio
async def test_cycles_leave_nothing_behind(ws_storm):
    result = await ws_storm.cycles(200, concurrency=10)
    print(repr(result))
    result.assert_errors(max=0)
    result.assert_server_growth(fds=50, sockets=50)
"""


def test_a_server_that_leaks_an_fd_per_connection_fails_with_its_growth(ws_pytester):
    ws_pytester.makepyfile(GROWTH_SUITE)
    command = f"{REFERENCE_CMD} --fault leak_connections"
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", f"--ws-server-cmd={command}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*StormThresholdError: cycles 'cycles n=200 concurrency=10' missed its thresholds:",
            "*server fds growth per 1,000 cycles = +1000.0 > max 50",
            "*server growth per 1,000 cycles: RSS +*MiB, fds +1000, threads +*, TCP sockets +0"
            " (over 200 cycles;*fds * -> *",
        ]
    )
    assert "sockets growth" not in result.stdout.str()  # the leak keeps files, not sockets


def test_the_clean_server_passes_and_shows_its_growth(ws_pytester):
    ws_pytester.makepyfile(GROWTH_SUITE)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", f"--ws-server-cmd={REFERENCE_CMD}", "-s"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*StormResult(kind='cycles'*server growth per 1,000 cycles: RSS *, fds +0, *",
            "storm cycles n=200 concurrency=10 (cycles): 200/200 ok, *, server growth per 1,000"
            " cycles: RSS *, fds +0, threads +*, TCP sockets +0",
        ]
    )


def test_the_embedded_server_is_not_measured_and_a_growth_assertion_says_why(ws_pytester):
    ws_pytester.makepyfile(GROWTH_SUITE)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*StormThresholdError: cycles 'cycles n=200 concurrency=10': server growth was not"
            " measured, nothing to assert: the embedded reference server runs inside the test"
            " process*--ws-server-cmd*",
        ]
    )
