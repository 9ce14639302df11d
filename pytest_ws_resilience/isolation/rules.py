"""Isolation rules that need no marker: what a rule finds, and how findings are reported.

Pure, no I/O. The detector finds another user's *strings* in a frame; a server whose
events carry only integers, or that relabels an event with the receiver's room, leaks
without showing one. Rules judge frames by what the test declared once instead: which
scopes a connection may see (``isolation/scopes.py``), how a stream's sequence numbers
must run (``isolation/streams.py``). A rule is a `ClientObserver` the test's
`IsolationGuard` attaches to every watched client, beside the detector, and its
findings (`RuleViolation`) fail the test in the same report as content leaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pytest_ws_resilience.isolation.frames import frame_text
from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.eventlog import LogRecord

__all__ = [
    "FrameRule",
    "RuleFindings",
    "RuleViolation",
    "format_rule_report",
    "receiver_of",
    "show_rule_frame",
    "span",
    "violation_lines",
]

# How much of a frame a rule violation shows.
_FRAME_CHARS = 300
# How many numbers a finding names before it abbreviates.
_NAMED = 10


@dataclass(frozen=True)
class RuleViolation:
    """One finding of a rule: a frame the receiver should not have had, a lost or a
    repeated event.

    Attributes:
        kind: what is wrong: ``scope`` (a scope the receiver was not entitled to),
            ``gap``, ``duplicate``, ``out_of_order``, ``total_order``, ``lost``
            (missing from a replay), ``replayed_twice``; a rule may add its own.
        rule: the rule as declared, e.g. ``scope 'room' (field 'room')``.
        receiver: id of the receiving user (or the client's name).
        connection: the receiving connection: the client's name and connection id.
        message: one line saying what is wrong.
        frames: the offending frames, redacted and truncated.
        detail: more lines (the receiver's entitlement timeline, the frames around).
        frame_index: index of the (last) offending frame in the receiver's event log;
            -1 when the finding is about a frame that never came.
    """

    kind: str
    rule: str
    receiver: str
    connection: str
    message: str
    frames: tuple[str, ...] = ()
    detail: tuple[str, ...] = ()
    frame_index: int = -1

    def __str__(self) -> str:
        where = f" (frame #{self.frame_index})" if self.frame_index >= 0 else ""
        return (
            f"{self.receiver} (connection {self.connection}){where}: [{self.kind}] {self.message}"
        )

    def lines(self) -> list[str]:
        """The violation as report lines: itself, its frames, its detail."""
        found = [str(self)]
        found.extend(f"    frame: {frame}" for frame in self.frames)
        found.extend(f"    {line}" for line in self.detail)
        return found


def show_rule_frame(raw: str | bytes) -> str:
    """A frame as a rule violation shows it: redacted and truncated."""
    text = redact(frame_text(raw))
    return text if len(text) <= _FRAME_CHARS else text[: _FRAME_CHARS - 3] + "..."


def span(numbers: Sequence[int]) -> str:
    """Numbers as a finding names them: ``3``, ``3, 4, 5``, ``3..999 (997 numbers)``."""
    if len(numbers) <= _NAMED:
        return ", ".join(map(str, numbers))
    return f"{numbers[0]}..{numbers[-1]} ({len(numbers)} numbers)"


def receiver_of(client: WsClient) -> tuple[str, str]:
    """``(receiver, connection)`` names of a client, as violations show them."""
    user = client.user
    receiver = user.id if user is not None else client.name
    connection_id = client.connection_id
    connection = client.name if connection_id is None else f"{client.name} / {connection_id}"
    return receiver, connection


class FrameRule(Protocol):
    """A rule checked on every frame of every watched client (a `ClientObserver`).

    ``violations`` are kept in the order found; ``checks`` counts the frames the rule
    judged (frames it does not apply to are not counted). ``finish`` runs at the
    test's teardown, before the last verdict: a rule may judge what it could not
    while frames were coming. ``nothing_checked`` says why the rule verified nothing
    (None when it did): a declared rule that never applied must not pass quietly.
    """

    @property
    def name(self) -> str:
        """The rule as declared, for reports."""

    @property
    def violations(self) -> list[RuleViolation]:
        """Findings so far, in order."""

    @property
    def checks(self) -> int:
        """Frames judged so far."""

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        """A frame arrived (after it was logged)."""

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        """A message is about to be sent."""

    def on_canary(self, client: WsClient, marker: str) -> None:
        """A canary was made (rules ignore it; part of `ClientObserver`)."""

    def finish(self) -> None:
        """The test is over: judge what could only be judged at the end."""

    def nothing_checked(self) -> str | None:
        """Why the rule verified nothing, in one line; None when it judged frames."""


class RuleFindings:
    """What rules keep alike: their findings, the count of frames they judged, and no
    interest in canaries (the detector's) or, unless they say so, in sends; nothing left
    to judge at the end unless they say so. A rule subclasses it and adds ``name``,
    ``on_receive`` and ``nothing_checked``."""

    __slots__ = ("_checks", "_violations")

    def __init__(self) -> None:
        self._violations: list[RuleViolation] = []
        self._checks = 0

    @property
    def violations(self) -> list[RuleViolation]:
        """Findings so far, in order."""
        return self._violations

    @property
    def checks(self) -> int:
        """Frames judged so far."""
        return self._checks

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        """Sends are not judged."""

    def on_canary(self, client: WsClient, marker: str) -> None:
        """Canaries are the detector's."""

    def finish(self) -> None:
        """Nothing is left to judge at the end."""


def format_rule_report(rules: Sequence[FrameRule]) -> list[str]:
    """Report lines of every rule: a section per rule with violations, then one line
    per clean rule. Empty when there is no rule."""
    lines: list[str] = []
    clean: list[str] = []
    for rule in rules:
        found = rule.violations
        if not found:
            clean.append(f"{rule.name}: clean ({rule.checks} frames checked)")
            continue
        plural = "s" if len(found) > 1 else ""
        lines.append(f"{rule.name}: {len(found)} violation{plural} ({rule.checks} frames checked):")
        lines.extend(violation_lines(found))
    return lines + clean


def violation_lines(violations: Sequence[RuleViolation]) -> list[str]:
    """Violations as the lines of a report section: a bullet each, its frames and
    detail indented under it."""
    lines: list[str] = []
    for violation in violations:
        first, *rest = violation.lines()
        lines.append(f"  - {first}")
        lines.extend(f"  {line}" for line in rest)
    return lines
