"""The ``ws_isolation`` fixture's object: an isolation detector plus the test's verdict.

Pure, no I/O. The detector only finds violations; whether they fail the test is a
separate decision, taken here: a test may declare it provokes violations on purpose
(to prove a leak is caught), except under the ``websocket_security`` marker, where
the guard is strict. The verdict is asked twice (after the test body, and at teardown
for frames that arrived late), so each violation is reported once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_ws_resilience.isolation.detector import IsolationDetector

if TYPE_CHECKING:
    from pytest_ws_resilience.client.tokens import TestUser
    from pytest_ws_resilience.isolation.violation import IsolationViolation

__all__ = ["IsolationGuard"]


class IsolationGuard:
    """The ``ws_isolation`` fixture: an `IsolationDetector` plus the test's verdict.

    Any violation fails the test, unless the test declared it expects them with
    `expect_violations` (to assert on them, e.g. to prove a leak is caught). Under the
    ``websocket_security`` marker the guard is strict: violations cannot be expected.
    """

    __test__ = False

    def __init__(self, detector: IsolationDetector, *, strict: bool = False) -> None:
        self.detector = detector
        self.strict = strict
        self._expected = False
        self._reported = 0

    def __repr__(self) -> str:
        return (
            f"IsolationGuard(strict={self.strict}, violations={len(self.violations)}, "
            f"checks={self.detector.checks})"
        )

    @property
    def violations(self) -> list[IsolationViolation]:
        return self.detector.violations

    @property
    def expecting_violations(self) -> bool:
        """True once the test declared it provokes violations (`expect_violations`)."""
        return self._expected

    @property
    def checks(self) -> int:
        """Frames scanned so far (a test asserting zero violations can check it is > 0)."""
        return self.detector.checks

    def allow(self, *values: str) -> None:
        """Values legitimately shared between users: never violations."""
        self.detector.allow(*values)

    def allow_pattern(self, pattern: str) -> None:
        self.detector.allow_pattern(pattern)

    def register(self, user: TestUser | str, marker: str) -> None:
        """Make ``marker`` belong to ``user`` (a `TestUser` or a user id)."""
        self.detector.register(user, marker)

    def expect_violations(self) -> None:
        """Declare that this test provokes violations and asserts on them itself.

        Raises:
            RuntimeError: under ``websocket_security``, where every violation fails.
        """
        if self.strict:
            raise RuntimeError(
                "expect_violations() is not allowed in a websocket_security test: "
                "there every isolation violation fails the test"
            )
        self._expected = True

    def verdict(self) -> str | None:
        """The report of violations neither expected nor reported yet; None if none.

        Asked after the test body (so the test itself fails) and again at teardown (for
        frames that arrived late); each violation is reported once.
        """
        if self._expected or len(self.violations) <= self._reported:
            return None
        self._reported = len(self.violations)
        return self.detector.report()
