"""Event contracts: the order of a run's events is checked, not just their presence."""

import pytest

from pytest_ws_resilience import AGENT_EVENTS, EventContract
from pytest_ws_resilience.errors import ContractViolationError


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_agent_run_follows_the_contract(ws_client):
    await ws_client.send_json({"type": "user_message", "text": "plan my week"})

    result = await ws_client.expect_contract(AGENT_EVENTS)

    assert result.ok
    assert result.observed[0].name == "agent_started"


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_interleaved_runs_are_checked_separately(ws_client):
    await ws_client.send_json({"type": "user_message", "text": "first", "run_id": "run-1"})
    await ws_client.send_json({"type": "user_message", "text": "second", "run_id": "run-2"})

    second = await ws_client.expect_contract(AGENT_EVENTS, correlation="run-2")
    first = await ws_client.expect_contract(AGENT_EVENTS, correlation="run-1")

    assert (first.run, second.run) == ("run-1", "run-2")


@pytest.mark.asyncio
@pytest.mark.websocket_resilience
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("drop_event", "missing"),
        ("reorder_events", "out_of_order"),
        ("duplicate_event", "duplicated"),
    ],
)
async def test_a_broken_backend_is_caught_by_the_contract(ws_server, ws_client, fault, kind):
    with ws_server.faults(fault):
        await ws_client.send_json({"type": "user_message", "text": "hello"})
        with pytest.raises(ContractViolationError) as caught:
            await ws_client.expect_contract(AGENT_EVENTS, timeout=2)

    assert {v.kind for v in caught.value.result.violations} == {kind}
    print(caught.value.result.transcript())  # expected vs observed, side by side


def test_a_contract_for_your_own_protocol():
    # Only the field names change: the event name lives in "event", runs are "job"s.
    jobs = EventContract(
        events=["job.accepted", "job.progress", "job.result"],
        field="event",
        correlation="job",
        repeatable={"job.progress"},
    )
    observed = [
        {"event": "job.accepted", "job": "j1"},
        {"event": "job.progress", "job": "j1"},
        {"event": "job.progress", "job": "j1"},
        {"event": "job.result", "job": "j1"},
    ]
    assert jobs.check(observed).ok
