"""Stream rules (pure): gaps, duplicates, order, total order, reconnects, teardown.

Real `WsClient` objects that never connect: frames are appended to their event log by
hand and handed to the rule as the reader would (no I/O in the logic under test).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.guard import IsolationGuard
from pytest_ws_resilience.isolation.streams import StreamRule
from pytest_ws_resilience.redaction import register_secret


def make_client(name: str) -> WsClient:
    client = WsClient("ws://127.0.0.1:9/ws", name=name)
    client.metrics.connects = 1
    return client


def feed(rule: StreamRule, client: WsClient, *frames: dict[str, Any]) -> None:
    for frame in frames:
        rule.on_receive(client, client.log.append(json.dumps(frame)))


def room(n: int, name: str = "a", **extra: Any) -> dict[str, Any]:
    return {"type": "room_event", "room": name, "room_seq": n, "value": n, **extra}


def kinds(rule: StreamRule) -> list[str]:
    return [v.kind for v in rule.violations]


def test_a_clean_stream_is_checked_frame_by_frame() -> None:
    rule = StreamRule("room_seq", per="room")
    alice = make_client("alice")
    feed(rule, alice, {"type": "joined", "room": "a", "head": 0}, *(room(n) for n in range(1, 6)))
    rule.finish()
    assert rule.violations == [] and rule.checks == 5
    assert rule.nothing_checked() is None
    assert rule.name == "stream 'room_seq' per 'room'"


def test_a_gap_names_the_missing_numbers_and_the_frames_around() -> None:
    rule = StreamRule("room_seq", per="room")
    alice = make_client("alice")
    feed(rule, alice, room(1), room(2), room(5), room(6))
    assert kinds(rule) == ["gap"]
    found = rule.violations[0]
    assert "room='a': room_seq 2 then 5: missing 3, 4" in found.message
    assert found.receiver == "alice" and '"room_seq": 2' in found.frames[0]


def test_a_gap_at_the_end_is_confirmed_at_teardown() -> None:
    rule = StreamRule("seq")
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1}, {"seq": 3})
    assert rule.violations == []  # judged one frame late
    rule.finish()
    assert kinds(rule) == ["gap"] and "missing 2" in rule.violations[0].message


def test_a_swap_is_one_out_of_order_not_a_gap() -> None:
    rule = StreamRule("seq")
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1}, {"seq": 2}, {"seq": 4}, {"seq": 3}, {"seq": 5})
    rule.finish()
    assert kinds(rule) == ["out_of_order"]
    assert "seq 3 after 4" in rule.violations[0].message


def test_a_displaced_event_is_a_gap_then_out_of_order() -> None:
    rule = StreamRule("seq")
    alice = make_client("alice")
    feed(rule, alice, *({"seq": n} for n in (1, 2, 4, 5, 3, 6)))
    assert kinds(rule) == ["gap", "out_of_order"]


def test_a_repeated_number_is_a_duplicate() -> None:
    rule = StreamRule("seq")
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1}, {"seq": 2}, {"seq": 2}, {"seq": 3}, {"seq": 1})
    assert kinds(rule) == ["duplicate", "duplicate"]
    assert "seq 2 received again" in rule.violations[0].message
    assert rule.reported("duplicate", alice, None, 2)
    assert not rule.reported("duplicate", alice, None, 3)


def test_switches_turn_findings_off() -> None:
    rule = StreamRule("seq", gaps=False, duplicates=False)
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1}, {"seq": 1}, {"seq": 4}, {"seq": 5})
    rule.finish()
    assert rule.violations == [] and rule.checks == 4


def test_scopes_and_receivers_have_streams_of_their_own() -> None:
    rule = StreamRule("room_seq", per="room")
    alice, bob = make_client("alice"), make_client("bob")
    feed(rule, alice, room(1, "a"), room(1, "b"), room(2, "a"), room(2, "b"))
    feed(rule, bob, room(7, "a"), room(8, "a"))  # joined late: starts at 7
    rule.finish()
    assert rule.violations == [] and rule.checks == 6
    assert rule.last_seen(alice, "b") == 2 and rule.last_seen(bob, "a") == 8
    assert rule.last_seen(bob, "b") is None


def test_where_and_dotted_paths_select_frames() -> None:
    rule = StreamRule("meta.n", per="meta.game", where={"type": "move"})
    alice = make_client("alice")
    feed(
        rule,
        alice,
        {"type": "move", "meta": {"n": 1, "game": 9}},
        {"type": "chat", "meta": {"n": 50, "game": 9}},  # not selected
        {"type": "move", "meta": {"n": 2, "game": 9}},
        {"type": "move", "meta": {"n": True, "game": 9}},  # a bool is no number
    )
    assert rule.violations == [] and rule.checks == 2
    predicate = StreamRule("n", where=lambda f: f["kind"] == "x")
    feed(predicate, alice, {"kind": "x", "n": 1}, {"n": 5}, {"kind": "x", "n": 2})
    assert predicate.violations == [] and predicate.checks == 2


def test_a_stream_continues_across_a_reconnect() -> None:
    rule = StreamRule("room_seq", per="room")
    alice = make_client("alice")
    feed(rule, alice, room(1), room(2))
    alice.metrics.connects += 1  # reconnect()
    feed(rule, alice, room(2), room(4))
    rule.finish()
    assert kinds(rule) == ["duplicate", "gap"]


def test_reset_on_reconnect_starts_a_new_stream() -> None:
    rule = StreamRule("seq", reset_on_reconnect=True)
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1}, {"seq": 2}, {"seq": 4})
    alice.metrics.connects += 1
    feed(rule, alice, {"seq": 1}, {"seq": 2})
    rule.finish()
    assert kinds(rule) == ["gap"]  # the gap before the reconnect is still reported
    assert rule.name == "stream 'seq' per connection"


def test_total_order_compares_receivers_without_per_connection_keys() -> None:
    rule = StreamRule("room_seq", per="room", total_order=True)
    alice, bob = make_client("alice"), make_client("bob")
    feed(rule, alice, room(1, seq=3), room(2, seq=4))
    feed(rule, bob, room(1, seq=9), {**room(2, seq=10), "value": "other"})
    assert kinds(rule) == ["total_order"]
    found = rule.violations[0]
    assert found.receiver == "bob" and len(found.frames) == 2
    assert "room_seq 2 is another event than alice" in found.message


def test_finish_judges_frames_received_after_the_last_one_seen() -> None:
    rule = StreamRule("seq")
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1})
    alice.log.append(json.dumps({"seq": 1}))  # came after the rule was detached
    rule.finish()
    assert kinds(rule) == ["duplicate"] and rule.checks == 2
    rule.finish()
    assert rule.checks == 2  # nothing judged twice


def test_a_rule_that_saw_no_sequence_says_so() -> None:
    rule = StreamRule("room_seq", where={"type": "room_event"})
    alice = make_client("alice")
    feed(rule, alice, {"type": "joined", "room": "a"})
    assert rule.nothing_checked() == (
        "no frame selected by where= carried the sequence field 'room_seq' (an int)"
    )


def test_a_huge_jump_is_named_as_a_range() -> None:
    rule = StreamRule("seq")
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1}, {"seq": 10**9}, {"seq": 10**9 + 1}, {"seq": 500})
    assert kinds(rule) == ["gap", "out_of_order"]
    assert f"missing 2..{10**9 - 1} ({10**9 - 2} numbers)" in rule.violations[0].message


def test_advance_skips_numbers_judged_elsewhere() -> None:
    rule = StreamRule("room_seq", per="room")
    alice = make_client("alice")
    feed(rule, alice, room(1))
    rule.advance(alice, "a", 4)
    feed(rule, alice, room(5))
    rule.finish()
    assert rule.violations == []


def test_secrets_in_offending_frames_are_redacted() -> None:
    rule = StreamRule("seq")
    alice = make_client("alice")
    token = "k9Xq2LmZ8vRt4WpA7sDf3GhJ" + "streams"
    register_secret(token)
    feed(rule, alice, {"seq": 1}, {"seq": 1, "Authorization": f"Bearer {token}"})
    shown = "\n".join(rule.violations[0].lines())
    assert token not in shown and "<redacted>" in shown


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"sequence": ""}, "sequence="),
        ({"sequence": "a..b"}, "sequence="),
        ({"sequence": 3}, "sequence="),
        ({"sequence": "seq", "per": ""}, "per="),
        ({"sequence": "seq", "where": 5}, "where="),
        ({"sequence": "seq", "where": {}}, "where="),
        ({"sequence": "seq", "gaps": 1}, "gaps="),
        ({"sequence": "seq", "total_order": "yes"}, "total_order="),
        ({"sequence": "seq", "ignore": "seq"}, "ignore="),
        ({"sequence": "seq", "ignore": [1]}, "ignore="),
        (
            {"sequence": "seq", "gaps": False, "duplicates": False, "order": False},
            "check nothing",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors_naming_them(kwargs: dict[str, Any], named: str) -> None:
    sequence = kwargs.pop("sequence")
    with pytest.raises(ValueError, match=named) as raised:
        StreamRule(sequence, **kwargs)
    assert "\n" not in str(raised.value)


def test_the_guard_declares_a_stream_and_fails_on_its_findings() -> None:
    guard = IsolationGuard(IsolationDetector())
    rule = guard.stream("seq")
    assert guard.stream("seq") is not rule  # each declaration is a rule of its own
    alice = make_client("alice")
    feed(rule, alice, {"seq": 1}, {"seq": 1})
    report = guard.verdict()
    assert report is not None and "[duplicate] seq 1 received again" in report
    with pytest.raises(ValueError, match="per="):
        guard.stream("seq", per="")
