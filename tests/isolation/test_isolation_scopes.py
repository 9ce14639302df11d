"""Scope rules (`isolation/scopes.py`): what a connection may see, learned from signals,
paths and explicit calls; pure, no socket (frames are fed to the rule by hand)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pytest_ws_resilience import ScopeRule, Signal
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.entitlements import PATH, RECEIVED, SENT
from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.fields import read_field
from pytest_ws_resilience.isolation.guard import IsolationGuard

_index = 0


def record(data: Any, at: float) -> LogRecord:
    global _index
    _index += 1
    raw = data if isinstance(data, str) else json.dumps(data)
    parsed = None if isinstance(data, str) else data
    return LogRecord(_index, at, time.time(), raw, parsed)


def client(path: str = "/", *, connected_at: float | None = 100.0) -> WsClient:
    made = WsClient(f"ws://127.0.0.1:9{path}", user=TokenFactory().user())
    if connected_at is not None:
        made.entitlements.connected(connected_at)
    return made


def event(room: Any, **more: Any) -> dict[str, Any]:
    return {"type": "room_event", "room": room, "room_seq": 1, "value": 5, **more}


def test_a_frame_of_a_scope_never_granted_is_a_violation_with_the_timeline() -> None:
    rule = ScopeRule("room")
    bob = client()
    bob.entitle(room="b")
    rule.on_receive(bob, record(event("b"), time.monotonic()))
    rule.on_receive(bob, record(event("a"), time.monotonic()))
    assert rule.checks == 2
    [found] = rule.violations
    assert found.kind == "scope" and found.rule == "scope 'room' (field 'room')"
    assert found.receiver == bob.user.id and found.connection == bob.name
    assert found.message == "received a frame of room 'a' it is not entitled to (entitled to: 'b')"
    assert '"room": "a"' in found.frames[0]
    text = "\n".join(found.lines())
    assert "entitlement timeline of " + bob.user.id in text
    assert "+0.000s connected (first)" in text
    assert "granted room 'b' (explicit)" in text
    assert text.rstrip().endswith("this frame: room 'a'  <-- not entitled")


def test_a_join_sent_grants_at_once_and_a_leave_sent_waits_for_the_grace() -> None:
    rule = ScopeRule("room", join={"type": "join"}, leave={"type": "leave"}, grace=0.25)
    alice = client()
    rule.on_send(alice, '{"type": "join", "room": "a"}', {"type": "join", "room": "a"})
    sent_at = alice.entitlements.changes[-1].at
    rule.on_receive(alice, record(event("a"), sent_at + 0.001))
    rule.on_send(alice, json.dumps({"type": "leave", "room": "a"}), None)  # send_text of JSON
    left_at = alice.entitlements.changes[-1].at
    rule.on_receive(alice, record(event("a"), left_at + 0.1))  # in flight: excused
    assert rule.violations == []
    rule.on_receive(alice, record(event("a"), left_at + 0.3))
    assert len(rule.violations) == 1
    assert [(c.action, c.source) for c in alice.entitlements.changes[1:]] == [
        ("grant", SENT),
        ("revoke", SENT),
    ]
    assert "revoked room 'a' (sent frame)" in "\n".join(rule.violations[0].detail)


def test_a_leave_the_server_confirmed_is_immediate_and_covers_its_own_frame() -> None:
    rule = ScopeRule("room", join={"type": "join"}, leave={"type": "left"})
    bob = client()
    rule.on_send(bob, "", {"type": "join", "room": "a"})
    now = time.monotonic() + 0.01
    rule.on_receive(bob, record({"type": "left", "room": "a"}, now))  # still entitled
    assert rule.violations == []
    rule.on_receive(bob, record(event("a"), now + 0.001))
    assert len(rule.violations) == 1
    assert bob.entitlements.changes[-1].source == RECEIVED


def test_a_received_join_covers_the_frame_that_carries_it() -> None:
    rule = ScopeRule("room", join=Signal({"type": "joined"}, direction="received"))
    carol = client()
    rule.on_receive(carol, record({"type": "joined", "room": "x", "head": 0}, 101.0))
    rule.on_receive(carol, record(event("x"), 101.1))
    assert rule.violations == [] and rule.checks == 2


def test_directions_are_respected() -> None:
    rule = ScopeRule(
        "room",
        join=Signal({"type": "join"}, direction="received"),  # the client's own join: ignored
        leave=Signal({"type": "bye"}, direction="sent"),
    )
    dave = client()
    rule.on_send(dave, "", {"type": "join", "room": "a"})
    assert len(dave.entitlements) == 1  # the connect only
    dave.entitle(room="a")
    rule.on_receive(dave, record({"type": "bye", "room": "a"}, time.monotonic()))
    assert dave.entitlements.changes[-1].action == "grant"


def test_signals_read_dotted_paths_and_values_may_be_ints() -> None:
    rule = ScopeRule(
        "game",
        field="payload.game.id",
        join=Signal({"op": "enter"}, value="args.game"),
        leave=lambda direction, frame: frame.get("quit") if direction == "sent" else None,
    )
    eve = client()
    rule.on_send(eve, "", {"op": "enter", "args": {"game": 42}})
    now = time.monotonic() + 0.001
    rule.on_receive(eve, record({"payload": {"game": {"id": 42}}}, now))
    rule.on_receive(eve, record({"payload": {"game": {"id": "42"}}}, now))
    rule.on_receive(eve, record({"payload": {"game": {"id": 43}}}, now))
    assert rule.checks == 3 and len(rule.violations) == 1
    assert "game '43'" in rule.violations[0].message
    rule.on_send(eve, "", {"quit": 42})
    assert eve.entitlements.changes[-1].action == "revoke"


def test_frames_without_the_field_or_with_another_type_are_not_judged() -> None:
    rule = ScopeRule("room")
    frank = client()
    for frame in ({"type": "pong"}, event(None), event(True), event({"id": 1}), event(""), "text"):
        rule.on_receive(frank, record(frame, 101.0))
    assert rule.checks == 0 and rule.violations == []
    assert rule.nothing_checked() == (
        "no received frame carried field 'room' as a str or int (6 frames seen): "
        "is the field right?"
    )


def test_a_signal_giving_a_value_of_another_type_raises_naming_it() -> None:
    rule = ScopeRule("room", join={"type": "join"})
    error = r"join signal type='join' gave \['a'\], not a str or an int"
    with pytest.raises(ValueError, match=error):
        rule.on_send(client(), "", {"type": "join", "room": ["a"]})


def test_a_path_template_grants_the_room_of_the_url_from_the_first_connect() -> None:
    rule = ScopeRule("room", path="/rooms/{room}")
    lobby = client("/rooms/lobby%20one", connected_at=50.0)
    plain = client("/", connected_at=50.0)
    rule.on_receive(lobby, record(event("lobby one"), 60.0))
    rule.on_receive(lobby, record(event("other"), 60.0))
    rule.on_receive(plain, record(event("lobby one"), 60.0))
    assert [v.receiver for v in rule.violations] == [lobby.user.id, plain.user.id]
    [grant] = [c for c in lobby.entitlements.changes if c.action == "grant"]
    assert (grant.at, grant.source, grant.value) == (50.0, PATH, "lobby one")
    assert rule.name == "scope 'room' (field 'room', path '/rooms/{room}')"


def test_other_placeholders_of_a_path_match_any_segment() -> None:
    rule = ScopeRule("room", path="/orgs/{org}/rooms/{room}/")
    member = client("/orgs/acme/rooms/r1")
    rule.on_receive(member, record(event("r1"), 101.0))
    assert rule.violations == []


def test_entitlements_span_a_reconnect() -> None:
    rule = ScopeRule("room", join={"type": "join"}, leave={"type": "left"})
    grace = client(connected_at=10.0)
    rule.on_send(grace, "", {"type": "join", "room": "a"})
    grace.entitlements.connected(time.monotonic() + 1)  # reconnect(): same client
    after = time.monotonic() + 2
    rule.on_receive(grace, record(event("a"), after))
    assert rule.violations == []
    rule.on_receive(grace, record({"type": "left", "room": "a"}, after + 0.1))
    rule.on_receive(grace, record(event("a"), after + 0.2))
    [found] = rule.violations
    assert "connected (reconnect)" in "\n".join(found.detail)


def test_violations_are_bounded_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_ws_resilience.isolation import scopes

    monkeypatch.setattr(scopes, "_MAX_VIOLATIONS", 3)
    rule = ScopeRule("room")
    henry = client()
    for step in range(5):
        rule.on_receive(henry, record(event("z"), 101.0 + step))
    assert len(rule.violations) == 3 and rule.dropped == 2 and rule.violation_count == 5


def test_secrets_in_a_violation_are_redacted() -> None:
    rule = ScopeRule("room")
    ivy = client()
    token = TokenFactory().user().token
    rule.on_receive(ivy, record(event("a", token=token), 101.0))
    text = "\n".join(rule.violations[0].lines())
    assert token not in text


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, "scope name must be an identifier"),
        ({"name": "my room"}, "scope name must be an identifier"),
        ({"field": ""}, "field must be a dotted field path"),
        ({"field": "a..b"}, "field must be a dotted field path"),
        ({"join": "join"}, "join must be a mapping of fields, a Signal, a callable"),
        ({"leave": [3]}, "leave items must be mappings of fields, Signals or callables"),
        ({"join": {}}, "Signal match must be a non-empty mapping"),
        ({"path": "rooms/{room}"}, "path must be a template starting with '/'"),
        ({"path": "/rooms/{id}"}, r"path template '/rooms/\{id\}' needs one \{room\}"),
        ({"path": "/rooms/{room"}, "is malformed"),
        ({"grace": -1}, "grace must be a number of seconds from 0 to 60"),
        ({"grace": True}, "grace must be a number of seconds from 0 to 60"),
        ({"grace": float("nan")}, "grace must be a number of seconds from 0 to 60"),
    ],
)
def test_bad_arguments_are_one_line_errors_naming_them(kwargs: dict[str, Any], error: str) -> None:
    name = kwargs.pop("name", "room")
    with pytest.raises(ValueError, match=error) as caught:
        ScopeRule(name, **kwargs)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"match": {"type": "join"}, "direction": "up"}, "Signal direction must be one of"),
        ({"match": {"": 1}}, "Signal match key must be a dotted field path"),
        ({"match": {"type": "join"}, "value": ".x"}, "Signal value must be a dotted field path"),
        ({"match": ["type"]}, "Signal match must be a non-empty mapping"),
    ],
)
def test_bad_signals_are_refused(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Signal(**kwargs)


def test_read_field_walks_dicts_and_list_indexes() -> None:
    frame = {"a": {"b": [{"c": 1}]}}
    assert read_field(frame, ("a", "b", "0", "c")) == 1
    assert read_field(frame, ("a", "b", "1", "c")) is None
    assert read_field(frame, ("a", "x")) is None
    assert read_field("text", ("a",)) is None


def test_the_guard_declares_the_rule_and_reports_it_with_content_leaks() -> None:
    guard = IsolationGuard(IsolationDetector())
    with pytest.raises(ValueError, match=r"^ws_isolation.scope\(\): grace must be"):
        guard.scope("room", grace=-1)
    rule = guard.scope("room", join={"type": "join"})
    assert guard.rules == [rule]
    jack = client()
    rule.on_receive(jack, record(event("a"), 101.0))
    report = guard.verdict()
    assert report is not None
    assert "scope 'room' (field 'room'): 1 violation (1 frames checked):" in report
    assert "<-- not entitled" in report
    assert guard.rule_violations == rule.violations
