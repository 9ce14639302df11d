"""One scenario, two runners: the same `Scenario` in process and on Locust's workers.

A scenario says what one user does (connect, send, expect a reply or an event contract,
hold, think, close). ``ws_storm.run`` plays it for many users on the test's event loop;
``ws_storm.distributed`` plays it on a headless Locust master and local worker
processes (the ``locust`` extra) and brings the statistics back as the same
`StormResult`, with each worker's share. See docs/load.md and docs/distributed-load.md.
"""

import pytest

from pytest_ws_resilience import AGENT_EVENTS, Scenario

# What one user of the reference agent backend does. Module level: a scenario travels
# to Locust's worker processes, so it must pickle.
CHAT = (
    Scenario("chat")
    .connect()
    .send({"type": "ping"})
    .expect(type="pong")
    .send({"type": "user_message", "text": "What is the weather in Lisbon?"})
    .expect_contract(AGENT_EVENTS, label="agent run")
    .close()
)


@pytest.mark.asyncio
@pytest.mark.performance
@pytest.mark.websocket_security  # every user's frames are checked for the others' data
async def test_the_scenario_in_process(ws_storm):
    result = await ws_storm.run(CHAT, users=40, spawn_rate=200)

    result.assert_errors(max=0)
    assert result.contracts_checked == 40  # every user's agent run checked
    assert len(result.round_trip_ms) == 40  # one timed ping round trip each


@pytest.mark.asyncio
@pytest.mark.performance
async def test_the_same_scenario_on_locust_workers(ws_storm):
    users, workers = 40, 2
    result = await ws_storm.distributed(
        CHAT, users=users, spawn_rate=200, workers=workers, run_time=60
    )
    print(result.describe())  # percentiles, errors by kind, one line per worker

    result.assert_errors(max=0)
    assert len(result.connect_ms) == users  # statistics aggregated from every worker
    assert result.contracts_checked == users  # the same counts as in process
    assert len(result.workers) == workers
    assert sum(share.connects for share in result.workers.values()) == users
