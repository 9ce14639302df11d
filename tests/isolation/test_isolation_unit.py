"""The isolation rules and the marker index, as pure logic: no sockets, no loop.

Frames are built with a real `EventLog` (it parses JSON as the client does), users and
tokens with a real `TokenFactory`.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.errors import IsolationViolationError, WsResilienceError
from pytest_ws_resilience.isolation.detector import (
    CANARY,
    EMAIL,
    TAINT,
    TOKEN,
    USER_ID,
    IsolationDetector,
    frame_strings,
    sent_strings,
)
from pytest_ws_resilience.isolation.index import MarkerIndex


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


# -- MarkerIndex ------------------------------------------------------------------------


def naive_find(text: str, markers: list[str]) -> set[tuple[int, str]]:
    found = set()
    for marker in markers:
        at = text.find(marker)
        while at >= 0:
            found.add((at, marker))
            at = text.find(marker, at + 1)
    return found


def random_marker(rng: random.Random, text: str, length: int, alphabet: str) -> str:
    """Half the time a piece of ``text`` (so it occurs), else random letters."""
    if rng.random() < 0.5 and len(text) >= length:
        start = rng.randrange(0, len(text) - length + 1)
        return text[start : start + length]
    return "".join(rng.choice(alphabet) for _ in range(length))


@pytest.mark.parametrize("k", [2, 3, 6])
def test_index_finds_every_occurrence_like_a_naive_search(k: int) -> None:
    """Property test (seeded): markers of every sampling tier, repeated k-grams, windows
    that move as they miss, markers discarded and added between scans."""
    rng = random.Random(20240917 + k)
    alphabet = "abc"  # small, so markers overlap, share k-grams and occur often
    moved = 0
    for _ in range(100):
        index: MarkerIndex[int] = MarkerIndex(k)
        markers: dict[str, int] = {}
        for scan in range(12):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
            for n in range(rng.randrange(0, 8)):
                marker = random_marker(rng, text, rng.randrange(k, k + 40), alphabet)
                index.add(marker, scan * 100 + n)
                markers[marker] = scan * 100 + n
            for marker in rng.sample(sorted(markers), min(len(markers), rng.randrange(0, 3))):
                index.discard(marker)
                del markers[marker]
            windows = {m: index._markers[m][2] for m in markers}
            found = index.find(text)
            moved += sum(windows[m] != index._markers[m][2] for m in markers)
            expected = naive_find(text, list(markers))
            assert {(m.start, m.marker) for m in found} == expected
            assert len(found) == len(expected)  # no occurrence twice
            assert all(text[m.start : m.end] == m.marker for m in found)
            assert all(markers[m.marker] == m.value for m in found)
            assert len(index) == len(markers)
            # With a relevance filter: everything when a relevant marker occurs.
            filtered = index.find(text, lambda value: value % 2 == 0)
            if any(markers[marker] % 2 == 0 for _, marker in expected):
                assert {(m.start, m.marker) for m in filtered} == expected
            else:
                assert filtered == [] or {(m.start, m.marker) for m in filtered} == expected
            assert len(index) == len(markers)
    assert moved or k == 6  # the noisy-window moves were exercised (short k-grams miss)


def test_index_rejects_markers_shorter_than_k_and_replaces_values() -> None:
    index: MarkerIndex[str] = MarkerIndex(6)
    assert index.add("short", "x") is False
    assert "short" not in index
    assert index.add("long enough", "first") is True
    assert index.add("long enough", "second") is True
    assert len(index) == 1
    assert [m.value for m in index.find("it is long enough!")] == ["second"]
    index.discard("long enough")
    assert index.find("it is long enough!") == []
    assert len(index) == 0


def test_index_scans_texts_of_exactly_k_characters() -> None:
    index: MarkerIndex[int] = MarkerIndex(6)
    index.add("abcdef", 1)
    assert [m.start for m in index.find("abcdef")] == [0]
    assert index.find("abcdeg") == []


def test_index_rejects_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        MarkerIndex(0)


# -- frame walks ------------------------------------------------------------------------


def test_frame_strings_takes_values_keys_and_ints_but_not_bools_or_floats() -> None:
    strings = frame_strings({"user_id": 12345678, "ok": True, "ratio": 0.25, "tags": ["a", 7]})
    assert sorted(strings) == sorted(["user_id", "12345678", "ok", "ratio", "tags", "a", "7"])
    # Strings too short to hold a marker are left out.
    assert sorted(frame_strings({"user_id": 12345678, "ok": "fine", "n": [7]}, 4)) == [
        "12345678",
        "fine",
        "user_id",
    ]


def test_sent_strings_marks_values_under_untainted_keys() -> None:
    values = sent_strings(
        {"type": "user_message", "text": "hello there", "meta": {"op": ["x"], "note": "n"}},
        frozenset({"type", "op"}),
    )
    assert sorted(values) == [("hello there", True), ("n", True), ("user_message", False),
                              ("x", False)]  # fmt: skip


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


# -- the report -------------------------------------------------------------------------


def test_violation_redacts_a_token_and_truncates_the_frame(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens)
    frame = {"auth": alice.token, "padding": "x" * 2000}
    found = detector.observe_received(bob.id, received(frame), lambda: "bob#7 / conn-3")
    kinds = {v.marker_kind for v in found}
    assert TOKEN in kinds
    token_violation = next(v for v in found if v.marker_kind == TOKEN)
    assert token_violation.receiver_connection == "bob#7 / conn-3"
    for text in (str(token_violation), detector.report()):
        assert alice.token not in text
        assert "<redacted" in text
    assert len(token_violation.frame) <= 300
    assert token_violation.frame.endswith("...")


def test_one_violation_per_marker_per_frame_and_nested_markers_fold(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens)
    # The email holds the id: one finding (the email), not two; repeats fold too.
    frame = {"a": alice.email, "b": alice.email}
    found = detector.observe_received(bob.id, received(frame))
    assert [(v.marker_kind, v.owner) for v in found] == [(EMAIL, alice.id)]


def test_report_groups_violations_and_assert_clean_raises(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens)
    assert detector.report().startswith("no isolation violations (0 frames checked")
    detector.assert_clean()
    log = EventLog()
    detector.observe_received(bob.id, received({"user_id": alice.id}, log))
    detector.observe_received(alice.id, received({"user_id": bob.id}, log))
    detector.observe_received(bob.id, received({"user_id": alice.id}, log))
    report = detector.report()
    assert report.splitlines()[0].startswith("3 isolation violations")
    assert f"{alice.id}'s data reached {bob.id} (2):" in report
    assert f"{bob.id}'s data reached {alice.id} (1):" in report
    with pytest.raises(IsolationViolationError) as caught:
        detector.assert_clean()
    assert isinstance(caught.value, AssertionError)
    assert isinstance(caught.value, WsResilienceError)
    assert len(caught.value.violations) == 3
    assert str(caught.value) == report
    detector.reset()
    assert detector.violations == []
    detector.assert_clean()
    assert detector.checks == 3  # a running total
    assert detector.observe_received(bob.id, received({"user_id": alice.id}))  # markers kept


def test_violations_are_capped_and_the_rest_counted(tokens: TokenFactory) -> None:
    detector, alice, bob = detector_with(tokens, max_violations=2)
    for _ in range(5):
        detector.observe_received(bob.id, received({"user_id": alice.id}))
    assert len(detector.violations) == 2
    assert detector.violations_dropped == 3
    assert detector.violation_count == 5
    assert "and 3 more" in detector.report()


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="marker_min_length"):
        IsolationDetector(marker_min_length=0)
    with pytest.raises(ValueError, match="max_violations"):
        IsolationDetector(max_violations=0)
