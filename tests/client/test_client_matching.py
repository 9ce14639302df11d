"""What a wait looks for and what its errors show (`pytest_ws_resilience.client.matching`):
pure, no sockets."""

from __future__ import annotations

import re

import pytest

from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.client.matching import (
    bytes_wait,
    describe_expected,
    expected_event,
    frame_label,
    frame_wait,
    matches,
    recent_events,
    sequence_steps,
    sequence_waits,
    text_wait,
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
    with pytest.raises(ValueError, match=r"^expect\(\) needs a type, fields or a predicate"):
        expected_event(None, {})


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
    # Not "x": another test of the same process registers "x" * 40 as a secret, and
    # registered secrets are redacted wherever they appear.
    log.append("z" * 300)
    text = recent_events(log)
    assert text.startswith("last 5 of 9: ")
    frames = text.removeprefix("last 5 of 9: ").split(" | ")
    assert frames[:3] == ['{"n": 4}', '{"n": 5}', '{"n": 6}']
    assert frames[3] == repr(b"\x00binary")
    assert frames[4] == "z" * 200 + "..."


def test_recent_events_count_only_what_the_ring_still_holds() -> None:
    log = EventLog(2)
    for n in range(4):
        log.append(f"frame {n}")
    assert recent_events(log) == "last 2 of 4: frame 2 | frame 3"


# -- beyond JSON objects -------------------------------------------------------------------


def records(*frames: str | bytes) -> list[LogRecord]:
    log = EventLog(100)
    return [log.append(frame) for frame in frames]


def test_text_waits_take_exact_text_a_regex_or_a_predicate() -> None:
    answer, json_text, binary = records("answer", '{"type": "x"}', b"answer")
    assert text_wait("answer").accept(answer)
    assert not text_wait("answer").accept(binary)
    assert text_wait(re.compile("ns")).accept(answer)
    assert text_wait(re.compile('"type"')).accept(json_text)  # a JSON text frame is text
    assert not text_wait(re.compile("ns")).accept(binary)
    assert text_wait(str.isalpha).accept(answer)
    assert not text_wait(lambda t: t.missing).accept(answer)  # another shape: no match
    assert text_wait(re.compile("x+")).what == "text frame matching re 'x+'"


def test_bytes_waits_take_exact_bytes_or_a_predicate() -> None:
    text, binary = records("ab", b"ab")
    assert bytes_wait(b"ab").accept(binary) and not bytes_wait(b"ab").accept(text)
    assert bytes_wait(bytearray(b"ab")).accept(binary)
    assert bytes_wait(lambda b: b[0] == ord("a")).accept(binary)
    assert not bytes_wait(lambda b: b[0] == ord("a")).accept(text)


@pytest.mark.parametrize("bad", [42, None, re.compile(b"x")])
def test_a_text_wait_of_another_kind_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="expect_text"):
        text_wait(bad)  # type: ignore[arg-type]


def test_a_bytes_wait_of_a_str_points_at_expect_text() -> None:
    with pytest.raises(TypeError, match="use expect_text for text frames"):
        bytes_wait("ab")  # type: ignore[arg-type]


def test_a_frame_predicate_sees_json_else_text_else_bytes() -> None:
    json_frame, text, binary = records('{"a": 1}', "plain", b"\xff")
    wait = frame_wait(lambda f: f["a"] == 1, {})
    assert wait.accept(json_frame) and not wait.accept(text) and not wait.accept(binary)
    assert frame_wait(lambda f: f == "plain", {}).accept(text)
    assert frame_wait(lambda f: f == b"\xff", {}).accept(binary)
    assert not frame_wait(lambda f: True, {"a": 2}).accept(json_frame)
    assert frame_wait(lambda f: True, {"a": 1}).accept(json_frame)


def test_a_predicate_raising_something_else_than_a_shape_error_propagates() -> None:
    (text,) = records("plain")

    def broken(frame: object) -> bool:
        raise RuntimeError("bug in the test")

    with pytest.raises(RuntimeError, match="bug in the test"):
        frame_wait(broken, {}).accept(text)


def test_sequence_waits_read_names_by_key_fields_and_predicates() -> None:
    joined, action = records("JOINED:lobby", '{"action": "ack"}')
    key = lambda f: f.split(":")[0]  # noqa: E731
    by_name, by_fields, by_predicate = sequence_waits(
        ["JOINED", {"action": "ack"}, lambda f: f == "JOINED:lobby"], key
    )
    assert by_name.accept(joined) and not by_name.accept(action)
    assert by_fields.accept(action) and not by_fields.accept(joined)
    assert by_predicate.accept(joined)
    (typed,) = sequence_waits(["ack"])
    assert not typed.accept(action)  # without a key a name is the type field
    with pytest.raises(TypeError, match="items are event names"):
        sequence_waits([3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="key must be a function"):
        sequence_waits(["x"], "action")  # type: ignore[arg-type]


def test_frame_labels_use_the_key_else_the_type_else_the_text() -> None:
    typed, untyped, text, binary = records('{"type": "pong"}', '{"a": 1}', "x" * 100, b"\x00")
    assert frame_label(typed) == "pong"
    assert frame_label(untyped) == '{"a": 1}'
    assert frame_label(text) == "x" * 60 + "..."
    assert frame_label(binary) == repr(b"\x00")
    assert frame_label(untyped, lambda f: f.get("a")) == "1"
    assert frame_label(text, lambda f: f.get("a")) == "x" * 60 + "..."  # key gave none


def test_recent_events_with_a_key_show_its_names_redacted() -> None:
    log = EventLog(10)
    log.append("JOIN:lobby")
    log.append("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ")
    text = recent_events(log, lambda t: t.split(":")[0] if ":" in t else None)
    assert text.startswith("last 2 of 2: JOIN | ")
    assert "eyJhbGciOiJIUzI1NiJ9" not in text
