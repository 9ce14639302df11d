"""The one rule for checks that could pass having checked nothing: no silent green.

Pure, no I/O. A check that found no fault is only worth something if it looked at
something: an isolation detector that scanned no frame, or had no marker to look for;
a chaos fault that never fired, or whose selector raised; a storm that sent messages
and saw no reply. Each such place says so with a `NothingChecked` finding, built where
the check lives (`isolation.guard`, `chaos.message_faults`, `load.results`), and this
module decides, once for all of them, what a finding does to the test:

- under ``websocket_security`` (strict), or when the user said the check must act
  (``expect_fire=True`` on a fault), the test **fails** with the finding's line;
- otherwise it passes with a warning (`WsNothingCheckedWarning` or a subclass), which
  ``-W error::pytest_ws_resilience.errors.WsNothingCheckedWarning`` turns into a failure.

A wait with no criteria at all (``expect()``) is refused outright instead: it cannot be
made meaningful after the fact (`client.matching.NO_CRITERIA`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["AREAS", "NothingChecked", "Severity", "severity", "split_findings"]

#: Where a finding comes from; the plugin picks the warning class by it.
AREAS: tuple[str, ...] = ("isolation", "chaos", "load")

#: What a finding does to the test.
Severity = Literal["failure", "warning"]


@dataclass(frozen=True, slots=True)
class NothingChecked:
    """A check that passed without checking anything, and why.

    Attributes:
        area: one of `AREAS`.
        subject: what did not check ("the isolation detector", "fault drop#1 on chaos").
        reason: why nothing was checked, in words a user can act on.
        required: the user declared the check must act (``expect_fire=True``): a
            failure even outside strict tests.
    """

    area: str
    subject: str
    reason: str
    required: bool = False

    def __post_init__(self) -> None:
        if self.area not in AREAS:
            raise ValueError(f"unknown area {self.area!r}; valid: {', '.join(AREAS)}")

    def __str__(self) -> str:
        return f"{self.subject}: nothing was checked: {self.reason}"


def severity(finding: NothingChecked, *, strict: bool) -> Severity:
    """``"failure"`` under strict settings or for a required check, else ``"warning"``."""
    return "failure" if strict or finding.required else "warning"


def split_findings(
    findings: Iterable[NothingChecked], *, strict: bool
) -> tuple[list[NothingChecked], list[NothingChecked]]:
    """``(failures, warnings)`` of ``findings``, each in order (see `severity`)."""
    failures: list[NothingChecked] = []
    warnings: list[NothingChecked] = []
    for finding in findings:
        (failures if severity(finding, strict=strict) == "failure" else warnings).append(finding)
    return failures, warnings
