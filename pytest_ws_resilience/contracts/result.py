"""What a contract check found: the run's frames, the broken rules, the verdict and
its expected-vs-observed transcript.

Pure data, no I/O. A `ContractResult` is what `ContractChecker.finish` returns and what
`ContractViolationError` carries; its transcript is the failure message a user reads,
so it lays the contract's steps beside the frames that came and marks each problem on
the line of the frame that shows it. Everything shown is redacted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from pytest_ws_resilience.errors import ContractViolationError
from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    from pytest_ws_resilience.contracts.contract import EventContract

__all__ = ["ContractResult", "ContractViolation", "ObservedEvent", "ViolationKind"]

ViolationKind = Literal["missing", "duplicated", "out_of_order", "late"]


@dataclasses.dataclass(frozen=True, slots=True)
class ObservedEvent:
    """One frame of the checked run: its event name, offset from the run's start, the frame
    (parsed JSON; the text or bytes for a contract naming events with a ``key``)."""

    name: str
    offset: float
    event: Any

    def __repr__(self) -> str:
        return redact(f"ObservedEvent({self.name!r}, +{self.offset:.3f}s, {self.event!r})")


@dataclasses.dataclass(frozen=True, slots=True)
class ContractViolation:
    """One broken rule.

    Attributes:
        kind: ``missing``, ``duplicated``, ``out_of_order`` or ``late``.
        event: the event concerned.
        detail: what happened, one line (for ``missing``: why the check stopped looking).
        index: position in `ContractResult.observed` of the frame showing the problem;
            None for a missing event.
    """

    kind: ViolationKind
    event: str
    detail: str
    index: int | None = None

    def __str__(self) -> str:
        if self.kind == "missing":
            return f"missing {self.event}: {self.detail}"
        return f"{self.kind.replace('_', ' ')}: {self.detail}"


@dataclasses.dataclass(frozen=True, repr=False)
class ContractResult:
    """The verdict on one run: true when no rule was broken.

    Attributes:
        ok: no violations.
        contract: the contract checked.
        run: the correlation value of the run checked (None without correlation, or
            when no event of any run was seen).
        violations: broken rules, in the order they show in the transcript.
        observed: the run's frames, in the order received, through the terminal event.
        reason: why the wait ended before the terminal event; None when it was seen.
    """

    ok: bool
    contract: EventContract
    run: Any
    violations: tuple[ContractViolation, ...]
    observed: tuple[ObservedEvent, ...]
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        problems = ", ".join(f"{v.kind} {v.event}" for v in self.violations)
        return redact(
            f"ContractResult(ok={self.ok}, contract={self.contract.label!r}, run={self.run!r}, "
            f"violations=[{problems}], observed={len(self.observed)})"
        )

    def __str__(self) -> str:
        return self.transcript()

    def raise_for_violations(self) -> None:
        """Raise `ContractViolationError` (with the transcript) unless the run was ok."""
        if not self.ok:
            raise ContractViolationError(self)

    def transcript(self) -> str:
        """Expected vs observed, side by side, one line per step, problems marked."""
        return redact(_transcript(self))


# -- the transcript ------------------------------------------------------------------


def _expected_label(contract: EventContract, name: str) -> str:
    repeatable, optional = name in contract.repeatable, name in contract.optional
    return name + (
        "*" if repeatable and optional else "+" if repeatable else "?" if optional else ""
    )


def _marks(violations: Iterable[ContractViolation]) -> str:
    return "; ".join(f"{v.kind.replace('_', ' ')}: {v.detail}" for v in violations)


def _transcript(result: ContractResult) -> str:
    """Lay the contract's steps beside the observed frames.

    Consecutive frames of one event make one observed step (``x2``). Steps pair up
    when they match; an expected event never seen shows as ``(missing)``; a frame of
    an event already shown (a duplicate, a repeat) gets a line of its own; otherwise
    steps pair by position, which shows a swap as two crossed lines.
    """
    contract = result.contract
    observed = result.observed
    groups: list[tuple[str, int, int]] = []  # (name, first index, count)
    for index, item in enumerate(observed):
        if groups and groups[-1][0] == item.name:
            name, first, count = groups[-1]
            groups[-1] = (name, first, count + 1)
        else:
            groups.append((item.name, index, 1))
    by_index: dict[int, list[ContractViolation]] = {}
    missing: dict[str, list[ContractViolation]] = {}
    for violation in result.violations:
        if violation.index is None:
            missing.setdefault(violation.event, []).append(violation)
        else:
            by_index.setdefault(violation.index, []).append(violation)

    rows: list[tuple[str, str, str, str]] = []  # expected, observed, offset, marks

    def observed_row(expected: str, group: tuple[str, int, int]) -> None:
        name, first, count = group
        label = name if count == 1 else f"{name} x{count}"
        problems = [v for i in range(first, first + count) for v in by_index.get(i, ())]
        rows.append((expected, label, f"+{observed[first].offset:.3f}s", _marks(problems)))

    events = contract.events
    seen = {item.name for item in observed}
    shown: set[str] = set()
    i = j = 0
    while i < len(events) or j < len(groups):
        expected = events[i] if i < len(events) else None
        group = groups[j] if j < len(groups) else None
        if expected is not None and group is not None and group[0] == expected:
            observed_row(_expected_label(contract, expected), group)
            shown.add(expected)
            i, j = i + 1, j + 1
        elif expected is not None and expected not in seen:
            label = "(missing)" if expected in missing else "(not seen)"
            rows.append(
                (_expected_label(contract, expected), label, "", _marks(missing.get(expected, ())))
            )
            i += 1
        elif group is not None and (expected is None or group[0] in shown):
            observed_row("", group)
            shown.add(group[0])
            j += 1
        elif group is not None and expected is not None:
            observed_row(_expected_label(contract, expected), group)
            shown.add(group[0])
            i, j = i + 1, j + 1
        else:  # seen, and already shown beside another expected step
            i += 1

    count = len(result.violations)
    status = "ok" if not count else f"{count} violation{'s' if count > 1 else ''}"
    run = ""
    if contract.correlation is not None:
        run = f", {contract.correlation}={'(none seen)' if result.run is None else result.run}"
    left = max([len("expected")] + [len(row[0]) for row in rows])
    middle = max([len("observed")] + [len(row[1]) for row in rows])
    right = max([0] + [len(row[2]) for row in rows])
    lines = [f"contract {contract.label}{run}: {status}", f"  {'expected':<{left}}  observed"]
    for expected_text, observed_text, offset, marks in rows:
        line = f"  {expected_text:<{left}}  {observed_text:<{middle}}  {offset:>{right}}"
        if marks:
            line += f"   <- {marks}"
        lines.append(line.rstrip())
    return "\n".join(lines)
