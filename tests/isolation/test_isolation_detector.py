"""The isolation rules (`isolation.detector`): identity, taint, canaries, registration and
the allowlist, as pure logic: no sockets, no loop.

Frames are built with a real `EventLog` (it parses JSON as the client does), users and
tokens with a real `TokenFactory`.
"""

from __future__ import annotations

import json
import re

import pytest

from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.markers import CANARY, EMAIL, TAINT, USER_ID


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


def received(obj: object, log: EventLog | None = None) -> LogRecord:
    """A frame as the client records it: JSON text, parsed once."""
    return (log or EventLog()).append(json.dumps(obj))


def received_text(text: str | bytes) -> LogRecord:
    return EventLog().append(text)


def detector_with(
    tokens: TokenFactory, **options: object
) -> tuple[IsolationDetector, TestUser, TestUser]:
    detector = IsolationDetector(**options)  # type: ignore[arg-type]
    alice, bob = tokens.user(), tokens.user()
    detector.add_user(alice)
    detector.add_user(bob)
    return detector, alice, bob


# -- identity ---------------------------------------------------------------------------


def test_identity_markers_of_another_user_are_violations(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens)
    for marker, kind in ((alice.id, USER_ID), (alice.email, EMAIL)):
        found = detector.observe_received(bob.id, received({"note": f"see {marker}"}), "bob#1")
        assert [(v.receiver, v.owner, v.marker_kind) for v in found] == [(bob.id, alice.id, kind)]
        assert found[0].receiver_connection == "bob#1"
    assert detector.checks == 2


def test_own_markers_are_never_violations(tokens: TokenFactory) -> None:
    detector, alice, _ = detector_with(tokens)
    detector.observe_sent(alice.id, json.dumps({"text": "alice's own words"}))
    frame = {"id": alice.id, "email": alice.email, "token": alice.token,
             "echo": "alice's own words"}  # fmt: skip
    assert detector.observe_received(alice.id, received(frame)) == []
    assert detector.violations == []


def test_an_integer_in_a_frame_matches_a_numeric_user_id(tokens: TokenFactory) -> None:
    detector = IsolationDetector()
    numeric = tokens.user(id="12345678")
    other = tokens.user()
    detector.add_user(numeric)
    detector.add_user(other)
    found = detector.observe_received(other.id, received({"owner": 12345678, "ok": True}))
    assert [(v.owner, v.marker_kind, v.marker) for v in found] == [
        ("12345678", USER_ID, "'12345678'")
    ]


def test_short_markers_are_skipped_and_listed(tokens: TokenFactory) -> None:
    detector = IsolationDetector()
    short = tokens.user(id="42", email="a@b.c")
    other = tokens.user()
    detector.add_user(short)
    detector.add_user(other)
    skipped = {(s.owner, s.kind, s.marker) for s in detector.skipped_markers}
    assert {("42", USER_ID, "42"), ("42", EMAIL, "a@b.c")} <= skipped
    assert detector.observe_received(other.id, received({"n": 42, "answer": "42 a@b.c"})) == []


def test_a_marker_inside_the_receivers_own_longer_marker_is_not_a_violation(
    tokens: TokenFactory,
) -> None:
    detector = IsolationDetector()
    one, ten = tokens.user(id="user-1"), tokens.user(id="user-10")
    detector.add_user(one)
    detector.add_user(ten)
    assert detector.observe_received(ten.id, received({"user_id": "user-10"})) == []
    # ...while the reverse (a longer foreign marker) is caught.
    found = detector.observe_received(one.id, received({"user_id": "user-10"}))
    assert [v.owner for v in found] == ["user-10"]


def test_a_value_the_receiver_sent_itself_is_not_a_leak_to_it(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens)
    # Bob messages Alice by her id: his own frames may quote it back.
    detector.observe_sent(bob.id, json.dumps({"type": "dm", "to": alice.id, "text": "hi"}))
    assert detector.observe_received(bob.id, received({"type": "dm_sent", "to": alice.id})) == []
    detector.observe_sent(bob.id, json.dumps({"text": f"please invite {alice.id} to the room"}))
    echo = received({"result": f"You said: please invite {alice.id} to the room"})
    assert detector.observe_received(bob.id, echo) == []
    # A third user who never sent it does see a leak.
    carol = tokens.user()
    detector.add_user(carol)
    assert [v.owner for v in detector.observe_received(carol.id, received({"to": alice.id}))] == [
        alice.id
    ]


