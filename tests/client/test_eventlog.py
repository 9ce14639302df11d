"""Unit tests of the event log ring buffer (pure, no I/O)."""

from __future__ import annotations

import json

import pytest
from json_depth import decoder_depth_limit, nested_lists, undecodable_integer

from pytest_ws_resilience.client.eventlog import EventLog


def test_append_parses_json_once_and_keeps_raw() -> None:
    log = EventLog()
    raw = json.dumps({"type": "pong", "n": 1})
    record = log.append(raw)
    assert record.raw == raw
    assert record.data == {"type": "pong", "n": 1}
    assert record.index == 0
    assert log.records == [record]
    assert log.events == [{"type": "pong", "n": 1}]


def test_non_json_frames_are_recorded_with_no_data() -> None:
    log = EventLog()
    text = log.append("hello, not json")
    binary = log.append(b"\xff\x00binary")
    assert text.data is None and binary.data is None
    assert len(log) == 2
    assert log.events == []


@pytest.mark.parametrize("kind", ["nesting", "digits"])
def test_json_python_cannot_decode_is_recorded_as_text_not_raised(kind: str) -> None:
    # Valid JSON past the decoder's depth (RecursionError) or past the int/str digit
    # limit (ValueError): the receiver used to raise, and the connection was lost.
    if kind == "nesting":
        raw = nested_lists(2 * decoder_depth_limit())
    else:
        raw = undecodable_integer()
    log = EventLog()
    record = log.append(raw)
    assert record.data is None and record.raw == raw and record.frame == raw
    assert log.append('{"type": "after"}').data == {"type": "after"}


def test_json_in_binary_frames_is_parsed() -> None:
    assert EventLog().append(b'{"type": "x"}').data == {"type": "x"}


def test_receive_times_are_recorded() -> None:
    log = EventLog()
    record = log.append("{}", received_at=123.5)
    assert record.received_at == 123.5
    assert record.wall_time > 0
    later = log.append("{}")
    assert later.received_at > 0


def test_ring_keeps_newest_and_counts_dropped() -> None:
    log = EventLog(maxlen=3)
    for n in range(10):
        log.append(json.dumps({"n": n}))
    assert len(log) == 3
    assert [e["n"] for e in log.events] == [7, 8, 9]
    assert log.total == 10
    assert log.dropped == 7
    assert log.last_index == 9
    assert [r.index for r in log.records] == [7, 8, 9]


def test_since_returns_retained_records_from_an_index() -> None:
    log = EventLog(maxlen=5)
    for n in range(8):
        log.append(str(n))
    assert [r.index for r in log.since(6)] == [6, 7]
    assert [r.index for r in log.since(0)] == [3, 4, 5, 6, 7]  # older ones were evicted
    assert [r.index for r in log.since(-4)] == [3, 4, 5, 6, 7]
    assert log.since(8) == []
    assert log.since(100) == []


def test_indexes_are_never_reused_after_clear() -> None:
    log = EventLog()
    log.append("a")
    log.append("b")
    log.clear()
    assert len(log) == 0 and log.dropped == 2
    assert log.append("c").index == 2
    assert log.last_index == 2


def test_empty_log_state() -> None:
    log = EventLog()
    assert len(log) == 0 and log.total == 0 and log.dropped == 0
    assert log.last_index == -1
    assert log.since(0) == []


def test_maxlen_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxlen"):
        EventLog(maxlen=0)
