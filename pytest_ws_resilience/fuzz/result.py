"""What a fuzzing run found: `FuzzResult`, its failures and the minimal one.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_ws_resilience.errors import WsFuzzError
from pytest_ws_resilience.fuzz.frames import FuzzFrame, shown
from pytest_ws_resilience.redaction import redact

__all__ = ["MAX_KEPT_FAILURES", "FuzzFailure", "FuzzResult"]

#: Failing examples kept in `FuzzResult.failures` (the count goes on).
MAX_KEPT_FAILURES = 50


@dataclass(frozen=True)
class FuzzFailure:
    """One message the server did not survive, and which property broke."""

    frame: FuzzFrame
    problem: str

    def __str__(self) -> str:
        return f"{self.problem}: {shown(self.frame)}"


@dataclass
class FuzzResult:
    """The outcome of one ``ws_fuzz`` call.

    Attributes:
        examples_run: messages sent (search and shrinking).
        failures: failing messages seen, in order (the first `MAX_KEPT_FAILURES`).
        failure_count: every failing message seen.
        minimal: the failure Hypothesis shrank to (None when nothing failed).
        seed: the Hypothesis seed; ``ws_fuzz(..., seed=seed)`` replays the search.
        profile: the profile's name and where it came from, e.g. "local (default)".
        max_examples: the search budget.
        elapsed_s: wall time of the call.
        reconnects: reconnections after failing messages.
        stopped: why the run stopped early (budget, reconnections, server gone), or None.
        health_checked: whether a health message followed every example.
        replay_hint: how to replay the search (the test's command line, when known).
        first_failure_s: seconds from the start to the first failing message (None
            when nothing failed); the rest of ``elapsed_s`` went to shrinking.
        first_failure_example: the number of that message (1-based).
    """

    examples_run: int = 0
    failures: list[FuzzFailure] = field(default_factory=list)
    failure_count: int = 0
    minimal: FuzzFailure | None = None
    seed: int = 0
    profile: str = ""
    max_examples: int = 0
    elapsed_s: float = 0.0
    reconnects: int = 0
    stopped: str | None = None
    health_checked: bool = True
    replay_hint: str = ""
    first_failure_s: float | None = None
    first_failure_example: int | None = None
    #: Whether the test looked at the verdict (`ok`, `assert_ok`, `report`).
    checked: bool = field(default=False, repr=False, compare=False)

    def add_failure(self, failure: FuzzFailure) -> None:
        """Count a failing message (keep it when fewer than `MAX_KEPT_FAILURES` are)."""
        self.failure_count += 1
        if len(self.failures) < MAX_KEPT_FAILURES:
            self.failures.append(failure)

    @property
    def ok(self) -> bool:
        """Examples ran, none failed and the run was not cut short."""
        self.checked = True
        return self.examples_run > 0 and self.failure_count == 0 and self.stopped is None

    def summary(self) -> str:
        """One line: examples, failures, seed, profile, time."""
        return (
            f"ws_fuzz: {self.examples_run} examples, {self.failure_count} failing, "
            f"{self.reconnects} reconnects, seed {self.seed}, profile {self.profile}, "
            f"{self.elapsed_s:.2f} s"
        )

    def report(self) -> str:
        """The failure text: the minimal message, what broke, and how to replay it."""
        self.checked = True
        lines = [self.summary()]
        if self.first_failure_s is not None:
            lines.append(
                f"first failure at message {self.first_failure_example} after "
                f"{self.first_failure_s:.2f} s; the rest was shrinking"
            )
        if self.examples_run == 0:
            lines.append("no example ran: nothing was checked")
        if self.stopped is not None:
            lines.append(f"stopped early: {self.stopped}")
        if self.minimal is not None:
            lines += [
                f"minimal failing message (shrunk from {self.failure_count} failing messages):",
                f"  {shown(self.minimal.frame)}",
                f"  broke: {self.minimal.problem}",
                "replay the message: await ws_fuzz.replay(result.minimal.frame)",
                f"replay the search: ws_fuzz(..., seed={self.seed})"
                + (f", or {self.replay_hint}" if self.replay_hint else ""),
            ]
        return redact("\n".join(lines))

    def assert_ok(self) -> None:
        """Raise `WsFuzzError` with `report` unless `ok`.

        Raises:
            WsFuzzError: a message broke a property, no example ran, or the run
                stopped early.
        """
        if not self.ok:
            raise WsFuzzError(self.report())
