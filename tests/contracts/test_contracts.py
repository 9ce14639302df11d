"""`client.expect_contract` against the reference server over real loopback sockets:
clean runs pass, each fault switch is caught as the right violation with a transcript,
and waits that cannot succeed end, bounded, with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.errors import ContractViolationError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS

#: Bound of waits that are expected to succeed: far above what a loopback run takes.
WAIT_S = 5.0
#: Pause between agent events on the slow server: a run takes 5 of them at least.
SLOW_DELAY_S = 0.05


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, agent_delay_s=0.001)
    async with ReferenceServer(config) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="function")
async def slow_server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, agent_delay_s=SLOW_DELAY_S)
    async with ReferenceServer(config) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="function")
async def client(server: ReferenceServer, tokens: TokenFactory) -> AsyncIterator[WsClient]:
    async with WsClient(server.url, user=tokens.user()) as connected:
        yield connected


async def ask(client: WsClient, text: str, run_id: str | None = None) -> None:
    message = {"type": "user_message", "text": text}
    if run_id is not None:
        message["run_id"] = run_id
    await client.send_json(message)


# -- clean runs ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_clean_runs_back_to_back_each_pass(client: WsClient) -> None:
    runs = []
    for number in range(3):
        await ask(client, f"question {number}")
        result = await client.expect_contract(AGENT_EVENTS, timeout=WAIT_S)
        assert result.ok, result.transcript()
        assert [o.name for o in result.observed] == [
            "agent_started", "agent_thinking", "agent_thinking",
            "tool_executing", "tool_completed", "agent_completed",
        ]  # fmt: skip
        assert result.observed[-1].event["result"] == f"You said: question {number}"
        runs.append(result.run)
    assert len(set(runs)) == 3  # each check took the next run, not the first again


@pytest.mark.asyncio
async def test_interleaved_runs_on_one_connection_are_checked_separately(
    client: WsClient,
) -> None:
    await ask(client, "first", run_id="run-a")
    await ask(client, "second", run_id="run-b")
    second = await client.expect_contract(AGENT_EVENTS, correlation="run-b", timeout=WAIT_S)
    first = await client.expect_contract(AGENT_EVENTS, correlation="run-a", timeout=WAIT_S)
    assert second.ok and first.ok
    assert {o.event["run_id"] for o in second.observed} == {"run-b"}
    assert {o.event["run_id"] for o in first.observed} == {"run-a"}
    # Checking a contract does not consume events for expect().
    assert (await client.expect("agent_completed", timeout=WAIT_S))["run_id"] in {"run-a", "run-b"}


@pytest.mark.asyncio
async def test_without_correlation_each_check_takes_the_next_unchecked_run(
    client: WsClient,
) -> None:
    await ask(client, "first", run_id="run-a")
    await ask(client, "second", run_id="run-b")
    picked = [(await client.expect_contract(AGENT_EVENTS, timeout=WAIT_S)).run for _ in "ab"]
    assert picked == ["run-a", "run-b"]


@pytest.mark.asyncio
async def test_other_traffic_during_a_run_does_not_disturb_the_check(client: WsClient) -> None:
    await ask(client, "with noise around it")
    for number in range(5):
        await client.send_json({"type": "ping", "n": number})
        await client.send_text("not json")
        await client.send_json({"type": "get_history"})
    result = await client.expect_contract(AGENT_EVENTS, timeout=WAIT_S)
    assert result.ok, result.transcript()
    assert {"pong", "error", "history"} <= {e.get("type") for e in client.events}


# -- faults caught -------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "kind", "event", "marked_line"),
    [
        ("drop_event", "missing", "tool_completed",
         "tool_completed   (missing)"),
        ("reorder_events", "out_of_order", "tool_completed",
         "<- out of order: tool_completed before tool_executing"),
        ("duplicate_event", "duplicated", "tool_executing",
         "<- duplicated: tool_executing seen 2 times"),
    ],
)  # fmt: skip
async def test_each_fault_is_caught_with_a_transcript(
    server: ReferenceServer,
    client: WsClient,
    fault: str,
    kind: str,
    event: str,
    marked_line: str,
) -> None:
    server.set_faults(fault)
    await ask(client, f"under {fault}", run_id=f"run-{fault}")
    with pytest.raises(ContractViolationError) as caught:
        await client.expect_contract(AGENT_EVENTS, timeout=WAIT_S)
    result = caught.value.result
    assert [(v.kind, v.event) for v in result.violations] == [(kind, event)]
    message = str(caught.value)
    assert message.startswith(f"contract AGENT_EVENTS, run_id=run-{fault}: 1 violation\n")
    assert marked_line in message
    assert "expected" in message.splitlines()[1] and "observed" in message.splitlines()[1]


@pytest.mark.asyncio
async def test_a_clean_run_after_a_faulty_one_passes(
    server: ReferenceServer, client: WsClient
) -> None:
    server.set_faults("reorder_events")
    await ask(client, "broken")
    with pytest.raises(ContractViolationError):
        await client.expect_contract(AGENT_EVENTS, timeout=WAIT_S)
    server.set_faults()
    await ask(client, "fixed")
    result = await client.expect_contract(AGENT_EVENTS, timeout=WAIT_S)
    assert result.ok and result.observed[0].event["input"] == "fixed"


# -- waits that cannot succeed -------------------------------------------------------


@pytest.mark.asyncio
async def test_a_terminal_event_that_does_not_come_in_time_is_missing_with_the_reason(
    slow_server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with WsClient(slow_server.url, user=tokens.user()) as client:
        await ask(client, "slow", run_id="run-slow")
        # The run needs 5 pauses of SLOW_DELAY_S; the wait allows one.
        with pytest.raises(ContractViolationError) as caught:
            await client.expect_contract(AGENT_EVENTS, timeout=SLOW_DELAY_S)
    result = caught.value.result
    terminal = [v for v in result.violations if v.event == "agent_completed"]
    assert [v.kind for v in terminal] == ["missing"]
    assert (
        terminal[0].detail
        == f"terminal event not seen within recv_timeout={SLOW_DELAY_S:g}s (explicit)"
    )
    assert result.reason == terminal[0].detail
    assert "agent_completed  (missing)" in str(caught.value)


@pytest.mark.asyncio
async def test_a_connection_closed_before_the_terminal_event_is_reported(
    slow_server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with WsClient(slow_server.url, user=tokens.user()) as client:
        await ask(client, "interrupted")
        await client.expect("agent_started", timeout=WAIT_S)
        check = asyncio.create_task(client.expect_contract(AGENT_EVENTS, timeout=WAIT_S))
        await slow_server.stop()
        with pytest.raises(ContractViolationError) as caught:
            await check
    result = caught.value.result
    assert result.violations[-1].event == "agent_completed"
    assert result.violations[-1].detail == "connection closed (code 1001) before the terminal event"


@pytest.mark.asyncio
async def test_an_event_over_its_budget_is_late(
    slow_server: ReferenceServer, tokens: TokenFactory
) -> None:
    # agent_completed comes at least 5 * SLOW_DELAY_S after the request: far over 1 ms.
    contract = AGENT_EVENTS.with_changes(budgets={"agent_completed": 0.001})
    async with WsClient(slow_server.url, user=tokens.user()) as client:
        await ask(client, "in a hurry")
        with pytest.raises(ContractViolationError) as caught:
            await client.expect_contract(contract, timeout=WAIT_S)
    result = caught.value.result
    assert [(v.kind, v.event) for v in result.violations] == [("late", "agent_completed")]
    assert "over its 0.001s budget" in str(caught.value)


@pytest.mark.asyncio
async def test_back_to_back_checks_without_correlation_see_back_to_back_runs(
    client: WsClient,
) -> None:
    """Without a correlation field, each check starts after the previous run's terminal."""
    contract = AGENT_EVENTS.with_changes(correlation=None, name="uncorrelated")
    results = []
    for text in ("first", "second"):
        await ask(client, text)
        result = await client.expect_contract(contract, timeout=WAIT_S)
        results.append(result.observed[-1].event["result"])
    assert results == ["You said: first", "You said: second"]
