"""The ``ws_isolation`` verdict (`isolation.guard`): each violation reported once, expected
violations silenced, strict mode refusing to expect any; pure, without sockets."""

from __future__ import annotations

import json

import pytest

from pytest_ws_resilience.client.eventlog import EventLog
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.errors import IsolationViolationError
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.guard import IsolationGuard


@pytest.fixture
def users() -> tuple[TestUser, TestUser]:
    tokens = TokenFactory()
    return tokens.user(), tokens.user()


def leak(guard: IsolationGuard, owner: TestUser, receiver: TestUser) -> None:
    """``receiver`` gets a frame naming ``owner``: one violation."""
    record = EventLog().append(json.dumps({"user_id": owner.id}))
    guard.detector.observe_received(receiver.id, record)


def guarded(users: tuple[TestUser, TestUser], *, strict: bool = False) -> IsolationGuard:
    guard = IsolationGuard(IsolationDetector(), strict=strict)
    for user in users:
        guard.detector.add_user(user)
    return guard


def test_a_clean_test_has_no_verdict(users: tuple[TestUser, TestUser]) -> None:
    guard = guarded(users)
    guard.detector.observe_received(users[0].id, EventLog().append('{"ok": true}'))
    assert guard.verdict() is None
    assert guard.violations == [] and guard.checks == 1


def test_each_violation_is_reported_once(users: tuple[TestUser, TestUser]) -> None:
    alice, bob = users
    guard = guarded(users)
    leak(guard, alice, bob)
    first = guard.verdict()
    assert first is not None and first == guard.detector.report()
    assert first.startswith("1 isolation violation:")
    assert guard.verdict() is None  # asked again at teardown: nothing new
    leak(guard, bob, alice)  # a frame that came late
    second = guard.verdict()
    assert second is not None and second.startswith("2 isolation violations")


def test_expected_violations_give_no_verdict(users: tuple[TestUser, TestUser]) -> None:
    alice, bob = users
    guard = guarded(users)
    guard.expect_violations()
    leak(guard, alice, bob)
    assert guard.expecting_violations
    assert guard.verdict() is None
    assert [v.owner for v in guard.violations] == [alice.id]


def test_a_strict_guard_refuses_to_expect_violations(users: tuple[TestUser, TestUser]) -> None:
    guard = guarded(users, strict=True)
    with pytest.raises(RuntimeError, match="not allowed in a websocket_security test"):
        guard.expect_violations()
    assert not guard.expecting_violations
    leak(guard, *users)
    assert guard.verdict() is not None


def test_allow_and_register_go_to_the_detector(users: tuple[TestUser, TestUser]) -> None:
    alice, bob = users
    guard = guarded(users)
    guard.register(alice, "project-zebra")
    guard.register(alice.id, "room-12345")
    assert guard.detector.owner_of("project-zebra") == alice.id
    assert guard.detector.owner_of("room-12345") == alice.id
    guard.allow("project-zebra")
    guard.allow_pattern(r"room-\d+")
    for text in ("project-zebra", "room-12345"):
        assert guard.detector.owner_of(text) is None
        guard.detector.observe_received(bob.id, EventLog().append(json.dumps({"t": text})))
    assert guard.verdict() is None
    assert repr(guard) == "IsolationGuard(strict=False, violations=0, checks=2)"


# -- one failure per leak --------------------------------------------------------------------


def test_a_leak_reported_after_the_body_only_adds_a_note_at_teardown(
    users: tuple[TestUser, TestUser],
) -> None:
    alice, bob = users
    guard = guarded(users)
    leak(guard, alice, bob)
    assert guard.verdict() is not None  # the body's verdict fails the test
    leak(guard, alice, bob)  # the rest of the stream, after the body
    failure, note = guard.teardown_verdict()
    assert failure is None
    assert note is not None and note.startswith("2 isolation violations")
    assert guard.teardown_verdict() == (None, None)
    assert guard.failed


def test_a_leak_first_seen_at_teardown_fails_it(users: tuple[TestUser, TestUser]) -> None:
    alice, bob = users
    guard = guarded(users)
    assert guard.verdict() is None
    leak(guard, alice, bob)
    failure, note = guard.teardown_verdict()
    assert failure is not None and failure.startswith("1 isolation violation:")
    assert note is None


def test_expected_violations_give_no_teardown_verdict(users: tuple[TestUser, TestUser]) -> None:
    guard = guarded(users)
    guard.expect_violations()
    leak(guard, *users)
    assert guard.teardown_verdict() == (None, None)
    assert not guard.failed


# -- the documented surface -------------------------------------------------------------------


def test_report_and_assert_clean_speak_for_the_detector(users: tuple[TestUser, TestUser]) -> None:
    guard = guarded(users)
    assert guard.report().startswith("no isolation violations")
    guard.assert_clean()
    leak(guard, *users)
    assert guard.report() == guard.detector.report()
    with pytest.raises(IsolationViolationError, match="1 isolation violation"):
        guard.assert_clean()


def test_configure_switches_taint_and_identity_for_markers_filed_before(
    users: tuple[TestUser, TestUser],
) -> None:
    alice, bob = users
    guard = guarded(users)
    guard.detector.observe_sent(alice.id, json.dumps({"text": "alice private note"}))
    guard.configure(taint=False, identity=False)
    for text in ("alice private note", alice.id):
        guard.detector.observe_received(bob.id, EventLog().append(json.dumps({"t": text})))
    assert guard.violations == []
    guard.configure(identity=True)
    leak(guard, alice, bob)
    assert [v.marker_kind for v in guard.violations] == ["id"]


def test_configure_takes_allowlists_and_extra_markers(users: tuple[TestUser, TestUser]) -> None:
    alice = users[0]
    guard = guarded(users)
    guard.configure(
        allow=["tenant-acme"], allow_patterns=[r"room-\d+"], markers={alice: ["zebra-project"]}
    )
    assert guard.detector.owner_of("zebra-project") == alice.id
    guard.detector.register(alice, "room-12345")
    assert guard.detector.owner_of("room-12345") is None
    assert guard.detector.owner_of("tenant-acme") is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"taint": "no"}, "configure\\(\\): taint must be True or False, got 'no'"),
        ({"allow": [1]}, "allow must be a list of strings, got 1 among them"),
        ({"markers": ["x"]}, "markers must be a mapping"),
        ({"taint_min_length": 0}, "taint_min_length must be an int >= 1, got 0"),
    ],
)
def test_configure_rejects_bad_values_naming_the_option(
    users: tuple[TestUser, TestUser], options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        guarded(users).configure(**options)  # type: ignore[arg-type]
