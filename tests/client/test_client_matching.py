"""What a wait looks for and what its errors show (`pytest_ws_resilience.client.matching`):
pure, no sockets."""

from __future__ import annotations

from pytest_ws_resilience.client.eventlog import EventLog
from pytest_ws_resilience.client.matching import (
    describe_expected,
    expected_event,
    matches,
    recent_events,
    sequence_steps,
)


def test_matches_requires_every_expected_key_equal() -> None:
    event = {"type": "agent_completed", "run_id": "r1", "seq": 4}
    assert matches(event, {"type": "agent_completed"})
    assert matches(event, {"type": "agent_completed", "run_id": "r1"})
    assert not matches(event, {"type": "agent_completed", "run_id": "r2"})
    assert not matches(event, {"missing": None})
    assert matches(event, {})


def test_matches_accepts_predicates() -> None:
    event = {"type": "agent_thinking", "seq": 5}
    assert matches(event, {"seq": lambda s: s > 3})
    assert not matches(event, {"seq": lambda s: s > 9})


def test_matches_rejects_non_mappings() -> None:
    assert not matches(None, {})
    assert not matches([1, 2], {"type": "x"})
    assert not matches("text", {})


def test_expected_event_adds_the_type_only_when_given() -> None:
    assert expected_event(None, {"run_id": "r1"}) == {"run_id": "r1"}
    assert expected_event("done", {"run_id": "r1"}) == {"type": "done", "run_id": "r1"}
    assert expected_event(None, {}) == {}


def test_sequence_steps_take_type_names_and_field_mappings() -> None:
    mapping = {"type": "done", "run_id": "r1"}
    steps = sequence_steps(["started", mapping])
    assert steps == [{"type": "started"}, {"type": "done", "run_id": "r1"}]
    steps[1]["extra"] = 1
    assert "extra" not in mapping  # the caller's mapping is never changed


def test_describe_expected_hides_predicates_and_names_the_empty_wait() -> None:
    assert describe_expected({"type": "done"}) == "{'type': 'done'}"
    assert describe_expected({"seq": lambda s: s > 3}) == "{'seq': '<predicate>'}"
    assert describe_expected({}) == "any JSON event"


def test_recent_events_show_the_last_five_frames_truncated() -> None:
    log = EventLog(100)
    assert recent_events(log) == "none received"
    for n in range(7):
        log.append(f'{{"n": {n}}}')
    log.append(b"\x00binary")
    log.append("x" * 300)
    text = recent_events(log)
    assert text.startswith("last 5 of 9: ")
    frames = text.removeprefix("last 5 of 9: ").split(" | ")
    assert frames[:3] == ['{"n": 4}', '{"n": 5}', '{"n": 6}']
    assert frames[3] == repr(b"\x00binary")
    assert frames[4] == "x" * 200 + "..."


def test_recent_events_count_only_what_the_ring_still_holds() -> None:
    log = EventLog(2)
    for n in range(4):
        log.append(f"frame {n}")
    assert recent_events(log) == "last 2 of 4: frame 2 | frame 3"
