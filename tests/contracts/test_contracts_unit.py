"""Event contracts as pure logic: every rule, run selection, budgets, the transcript
and validation, without sockets."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_ws_resilience.contracts.contracts import (
    AGENT_EVENTS,
    ContractResult,
    ContractViolation,
    EventContract,
)
from pytest_ws_resilience.errors import ContractViolationError, WsResilienceError
from pytest_ws_resilience.redaction import REDACTED, register_secret

FLOW = ["agent_started", "agent_thinking", "agent_thinking", "tool_executing",
        "tool_completed", "agent_completed"]  # fmt: skip
ABCD = EventContract(events=["a", "b", "c", "d"], name="ABCD")


def frames(names: Sequence[str], run: str | None = "run-1", field: str = "type") -> list[Any]:
    """Frames named ``names``, all of run ``run`` (no run field when None)."""
    return [{field: n} if run is None else {field: n, "run_id": run} for n in names]


def problems(result: ContractResult) -> list[tuple[str, str]]:
    return [(v.kind, v.event) for v in result.violations]


# -- the rules -----------------------------------------------------------------------


def test_clean_agent_run_is_ok_and_truthy() -> None:
    result = AGENT_EVENTS.check(frames(FLOW))
    assert result.ok and result and result.violations == ()
    assert result.run == "run-1"
    assert [o.name for o in result.observed] == FLOW
    result.raise_for_violations()  # does not raise


def test_agent_events_is_the_five_event_agent_contract() -> None:
    assert AGENT_EVENTS.events == ("agent_started", "agent_thinking", "tool_executing",
                                   "tool_completed", "agent_completed")  # fmt: skip
    assert AGENT_EVENTS.field == "type" and AGENT_EVENTS.correlation == "run_id"
    assert AGENT_EVENTS.terminal_event == "agent_completed"
    assert AGENT_EVENTS.repeatable == {"agent_thinking"} and AGENT_EVENTS.name == "AGENT_EVENTS"


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


# -- budgets -------------------------------------------------------------------------


def test_an_event_over_its_budget_is_late_and_one_within_is_not() -> None:
    contract = AGENT_EVENTS.with_changes(budgets={"agent_started": 0.5, "agent_completed": 1.0})
    times = [10.0, 10.1, 10.2, 10.3, 10.4, 11.5]
    result = contract.check(frames(FLOW), times=times)
    assert problems(result) == [("late", "agent_completed")]
    assert result.violations[0].detail == "agent_completed at +1.500s, over its 1s budget"
    assert contract.check(frames(FLOW), times=[*times[:5], 10.9]).ok


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


def test_a_budgeted_event_that_never_came_is_missing_not_late() -> None:
    contract = ABCD.with_changes(budgets={"b": 0.0})
    assert problems(contract.check(frames(["a", "c", "d"], run=None))) == [("missing", "b")]


# -- the transcript and the error ----------------------------------------------------


def test_transcript_lays_expected_beside_observed_and_marks_each_problem() -> None:
    names = [*FLOW[:3], "tool_completed", "tool_executing"]
    checker = AGENT_EVENTS.checker(started_at=0.0)
    for index, frame in enumerate(frames(names, run="run-7f3a")):
        checker.feed(frame, 0.001 * (index + 1))
    result = checker.finish(
        reason="terminal event not seen within recv_timeout=10s (profile local)"
    )
    lines = result.transcript().splitlines()
    assert lines[0] == "contract AGENT_EVENTS, run_id=run-7f3a: 2 violations"
    assert lines[1].split() == ["expected", "observed"]
    assert lines[2].split() == ["agent_started", "agent_started", "+0.001s"]
    assert lines[3].split() == ["agent_thinking+", "agent_thinking", "x2", "+0.002s"]
    assert lines[4].split()[:3] == ["tool_executing", "tool_completed", "+0.004s"]
    assert lines[4].endswith("<- out of order: tool_completed before tool_executing")
    assert lines[5].split() == ["tool_completed", "tool_executing", "+0.005s"]
    assert lines[6].split()[:2] == ["agent_completed", "(missing)"]
    assert lines[6].endswith(
        "<- missing: terminal event not seen within recv_timeout=10s (profile local)"
    )
    assert len(lines) == 7
    # Columns line up: every observed cell starts where the header's does.
    column = lines[1].index("observed")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[2:])


def test_transcript_shows_duplicates_optional_and_repeats_after_a_gap() -> None:
    contract = EventContract(events=["a", "b", "c", "d"], optional={"c"}, repeatable={"a"})
    result = contract.check(frames(["a", "a", "b", "a", "b", "d"], run=None))
    text = result.transcript()
    assert text.splitlines()[0] == "contract a -> b -> c -> d: 2 violations"
    assert "a+" in text and "c?" in text and "(not seen)" in text
    assert "a x2" in text and "duplicated: a repeated after b" in text
    assert "duplicated: b seen 2 times" in text


def test_ok_transcript_says_ok() -> None:
    assert (
        AGENT_EVENTS.check(frames(FLOW))
        .transcript()
        .startswith("contract AGENT_EVENTS, run_id=run-1: ok")
    )


def test_violation_error_is_an_assertion_carrying_the_result_and_transcript() -> None:
    result = AGENT_EVENTS.check(frames(FLOW[:4] + FLOW[5:]))
    with pytest.raises(ContractViolationError) as caught:
        result.raise_for_violations()
    error = caught.value
    assert isinstance(error, AssertionError) and isinstance(error, WsResilienceError)
    assert error.result is result and str(error) == result.transcript()
    assert str(result) == result.transcript()


def test_transcript_and_reprs_redact_secrets() -> None:
    secret = "s3cr3t-run-marker-0042"
    register_secret(secret)
    result = AGENT_EVENTS.check(frames(FLOW[:2], run=secret))
    for text in (result.transcript(), repr(result), repr(result.observed[0])):
        assert secret not in text and REDACTED in text
    with pytest.raises(ContractViolationError) as caught:
        result.raise_for_violations()
    assert secret not in str(caught.value)


def test_violation_prints_as_one_line() -> None:
    missing = ContractViolation("missing", "b", "not seen before the terminal d")
    assert str(missing) == "missing b: not seen before the terminal d"
    late = ContractViolation("out_of_order", "c", "c before b", index=1)
    assert str(late) == "out of order: c before b"


# -- construction and validation -----------------------------------------------------


def test_lists_and_single_names_are_normalised() -> None:
    contract = EventContract(events=["a", "b"], repeatable="a", optional=["a"])
    assert contract.events == ("a", "b") and contract.repeatable == frozenset({"a"})
    assert contract.terminal is None and contract.terminal_event == "b"
    assert contract == EventContract(events=("a", "b"), repeatable={"a"}, optional={"a"})
    assert hash(contract) == hash(EventContract(events=("a", "b"), repeatable=("a",),
                                                optional=("a",)))  # fmt: skip
    assert "repeatable=['a']" in repr(contract)


def test_contracts_are_immutable_and_with_changes_revalidates() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        AGENT_EVENTS.name = "other"  # type: ignore[misc]
    faster = AGENT_EVENTS.with_changes(budgets={"agent_completed": 2.5})
    assert faster.budgets == {"agent_completed": 2.5} and faster.events == AGENT_EVENTS.events
    assert AGENT_EVENTS.budgets == {}
    with pytest.raises(ValueError, match="budget 'nope' not among the events"):
        AGENT_EVENTS.with_changes(budgets={"nope": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": []}, "at least one event"),
        ({"events": ["a", ""]}, "non-empty strings"),
        ({"events": ["a", "b", "a"]}, "'a' is listed twice"),
        ({"events": ["a"], "field": ""}, "field must be a non-empty string"),
        ({"events": ["a"], "correlation": ""}, "correlation must be a field name"),
        ({"events": ["a", "b"], "terminal": "z"}, "terminal 'z' not among the events"),
        ({"events": ["a", "b"], "repeatable": {"x", "y"}}, "repeatable 'x', 'y' not among"),
        ({"events": ["a", "b"], "optional": ["z"]}, "optional 'z' not among"),
        ({"events": ["a", "b"], "budgets": {"z": 1}}, "budget 'z' not among"),
        ({"events": ["a", "b"], "budgets": {"a": -0.5}}, "must be >= 0 seconds"),
        ({"events": ["a", "b"], "budgets": {"a": float("nan")}}, "must be seconds"),
        ({"events": ["a", "b"], "budgets": {"a": "1"}}, "must be seconds"),
        ({"events": ["a", "b"], "optional": ["b"]}, "terminal 'b' cannot be optional"),
        ({"events": ["a", "b"], "terminal": "a"}, "must be the last event"),
    ],
)
def test_invalid_contracts_raise_one_line_value_errors(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        EventContract(**kwargs)
    assert "\n" not in str(caught.value)


def test_check_needs_one_time_per_event() -> None:
    with pytest.raises(ValueError, match="2 events but 1 times"):
        ABCD.check(frames(["a", "b"]), times=[0.0])
