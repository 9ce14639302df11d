"""The declaration (`contracts.contract`): names normalised, contracts immutable and
validated with one-line errors; pure, without sockets."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS

ABCD = EventContract(events=["a", "b", "c", "d"], name="ABCD")


def frames(names: Sequence[str], run: str | None = "run-1", field: str = "type") -> list[Any]:
    """Frames named ``names``, all of run ``run`` (no run field when None)."""
    return [{field: n} if run is None else {field: n, "run_id": run} for n in names]


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
        (
            {"events": ["a", "b"], "budgets": {"a": -0.5}},
            "expected a number of seconds from 0 to 1 day",
        ),
        (
            {"events": ["a", "b"], "budgets": {"a": float("nan")}},
            "expected a number of seconds from 0 to 1 day",
        ),
        (
            {"events": ["a", "b"], "budgets": {"a": "1"}},
            "expected a number of seconds from 0 to 1 day",
        ),
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


# -- key functions -------------------------------------------------------------------------


def test_a_key_function_names_events_of_a_protocol_without_a_name_field() -> None:
    contract = EventContract(["join", "leave"], key=lambda f: f.get("action"))
    result = contract.check([{"action": "join"}, "noise", {"x": 1}, {"action": "leave"}])
    assert result.ok
    assert [e.name for e in result.observed] == ["join", "leave"]
    assert "key=<lambda>" in repr(contract)


def test_a_key_function_sees_text_frames() -> None:
    contract = EventContract(["JOINED", "LEFT"], key=lambda t: t.split(":")[0])
    assert contract.check(["JOINED:a", b"\x00", "LEFT:a"]).ok
    assert not contract.check(["LEFT:a"]).ok


def test_a_key_and_a_field_together_are_refused() -> None:
    with pytest.raises(ValueError, match="field='action' or a key function, not both"):
        EventContract(["a"], field="action", key=lambda f: f)
    with pytest.raises(ValueError, match="key must be a function"):
        EventContract(["a"], key="action")  # type: ignore[arg-type]
