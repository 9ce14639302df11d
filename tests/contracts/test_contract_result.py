"""The verdict (`contracts.result`): the expected-vs-observed transcript, the error that
carries it, redaction and one-line violations; pure, without sockets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.contracts.result import ContractViolation
from pytest_ws_resilience.errors import ContractViolationError, WsResilienceError
from pytest_ws_resilience.redaction import REDACTED, register_secret
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS

FLOW = ["agent_started", "agent_thinking", "agent_thinking", "tool_executing",
        "tool_completed", "agent_completed"]  # fmt: skip


def frames(names: Sequence[str], run: str | None = "run-1", field: str = "type") -> list[Any]:
    """Frames named ``names``, all of run ``run`` (no run field when None)."""
    return [{field: n} if run is None else {field: n, "run_id": run} for n in names]


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
