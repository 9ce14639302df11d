"""``ws_storm.run(scenario)`` as users use it (pytester runs of ``-p ws_resilience``
suites against the embedded reference server): the in-process half of "one scenario,
two runners". The same `AGENT_CHAT` the Locust runner plays passes against the clean
server and fails with the isolation report when the server leaks runs between users;
its result goes to the reports as a storm of kind ``scenario``."""

from __future__ import annotations

import pytest
from storm_records import read_storms, record_storms

pytestmark = pytest.mark.websocket_integration

VERDICT_SUITE = """
import pytest
from pytest_ws_resilience import Scenario
from pytest_ws_resilience.load.scenario import AGENT_CHAT

@pytest.mark.asyncio
async def test_clean(ws_storm, ws_isolation):
    result = await ws_storm.run(AGENT_CHAT, users=8)
    result.assert_errors(max=0)
    assert result.contracts_checked == 8
    assert ws_isolation.violations == [] and ws_isolation.checks > 0

@pytest.mark.asyncio
async def test_leaky(ws_storm, ws_isolation, ws_server):
    with ws_server.faults("leak"):
        await ws_storm.run(AGENT_CHAT, users=8)

@pytest.mark.websocket_security
@pytest.mark.asyncio
async def test_leaky_marked(ws_storm, ws_server):
    with ws_server.faults("leak"):
        await ws_storm.run(AGENT_CHAT, users=8, spawn_rate=200)
"""


def test_the_same_scenario_fails_on_a_leak_with_the_isolation_report(ws_pytester, tmp_path):
    record = tmp_path / "storms.jsonl"
    record_storms(ws_pytester, record)
    ws_pytester.makepyfile(VERDICT_SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*test_leaky*", "*received*"])
    assert "test_leaky_marked" in out
    rows = {row["test"]: row["storms"] for row in read_storms(record)}
    [clean] = rows["test_clean"]
    assert (clean["kind"], clean["attempted"], clean["succeeded"]) == ("scenario", 8, 8)
    assert clean["contracts_checked"] == 8
    assert set(clean["steps"]) == {"connect", "contract:AGENT_EVENTS", "close"}
    assert clean["steps"]["connect"]["count"] == 8
