"""What a violation shows and the report (`isolation.violation`): redaction, truncation,
grouping, the cap; as pure logic: no sockets, no loop.

Violations are found by a real detector over frames built with a real `EventLog`.
"""

from __future__ import annotations

import json

import pytest

from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.errors import IsolationViolationError, WsResilienceError
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.markers import EMAIL, TOKEN, USER_ID
from pytest_ws_resilience.isolation.violation import IsolationViolation, format_report


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


def received(obj: object, log: EventLog | None = None) -> LogRecord:
    """A frame as the client records it: JSON text, parsed once."""
    return (log or EventLog()).append(json.dumps(obj))


def detector_with(
    tokens: TokenFactory, **options: object
) -> tuple[IsolationDetector, TestUser, TestUser]:
    detector = IsolationDetector(**options)  # type: ignore[arg-type]
    alice, bob = tokens.user(), tokens.user()
    detector.add_user(alice)
    detector.add_user(bob)
    return detector, alice, bob


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


def test_format_report_pins_the_wording() -> None:
    def violation(owner: str, receiver: str, index: int) -> IsolationViolation:
        return IsolationViolation(
            receiver=receiver,
            receiver_connection=f"{receiver}#1 / conn-{index}",
            owner=owner,
            marker_kind=USER_ID,
            marker=f"'{owner}'",
            frame=f'{{"user_id": "{owner}"}}',
            frame_index=index,
            received_at=1.0,
        )

    assert format_report([], dropped=0, checks=7, markers=12, users=3) == (
        "no isolation violations (7 frames checked, 12 markers, 3 users)"
    )
    found = [violation("user-a", "user-b", 4), violation("user-c", "user-b", 5),
             violation("user-a", "user-b", 6)]  # fmt: skip
    assert format_report(found, dropped=2, checks=9, markers=20, users=3).splitlines() == [
        "5 isolation violations: data of one user reached another (9 frames checked, 20 markers)",
        "user-a's data reached user-b (2):",
        "  - user-b (connection user-b#1 / conn-4) received a frame holding user-a's id "
        """marker 'user-a' (frame #4): {"user_id": "user-a"}""",
        "  - user-b (connection user-b#1 / conn-6) received a frame holding user-a's id "
        """marker 'user-a' (frame #6): {"user_id": "user-a"}""",
        "user-c's data reached user-b (1):",
        "  - user-b (connection user-b#1 / conn-5) received a frame holding user-c's id "
        """marker 'user-c' (frame #5): {"user_id": "user-c"}""",
        "... and 2 more (max_violations reached)",
    ]
