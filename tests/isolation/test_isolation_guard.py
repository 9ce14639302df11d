"""The ``ws_isolation`` verdict (`isolation.guard`): each violation reported once, expected
violations silenced, strict mode refusing to expect any; pure, without sockets."""

from __future__ import annotations

import json

import pytest

from pytest_ws_resilience.client.eventlog import EventLog
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
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