def test_a_marker_inside_a_longer_value_the_receiver_sent_is_not_a_leak_to_it(
    tokens: TokenFactory,
) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    carol = tokens.user()
    detector.add_user(carol)
    detector.observe_sent(alice.id, "", {"text": "good morning 42"})
    detector.observe_sent(bob.id, "", {"text": "see you in 2024 good morning 42 is the answer"})
    # The server quotes Bob's text truncated: Alice's phrase shows, Bob's whole text not.
    quote = received({"thought": "working on 'see you in 2024 good morning 42 is th...'"})
    assert detector.observe_received(bob.id, quote) == []
    assert detector.observe_received(bob.id, quote) == []  # cached answer, same verdict
    # Carol wrote neither: for her it is Alice's phrase.
    assert [v.owner for v in detector.observe_received(carol.id, quote)] == [alice.id]


def test_identity_switch_off_reports_no_identity_marker(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    assert detector.observe_received(bob.id, received({"user_id": alice.id})) == []
    detector.register(alice, "registered-marker-1")
    found = detector.observe_received(bob.id, received({"x": "registered-marker-1"}))
    assert [v.marker_kind for v in found] == ["registered"]


# -- taint ------------------------------------------------------------------------------


def test_values_a_user_sends_become_its_taint(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    detector.observe_sent(alice.id, "", {"type": "user_message", "text": "my secret plan"})
    found = detector.observe_received(bob.id, received({"result": "You said: my secret plan"}))
    assert [(v.owner, v.marker_kind, v.marker) for v in found] == [
        (alice.id, TAINT, "'my secret plan'")
    ]
    assert str(found[0]).startswith(
        f"{bob.id} (connection ) received a frame holding {alice.id}'s taint marker "
        "'my secret plan'"
    )


def test_plain_text_frames_taint_their_whole_text(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    detector.observe_sent(alice.id, "plain words, not JSON")
    detector.observe_sent(alice.id, b"bytes frame text")
    detector.observe_sent(alice.id, b"\xff\xfe not utf-8 at all")  # no text values
    found = detector.observe_received(bob.id, received_text("echo: plain words, not JSON"))
    assert [v.marker for v in found] == ["'plain words, not JSON'"]
    found = detector.observe_received(bob.id, received_text(b"-- bytes frame text --"))
    assert [v.marker for v in found] == ["'bytes frame text'"]
    assert detector.observe_received(bob.id, received_text(b"\xff\xfe not utf-8 at all")) == []


def test_taint_switch_off_and_short_values_make_no_taint(tokens: TokenFactory) -> None:
    off, alice, bob = detector_with(tokens, taint=False)
    off.observe_sent(alice.id, "", {"text": "my secret plan"})
    assert off.observe_received(bob.id, received({"x": "my secret plan"})) == []
    short, alice, bob = detector_with(tokens, taint_min_length=10)
    short.observe_sent(alice.id, "", {"text": "ninechars"})
    assert short.observe_received(bob.id, received({"x": "ninechars"})) == []


def test_a_value_sent_by_two_users_is_shared_and_never_flagged(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    carol = tokens.user()
    detector.add_user(carol)
    detector.observe_sent(alice.id, "", {"text": "good morning team"})
    detector.observe_sent(bob.id, "", {"text": "good morning team"})
    for receiver in (alice.id, bob.id, carol.id):
        assert detector.observe_received(receiver, received({"t": "good morning team"})) == []
    # Once shared it stays shared, even if its first sender sends it again.
    detector.observe_sent(alice.id, "", {"text": "good morning team"})
    assert detector.observe_received(carol.id, received({"t": "good morning team"})) == []
    assert detector.owner_of("good morning team") is None


def test_values_under_untainted_keys_are_not_taint(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    detector.observe_sent(alice.id, "", {"type": "subscribe_updates", "channel": "news-feed-1"})
    assert detector.observe_received(bob.id, received({"type": "subscribe_updates"})) == []
    assert detector.observe_received(bob.id, received({"channel": "news-feed-1"})) == []
    custom, alice, bob = detector_with(tokens, identity=False, untainted_keys={"room"})
    custom.observe_sent(alice.id, "", {"room": "general-room", "type": "subscribe_updates"})
    assert custom.observe_received(bob.id, received({"r": "general-room"})) == []
    assert len(custom.observe_received(bob.id, received({"t": "subscribe_updates"}))) == 1


def test_a_value_received_then_sent_is_not_taint(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    # The server assigned this run id to Alice; echoing it back is not her own data.
    detector.observe_received(alice.id, received({"type": "ack", "run_id": "run-4f3e2d1c"}))
    detector.observe_sent(alice.id, "", {"type": "cancel", "run_id": "run-4f3e2d1c"})
    assert detector.observe_received(bob.id, received({"run_id": "run-4f3e2d1c"})) == []
    # A value she made up herself is hers.
    detector.observe_sent(alice.id, "", {"type": "cancel", "run_id": "run-made-by-alice"})
    assert len(detector.observe_received(bob.id, received({"run_id": "run-made-by-alice"}))) == 1


def test_json_escapes_do_not_hide_a_marker(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    value = 'she said "héllo" — ☃ \\ done'
    detector.observe_sent(alice.id, "", {"text": value})
    frame = json.dumps({"echo": f"<{value}>"})  # ensure_ascii: \u escapes, \" and \\
    assert value not in frame
    found = detector.observe_received(bob.id, received_text(frame))
    assert [v.owner for v in found] == [alice.id]


def test_a_marker_in_a_key_is_found(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens)
    found = detector.observe_received(bob.id, received({"presence": {alice.id: "online"}}))
    assert [v.owner for v in found] == [alice.id]


# -- canaries, registration, allowlist --------------------------------------------------


def test_registered_markers_and_canaries_are_always_on(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False, taint=False)
    detector.register(alice, "project-zebra")
    detector.register(alice.id, "canary-0123456789abcdef", kind=CANARY)
    found = detector.observe_received(
        bob.id, received({"x": "project-zebra", "y": "canary-0123456789abcdef"})
    )
    assert sorted((v.marker_kind, v.marker) for v in found) == [
        (CANARY, "'canary-0123456789abcdef'"),
        ("registered", "'project-zebra'"),
    ]


def test_allowlisted_values_and_patterns_never_raise(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False, allow=["lobby-room-1"])
    detector.observe_sent(alice.id, "", {"room": "lobby-room-1", "text": "announcement 2024-09"})
    assert detector.observe_received(bob.id, received({"room": "lobby-room-1"})) == []
    assert len(detector.observe_received(bob.id, received({"t": "announcement 2024-09"}))) == 1
    detector.allow_pattern(r"announcement \d{4}-\d{2}")  # after the fact
    assert detector.observe_received(bob.id, received({"t": "announcement 2024-09"})) == []
    detector.allow("lobby-room-2")  # before the fact
    detector.observe_sent(alice.id, "", {"room": "lobby-room-2"})
    assert detector.observe_received(bob.id, received({"room": "lobby-room-2"})) == []
    detector.allow_pattern(re.compile(r"topic-\w+"))
    detector.register(alice, "topic-alpha")  # even a registered marker
    assert detector.observe_received(bob.id, received({"t": "topic-alpha"})) == []


def test_an_allowlisted_value_covers_a_marker_inside_it(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, identity=False)
    detector.observe_sent(alice.id, "", {"text": "quarterly report"})
    detector.allow("the quarterly report template")
    assert detector.observe_received(bob.id, received({"t": "the quarterly report template"})) == []


# -- options ----------------------------------------------------------------------------


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="marker_min_length"):
        IsolationDetector(marker_min_length=0)
    with pytest.raises(ValueError, match="max_violations"):
        IsolationDetector(max_violations=0)
