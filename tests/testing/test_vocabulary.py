"""The reference server's vocabulary (`testing.vocabulary`): its agent contract, and the
agent's plans judged by it, fault by fault; pure, without sockets."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_ws_resilience
import pytest_ws_resilience.testing
from pytest_ws_resilience.testing.agent import AgentRun, plan_run
from pytest_ws_resilience.testing.faults import DROP_EVENT, DUPLICATE_EVENT, REORDER_EVENTS
from pytest_ws_resilience.testing.vocabulary import (
    AGENT_COMPLETED,
    AGENT_EVENT_TYPES,
    AGENT_EVENTS,
    AGENT_STARTED,
)

RUN = AgentRun(run_id="run-1", thread_id="thread-1", user_id="user-1", text="hello")


def test_agent_events_is_the_five_event_agent_contract() -> None:
    assert AGENT_EVENTS.events == ("agent_started", "agent_thinking", "tool_executing",
                                   "tool_completed", "agent_completed")  # fmt: skip
    assert AGENT_EVENTS.field == "type" and AGENT_EVENTS.correlation == "run_id"
    assert AGENT_EVENTS.terminal_event == "agent_completed"
    assert AGENT_EVENTS.repeatable == {"agent_thinking"} and AGENT_EVENTS.name == "AGENT_EVENTS"


def test_agent_events_is_one_object_from_every_public_path() -> None:
    assert pytest_ws_resilience.AGENT_EVENTS is AGENT_EVENTS
    assert pytest_ws_resilience.testing.AGENT_EVENTS is AGENT_EVENTS


@pytest.mark.parametrize("steps", [1, 3])
def test_a_clean_plan_of_the_agent_keeps_the_contract(steps: int) -> None:
    plan = plan_run(RUN, thinking_steps=steps, faults=frozenset())
    events = [step.event for step in plan for _ in range(step.copies)]
    assert events[0]["type"] == AGENT_STARTED
    assert events[-1]["type"] == AGENT_COMPLETED
    assert sorted({event["type"] for event in events}) == sorted(AGENT_EVENT_TYPES)
    result = AGENT_EVENTS.check(events)
    assert result.ok and result.run == "run-1"


@pytest.mark.parametrize(
    ("fault", "violation"),
    [
        (DROP_EVENT, "missing tool_completed: not seen before the terminal agent_completed"),
        (REORDER_EVENTS, "out of order: tool_completed before tool_executing"),
        (DUPLICATE_EVENT, "duplicated: tool_executing seen 2 times"),
    ],
)
def test_each_event_fault_of_the_agent_breaks_the_contract_once(fault: str, violation: str) -> None:
    """The table of docs/contracts.md: one fault switch, one violation."""
    plan = plan_run(RUN, thinking_steps=2, faults={fault})
    result = AGENT_EVENTS.check([step.event for step in plan for _ in range(step.copies)])
    assert [str(v) for v in result.violations] == [violation]


def test_the_vocabulary_is_pure() -> None:
    """Imported alone in a fresh interpreter, it loads no I/O module and no server."""
    code = (
        "import sys, pytest_ws_resilience.testing.vocabulary; "
        "print(*sorted(sys.modules), sep='\\n')"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(run.stdout.split())
    io_modules = ("asyncio", "socket", "subprocess", "pytest", "docker", "uvicorn",
                  "websockets.asyncio", "jwt")  # fmt: skip
    assert [name for name in io_modules if name in loaded] == []
    assert "pytest_ws_resilience.testing.server" not in loaded
