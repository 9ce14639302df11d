"""The rules of an event contract (`contracts.rules`): duplicated, out of order, late,
missing; judged over whole runs, as pure logic without sockets.

The reference server's `AGENT_EVENTS` serves as a realistic contract; the rules know
nothing of it.
"""

from __future__ import annotations

import itertools
import random
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


def test_clean_agent_run_is_ok_and_truthy() -> None:
    result = AGENT_EVENTS.check(frames(FLOW))
    assert result.ok and result and result.violations == ()
    assert result.run == "run-1"
    assert [o.name for o in result.observed] == FLOW
    result.raise_for_violations()  # does not raise


def test_a_repeatable_event_may_repeat_consecutively_or_occur_once() -> None:
    many = ["agent_started"] + ["agent_thinking"] * 5 + FLOW[3:]
    assert AGENT_EVENTS.check(frames(many)).ok
    once = ["agent_started", "agent_thinking", *FLOW[3:]]
    assert AGENT_EVENTS.check(frames(once)).ok


def test_a_non_repeatable_event_seen_twice_is_one_duplicated_violation() -> None:
    names = [*FLOW[:4], "tool_executing", "tool_executing", *FLOW[4:]]
    result = AGENT_EVENTS.check(frames(names))
    assert problems(result) == [("duplicated", "tool_executing")]
    assert result.violations[0].detail == "tool_executing seen 3 times"
    assert result.violations[0].index == 4  # the first extra copy


def test_a_repeatable_event_repeated_after_others_is_duplicated() -> None:
    names = ["agent_started", "agent_thinking", "tool_executing", "agent_thinking",
             "tool_completed", "agent_completed"]  # fmt: skip
    result = AGENT_EVENTS.check(frames(names))
    assert problems(result) == [("duplicated", "agent_thinking")]
    assert "repeated after tool_executing" in result.violations[0].detail


def test_a_swap_is_reported_once_naming_both_events() -> None:
    names = [*FLOW[:3], "tool_completed", "tool_executing", "agent_completed"]
    result = AGENT_EVENTS.check(frames(names))
    assert problems(result) == [("out_of_order", "tool_completed")]
    assert result.violations[0].detail == "tool_completed before tool_executing"


def test_one_event_far_too_early_is_one_violation_not_a_cascade() -> None:
    contract = EventContract(events="a b c d e f".split())
    result = contract.check(frames(["a", "e", "b", "c", "d", "f"]))
    assert problems(result) == [("out_of_order", "e")]
    assert result.violations[0].detail == "e before b, c, d"


def test_one_event_far_too_late_is_one_violation_naming_what_it_followed() -> None:
    contract = EventContract(events="a b c d e".split())
    result = contract.check(frames(["a", "c", "d", "b", "e"]))
    assert problems(result) == [("out_of_order", "b")]
    assert result.violations[0].detail == "b after c, d"


@pytest.mark.parametrize("seed", range(20))
def test_out_of_order_reports_the_fewest_displaced_events(seed: int) -> None:
    """Whatever the shuffle, the count equals n - (longest run already in order)."""
    rng = random.Random(seed)
    middle = [f"e{i}" for i in range(8)]
    contract = EventContract(events=["start", *middle, "end"])
    shuffled = middle[:]
    rng.shuffle(shuffled)
    result = contract.check(frames(["start", *shuffled, "end"]))
    order = [middle.index(name) for name in shuffled]
    longest = max(
        len(chosen)
        for size in range(len(order) + 1)
        for chosen in itertools.combinations(order, size)
        if list(chosen) == sorted(chosen)
    )
    assert [v.kind for v in result.violations] == ["out_of_order"] * (len(order) - longest)


def test_unordered_contract_checks_presence_and_repeats_but_not_order() -> None:
    contract = EventContract(events=["a", "b", "c"], terminal="b", ordered=False)
    assert contract.check(frames(["c", "a", "b"])).ok
    assert problems(contract.check(frames(["c", "c", "b"]))) == [
        ("duplicated", "c"),
        ("missing", "a"),
    ]


def test_a_required_event_absent_by_the_terminal_is_missing() -> None:
    result = AGENT_EVENTS.check(frames(FLOW[:4] + FLOW[5:]))
    assert problems(result) == [("missing", "tool_completed")]
    assert result.violations[0].detail == "not seen before the terminal agent_completed"
    assert result.violations[0].index is None


def test_optional_events_may_be_absent_but_must_keep_their_place() -> None:
    contract = EventContract(events=["a", "b", "c"], optional={"b"})
    assert contract.check(frames(["a", "c"])).ok
    assert contract.check(frames(["a", "b", "c"])).ok
    assert problems(contract.check(frames(["b", "a", "c"]))) == [("out_of_order", "b")]
    assert problems(contract.check(frames(["a", "b", "b", "c"]))) == [("duplicated", "b")]


# -- budgets -------------------------------------------------------------------------


def test_an_event_over_its_budget_is_late_and_one_within_is_not() -> None:
    contract = AGENT_EVENTS.with_changes(budgets={"agent_started": 0.5, "agent_completed": 1.0})
    times = [10.0, 10.1, 10.2, 10.3, 10.4, 11.5]
    result = contract.check(frames(FLOW), times=times)
    assert problems(result) == [("late", "agent_completed")]
    assert result.violations[0].detail == "agent_completed at +1.500s, over its 1s budget"
    assert contract.check(frames(FLOW), times=[*times[:5], 10.9]).ok


def test_a_budgeted_event_that_never_came_is_missing_not_late() -> None:
    contract = ABCD.with_changes(budgets={"b": 0.0})
    assert problems(contract.check(frames(["a", "c", "d"], run=None))) == [("missing", "b")]
