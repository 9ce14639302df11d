"""The incremental checker (`contracts.checker`): what feed and finish answer, which
frames are ignored, which run is picked, and when a run starts; pure, without sockets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.contracts.result import ContractResult
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS

FLOW = ["agent_started", "agent_thinking", "agent_thinking", "tool_executing",
        "tool_completed", "agent_completed"]  # fmt: skip
ABCD = EventContract(events=["a", "b", "c", "d"], name="ABCD")


def frames(names: Sequence[str], run: str | None = "run-1", field: str = "type") -> list[Any]:
    """Frames named ``names``, all of run ``run`` (no run field when None)."""
    return [{field: n} if run is None else {field: n, "run_id": run} for n in names]


def problems(result: ContractResult) -> list[tuple[str, str]]:
    return [(v.kind, v.event) for v in result.violations]


def test_finish_with_a_reason_makes_the_terminal_and_unseen_events_missing() -> None:
    checker = AGENT_EVENTS.checker()
    assert not any(checker.feed(f, 1.0) for f in frames(FLOW[:3]))
    reason = "terminal event not seen within recv_timeout=0.2s (explicit)"
    result = checker.finish(reason=reason)
    assert problems(result) == [
        ("missing", "tool_executing"),
        ("missing", "tool_completed"),
        ("missing", "agent_completed"),
    ]
    assert {v.detail for v in result.violations} == {reason}
    assert result.reason == reason and not result.ok


def test_feed_says_true_at_the_terminal_and_ignores_what_follows() -> None:
    checker = AGENT_EVENTS.checker()
    answers = [checker.feed(f, 0.0) for f in frames(FLOW)]
    assert answers == [False] * 5 + [True] and checker.done
    assert checker.feed({"type": "agent_started", "run_id": "run-1"}, 0.0) is True
    assert len(checker.finish().observed) == 6


def test_check_without_the_terminal_says_the_events_ended() -> None:
    result = ABCD.check(frames(["a", "b"], run=None))
    assert problems(result) == [("missing", "c"), ("missing", "d")]
    assert result.reason == "the events ended before the terminal event"


# -- what is ignored -----------------------------------------------------------------


def test_frames_that_are_not_contract_events_are_ignored() -> None:
    noise: list[Any] = [
        None,
        "text",
        42,
        ["agent_started"],
        {"type": "connection_established", "run_id": "run-1"},
        {"type": "pong", "run_id": "run-1"},
        {"type": ["unhashable"], "run_id": "run-1"},
        {"kind": "agent_started", "run_id": "run-1"},  # wrong field
        {"type": "agent_thinking"},  # no correlation field
        {"type": "agent_thinking", "run_id": None},
        {"type": "agent_thinking", "run_id": {"unhashable": 1}},
    ]
    stream = []
    for frame in frames(FLOW):
        stream += [frame, *noise]
    result = AGENT_EVENTS.check(stream)
    assert result.ok and [o.name for o in result.observed] == FLOW


def test_field_names_the_event_so_other_protocols_fit() -> None:
    contract = EventContract(events=["job.accepted", "job.result"], field="event")
    result = contract.check([{"type": "job.result"}, {"event": "job.accepted"},
                             {"event": "job.result"}])  # fmt: skip
    assert result.ok and result.run is None and len(result.observed) == 2


# -- runs and correlation ------------------------------------------------------------


def interleaved() -> list[Any]:
    a, b = frames(FLOW, run="A"), frames(FLOW, run="B")
    return [frame for pair in zip(a, b, strict=True) for frame in pair]


def test_interleaved_runs_are_each_checked_separately() -> None:
    stream = interleaved()
    for run in ("A", "B"):
        result = AGENT_EVENTS.check(stream, correlation=run)
        assert result.ok and result.run == run
        assert {o.event["run_id"] for o in result.observed} == {run}


def test_the_first_run_seen_is_picked_and_skip_runs_moves_past_it() -> None:
    stream = interleaved()
    first = AGENT_EVENTS.checker()
    assert first.run is None
    next(f for f in stream if first.feed(f, 0.0))
    assert first.run == "A"
    second = AGENT_EVENTS.checker(skip_runs=frozenset({"A"}))
    next(f for f in stream if second.feed(f, 0.0))
    assert second.run == "B" and second.finish().ok


def test_an_explicit_correlation_wins_over_skip_runs() -> None:
    checker = AGENT_EVENTS.checker("A", skip_runs=frozenset({"A"}))
    assert checker.run == "A"
    assert any(checker.feed(f, 0.0) for f in interleaved())


def test_a_faulty_run_does_not_blame_a_clean_run_beside_it() -> None:
    bad = frames([*FLOW[:3], "tool_completed", "tool_executing", "agent_completed"], run="bad")
    stream = [frame for pair in zip(bad, frames(FLOW, run="good"), strict=True) for frame in pair]
    assert AGENT_EVENTS.check(stream, correlation="good").ok
    assert problems(AGENT_EVENTS.check(stream)) == [("out_of_order", "tool_completed")]


def test_no_run_seen_reports_every_required_event_missing() -> None:
    result = AGENT_EVENTS.check(frames(FLOW, run="A"), correlation="Z")
    assert result.run == "Z" and len(result.violations) == 5
    result = AGENT_EVENTS.check([])
    assert result.run is None and "run_id=(none seen)" in result.transcript()


def test_correlation_for_a_contract_without_a_correlation_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="has no correlation field"):
        ABCD.checker("run-1")


# -- when a run starts ---------------------------------------------------------------


def test_budgets_count_from_the_earlier_of_check_start_and_first_event() -> None:
    contract = ABCD.with_changes(budgets={"d": 1.0})
    names = frames(["a", "b", "c", "d"], run=None)
    # Check started before the run: the wait counts.
    early = contract.checker(started_at=0.0)
    for frame, at in zip(names, [0.8, 0.9, 1.0, 1.1], strict=True):
        early.feed(frame, at)
    assert problems(early.finish()) == [("late", "d")]
    # Frames received before the check started: the run's first frame is the start.
    late = contract.checker(started_at=5.0)
    for frame, at in zip(names, [0.8, 0.9, 1.0, 1.1], strict=True):
        late.feed(frame, at)
    result = late.finish()
    assert result.ok and result.observed[0].offset == 0.0
