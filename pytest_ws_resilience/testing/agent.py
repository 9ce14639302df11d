"""The simulated agent of the reference server: which events a run emits (pure).

A run is planned up front as a list of events with a delivery decision each, so the
fault rules (drop, duplicate, reorder) live here, next to the normal order, and the
asyncio code in `server.py` only paces and sends what the plan says.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from pytest_ws_resilience.testing.faults import DROP_EVENT, DUPLICATE_EVENT, REORDER_EVENTS
from pytest_ws_resilience.testing.vocabulary import (
    AGENT_COMPLETED,
    AGENT_STARTED,
    AGENT_THINKING,
    TOOL_COMPLETED,
    TOOL_EXECUTING,
)

__all__ = [
    "AgentRun",
    "PlannedEvent",
    "agent_result",
    "plan_run",
]

TOOL_NAME = "search"
_SNIPPET_CHARS = 40


@dataclass(frozen=True)
class AgentRun:
    """One agent run: what a user asked, and the ids that correlate its events."""

    run_id: str
    thread_id: str
    user_id: str
    text: str


@dataclass(frozen=True)
class PlannedEvent:
    """One event of a run and how often it is delivered.

    ``copies`` is 1 normally, 0 when the event is dropped (it still consumes a seq
    number, so receivers see a gap) and 2 when it is duplicated (the identical frame,
    seq included, is sent twice).
    """

    event: dict[str, Any]
    copies: int = 1


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 3] + "..."


def agent_result(text: str) -> str:
    """The agent's final answer to ``text`` (it echoes the input, so tests can match it)."""
    return f"You said: {text}"


def plan_run(run: AgentRun, *, thinking_steps: int, faults: Set[str]) -> list[PlannedEvent]:
    """The events of ``run`` in send order, with the active ``faults`` applied.

    Args:
        run: the run to plan.
        thinking_steps: how many ``agent_thinking`` events (at least one).
        faults: active fault names; ``drop_event``, ``duplicate_event`` and
            ``reorder_events`` change the plan, the others do not concern it.
    """
    ids = {"run_id": run.run_id, "thread_id": run.thread_id, "user_id": run.user_id}
    quoted = _snippet(run.text)
    steps = max(1, thinking_steps)
    plan = [PlannedEvent({"type": AGENT_STARTED, **ids, "input": run.text})]
    plan += [
        PlannedEvent(
            {
                "type": AGENT_THINKING,
                **ids,
                "step": step,
                "thought": f"Step {step}/{steps}: working on {quoted!r}",
            }
        )
        for step in range(1, steps + 1)
    ]
    executing = PlannedEvent(
        {"type": TOOL_EXECUTING, **ids, "tool": TOOL_NAME, "args": {"query": quoted}},
        copies=2 if DUPLICATE_EVENT in faults else 1,
    )
    completed = PlannedEvent(
        {
            "type": TOOL_COMPLETED,
            **ids,
            "tool": TOOL_NAME,
            "output": f"3 results for {quoted!r}",
        },
        copies=0 if DROP_EVENT in faults else 1,
    )
    plan += [completed, executing] if REORDER_EVENTS in faults else [executing, completed]
    plan.append(PlannedEvent({"type": AGENT_COMPLETED, **ids, "result": agent_result(run.text)}))
    return plan
