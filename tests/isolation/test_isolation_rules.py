"""The rules framework: a rule's findings join the guard's report and verdicts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.guard import IsolationGuard
from pytest_ws_resilience.isolation.rules import RuleViolation, format_rule_report


class CountingRule:
    """A rule without I/O: every finding is handed in by the test."""

    def __init__(self, name: str = "toy rule", *, idle: str | None = None) -> None:
        self.name = name
        self.violations: list[RuleViolation] = []
        self.checks = 0
        self.finished = 0
        self._idle = idle

    def on_receive(self, client: Any, record: Any) -> None:
        self.checks += 1

    def on_send(self, client: Any, raw: Any, data: Any) -> None:
        pass

    def on_canary(self, client: Any, marker: str) -> None:
        pass

    def finish(self) -> None:
        self.finished += 1

    def nothing_checked(self) -> str | None:
        return self._idle

    def find(self, kind: str = "scope", index: int = 3) -> RuleViolation:
        found = RuleViolation(
            kind,
            self.name,
            "user-b",
            "c1 / 7",
            "room 'a' is not entitled",
            frames=('{"room": "a"}',),
            detail=("timeline: room 'b' from 0.00s",),
            frame_index=index,
        )
        self.violations.append(found)
        return found


def test_a_rule_violation_fails_the_verdict_once_with_its_report() -> None:
    guard = IsolationGuard(IsolationDetector())
    rule = guard.add_rule(CountingRule())
    assert guard.verdict() is None
    assert isinstance(rule, CountingRule)
    rule.find()
    report = guard.verdict()
    assert report is not None
    assert report.splitlines()[0].startswith("1 isolation rule violation:")
    assert "user-b (connection c1 / 7) (frame #3): [scope] room 'a' is not entitled" in report
    assert 'frame: {"room": "a"}' in report and "timeline: room 'b'" in report
    assert guard.verdict() is None  # once
    assert guard.violation_count == 1 and guard.rule_violations == rule.violations


def test_teardown_finishes_every_rule_and_fails_on_a_first_late_finding() -> None:
    guard = IsolationGuard(IsolationDetector())
    rule = CountingRule()
    guard.add_rule(rule)
    assert guard.verdict() is None
    rule.find()
    failure, note = guard.teardown_verdict()
    assert rule.finished == 1
    assert failure is not None and note is None


def test_expected_violations_do_not_fail() -> None:
    guard = IsolationGuard(IsolationDetector())
    rule = CountingRule()
    guard.add_rule(rule)
    guard.expect_violations()
    rule.find()
    assert guard.verdict() is None and guard.teardown_verdict() == (None, None)


def test_a_rule_added_after_binding_reaches_the_watch_once() -> None:
    guard = IsolationGuard(IsolationDetector())
    attached: list[object] = []
    guard.bind(attached.append)
    rule = CountingRule()
    guard.add_rule(rule)
    guard.add_rule(rule)
    assert attached == [rule]


def test_the_clean_report_names_each_rule_and_its_checks() -> None:
    guard = IsolationGuard(IsolationDetector())
    rule = CountingRule("stream 'room_seq' per 'room'")
    guard.add_rule(rule)
    rule.on_receive(None, None)
    lines = guard.report().splitlines()
    assert lines[0].startswith("no isolation violations")
    assert lines[1] == "stream 'room_seq' per 'room': clean (1 frames checked)"
    assert format_rule_report([]) == []


def test_an_idle_rule_is_a_nothing_checked_finding_a_busy_one_covers_the_detector() -> None:
    idle = IsolationGuard(
        IsolationDetector(identity=False, taint=False), clients_seen=lambda: (2, 2)
    )
    idle.add_rule(CountingRule("scope 'room'", idle="no frame carried field 'room'"))
    finding = idle.nothing_checked()
    assert finding is not None and "no frame carried field 'room'" in str(finding)

    busy = IsolationGuard(
        IsolationDetector(identity=False, taint=False), clients_seen=lambda: (2, 2)
    )
    busy.add_rule(CountingRule("scope 'room'"))
    busy.detector.checks = 5
    assert busy.nothing_checked() is None


def test_resume_takes_the_sequence_field_of_the_one_stream_rule_or_asks_for_it() -> None:
    guard = IsolationGuard(IsolationDetector())
    client: Any = object()  # never reached: the argument is judged first
    with pytest.raises(ValueError, match=r"give sequence= .*: 0 stream rules declare one"):
        asyncio.run(guard.resume(client, {"type": "resume"}))
    guard.stream("room_seq", per="room")
    guard.stream("seq")
    with pytest.raises(ValueError, match=r"give sequence= .*: 2 stream rules declare one"):
        asyncio.run(guard.resume(client, {"type": "resume"}))
