"""A finished test lets go of its clients at its record, whatever it did (issue 16).

pytest keeps every item to the end of the session, and with it whatever the plugin put
on the item for the test: its `TestWatch` (clients, proxies, the isolation guard) and
the client fixtures' offers to close early. A client holds its connection, buffers, log
and event loop, so a session of many tests must not keep them. The watch is let go of at
the test's teardown report, both when the test is only added to the summary's tally (it
passed using only clients) and when it is recorded (it failed, or ``--ws-report`` asks
for every test), and the early-close offers with it (a failed body never took them).

pytester runs with ``-p ws_resilience`` and the embedded reference server, as users run;
the last test of the inner suite looks for the earlier tests' clients, after a
collection (what it checks is what the item holds, not the collector's timing:
`tests/client/test_client_cycles.py` checks that a closed client needs no collection).
"""

from __future__ import annotations

import pytest

SUITE = """
import gc
import weakref

import pytest

REFS = []


async def ping(client):
    await client.send_json({"type": "ping"})
    await client.expect(type="pong")


@pytest.mark.asyncio
async def test_a_client(ws_client):
    REFS.append(("test_a_client", weakref.ref(ws_client)))
    await ping(ws_client)


@pytest.mark.asyncio
async def test_two_clients(ws_client_factory):
    for _ in range(2):
        client = await ws_client_factory()
        REFS.append(("test_two_clients", weakref.ref(client)))
        await ping(client)


@pytest.mark.asyncio
async def test_a_failing_body(ws_client):
    REFS.append(("test_a_failing_body", weakref.ref(ws_client)))
    await ping(ws_client)
    assert False, "the body fails: its client stays open until teardown"


@pytest.mark.asyncio
async def test_one_more(ws_client):
    # After a failure: pytest's sys.last_traceback of it is cleared by the next call.
    REFS.append(("test_one_more", weakref.ref(ws_client)))
    await ping(ws_client)


def test_zz_no_earlier_client_is_alive():
    gc.collect()
    alive = [name for name, ref in REFS if ref() is not None]
    assert len(REFS) == 5
    assert alive == []
"""


@pytest.mark.parametrize("report", [False, True], ids=["tallied", "recorded"])
def test_no_finished_test_keeps_its_clients(ws_pytester, report):
    ws_pytester.makepyfile(test_suite=SUITE)
    args = ["-p", "ws_resilience"]
    if report:
        args.append(f"--ws-report={ws_pytester.path / 'report.json'}")
    result = ws_pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test_a_failing_body*the body fails*"])
    result.stdout.no_fnmatch_line("*test_zz_no_earlier_client_is_alive FAILED*")
