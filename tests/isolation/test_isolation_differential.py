"""The differential's pure half: normalising what varies between runs, comparing a
user's concurrent stream with its solo stream, the findings and their diff."""

from __future__ import annotations

import json

from pytest_ws_resilience.isolation.differential import (
    COUNT,
    ID,
    TIME,
    DifferentialResult,
    StreamDiff,
    StreamOutcome,
    canonical,
    compare_streams,
    diff_lines,
    normalise_frame,
    normalise_stream,
)
from pytest_ws_resilience.isolation.rules import FrameRule


def test_counters_ids_and_times_are_replaced_by_placeholders():
    frame = {
        "type": "room_event",
        "seq": 7,
        "room_seq": 3,
        "connection_id": "conn-1",
        "ts": 1_700_000_000.5,
        "sent": "2024-05-01T12:00:03.123Z",
        "request": "3f2a9c1e-1b2c-4d5e-8f90-123456789abc",
        "room": "room-a1b2c3d4e5f6",
        "value": 42,
        "flag": True,
    }
    assert normalise_frame(frame) == {
        "type": "room_event",
        "seq": COUNT,
        "room_seq": COUNT,
        "connection_id": ID,
        "ts": TIME,
        "sent": TIME,
        "request": ID,
        "room": f"room-{ID}",
        "value": 42,
        "flag": True,
    }


def test_epoch_numbers_anywhere_are_times_but_small_numbers_stay():
    assert normalise_frame({"at": [1_700_000_000_000, 12, 3.5]}) == {"at": [TIME, 12, 3.5]}


def test_words_that_look_a_little_hex_are_kept():
    assert normalise_frame("deadbeef face cafe") == "deadbeef face cafe"
    assert normalise_frame("abcdefabcdefab") == "abcdefabcdefab"  # no digit: a word


def test_ignored_keys_go_at_any_depth():
    frame = {"type": "x", "meta": {"trace": "abc", "keep": 1}, "trace": 2}
    assert normalise_frame(frame, ignore=["trace"]) == {"type": "x", "meta": {"keep": 1}}


def test_the_hook_runs_first_and_can_drop_frames():
    frames = [{"type": "heartbeat"}, {"type": "event", "n": 1}, "plain text"]

    def hook(frame):
        if isinstance(frame, dict) and frame["type"] == "heartbeat":
            return None
        return frame

    lines = normalise_stream(frames, normalise=hook)
    assert lines == [canonical({"type": "event", "n": 1}), json.dumps("plain text")]


def test_counter_keys_can_be_chosen():
    assert normalise_frame({"head": 4}, counter_keys=()) == {"head": 4}


def test_equal_streams_show_nothing():
    assert compare_streams(["a", "b", "c"], ["a", "b", "c"]) == ([], [], [])


def test_extra_frames_are_crosstalk_even_when_identical_to_the_users_own():
    extra, missing, reordered = compare_streams(["j", "e"], ["j", "e", "e", "e"])
    assert (extra, missing, reordered) == (["e", "e"], [], [])


def test_missing_frames_are_loss():
    assert compare_streams(["a", "b", "c"], ["a", "c"]) == ([], ["b"], [])


def test_moved_frames_are_an_order_bug():
    extra, missing, reordered = compare_streams(["a", "b", "c", "d"], ["a", "c", "b", "d"])
    assert extra == [] and missing == []
    assert len(reordered) == 1 and reordered[0] in {"b", "c"}


def test_the_diff_marks_each_side_and_folds_long_equal_runs():
    solo = [f"f{i}" for i in range(20)]
    crowd = [*solo[:10], "intruder", *solo[10:]]
    lines = diff_lines(solo, crowd)
    assert any(line.startswith("  + ") and "intruder" in line for line in lines)
    assert any("equal frame(s)" in line for line in lines)
    assert len(lines) < 12


def test_the_diff_redacts_and_truncates_frames():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    long = canonical({"type": "x", "token": token, "pad": "y" * 500})
    lines = diff_lines([], [long])
    assert token not in "\n".join(lines)
    assert max(len(line) for line in lines) < 200


def _outcome(index, frames, error=None):
    return StreamOutcome(index, f"user-{index}", f"c{index}", tuple(frames), error)


def test_a_result_is_a_rule_whose_findings_name_the_user_and_kind():
    streams = (
        StreamDiff.of(_outcome(0, ["a", "b"]), _outcome(0, ["a", "b", "x"])),
        StreamDiff.of(_outcome(1, ["a", "b"]), _outcome(1, ["a"], error="WsTimeoutError: late")),
        StreamDiff.of(_outcome(2, ["a", "b"]), _outcome(2, ["a", "b"])),
    )
    result = DifferentialResult(scenario="join_and_post", users=3, streams=streams)
    rule: FrameRule = result  # the guard takes it with add_rule
    assert not result.ok
    kinds = [(v.receiver, v.kind) for v in rule.violations]
    assert kinds == [("user-0", "crosstalk"), ("user-1", "lost"), ("user-1", "scenario_failed")]
    report = result.report()
    assert "join_and_post" in report and "solo -> concurrent" in report
    assert rule.checks == (2 + 3) + (2 + 1) + (2 + 2) and rule.nothing_checked() is None


def test_two_results_with_the_same_findings_are_two_rules():
    same = (StreamDiff.of(_outcome(0, ["a"]), _outcome(0, ["a"])),)
    one = DifferentialResult(scenario="s", users=1, streams=same)
    other = DifferentialResult(scenario="s", users=1, streams=same)
    assert one != other and one.ok and "clean" in one.report()


def test_a_result_with_no_frames_says_it_checked_nothing():
    empty = DifferentialResult(
        scenario="s", users=1, streams=(StreamDiff.of(_outcome(0, []), _outcome(0, [])),)
    )
    assert empty.nothing_checked() is not None
