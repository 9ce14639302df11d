"""What a race run found: the rounds, the failing one, and how to replay it.

Pure, no I/O. ``ws_isolation.race(action, users=20, rounds=50)`` releases fresh clients'
connects and then their actions together, round after round, each round with its own
seeded jitter (`pytest_ws_resilience.client.jitter`); the run stops at the first round
in which the guard found something (the detector, a rule) or an action failed. The
seed of that round, given back with ``rounds=1``, draws the same jitter again: the
replay line says so. The runner is `isolation/runs.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RaceResult", "RoundOutcome"]


@dataclass(frozen=True)
class RoundOutcome:
    """One round: its number, its seed, and what it found.

    Attributes:
        number: 1-based.
        seed: the round's seed (``race(..., seed=<it>, rounds=1)`` replays it).
        findings: guard findings made during the round (detector and rules).
        errors: lines naming the clients whose connect or action failed, and how.
        notes: what the round could not do as asked (a stream that never went quiet).
    """

    number: int
    seed: int
    findings: int = 0
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def caught(self) -> bool:
        return bool(self.findings or self.errors)


@dataclass(frozen=True)
class RaceResult:
    """The outcome of ``ws_isolation.race(...)``.

    Attributes:
        users: clients per round.
        rounds: rounds asked for.
        seed: the base seed (round 1's seed; random when none was given).
        jitter: the widest per-client delay after each release, seconds.
        outcomes: every round run, in order; the last is the failing one when caught.
        report: the guard's report at the failing round ("" when clean).
    """

    users: int
    rounds: int
    seed: int
    jitter: float
    outcomes: tuple[RoundOutcome, ...]
    report: str = ""

    @property
    def caught(self) -> bool:
        """True when a round found something (the run stopped there)."""
        return bool(self.outcomes) and self.outcomes[-1].caught

    @property
    def failing_round(self) -> RoundOutcome | None:
        return self.outcomes[-1] if self.caught else None

    @property
    def rounds_run(self) -> int:
        return len(self.outcomes)

    def replay_line(self) -> str:
        """The line naming the failing round and how to replay it (or the clean line)."""
        failing = self.failing_round
        if failing is None:
            return (
                f"race clean: {self.rounds_run} round(s) of {self.users} users, "
                f"base seed {self.seed}, jitter {self.jitter * 1000:g} ms"
            )
        return (
            f"race caught in round {failing.number} of {self.rounds} (seed {failing.seed}): "
            f"replay with ws_isolation.race(..., seed={failing.seed}, rounds=1)"
        )

    def failure(self) -> str:
        """The failure text: the replay line, the round's errors and notes, the report."""
        failing = self.failing_round
        if failing is None:
            return self.replay_line()
        lines = [self.replay_line()]
        if failing.findings:
            lines.append(f"{failing.findings} isolation finding(s) in that round:")
        lines.extend(f"  {error}" for error in failing.errors)
        lines.extend(f"  note: {note}" for note in failing.notes)
        if self.report:
            lines.append(self.report)
        lines.append(self.replay_line())  # again at the end: long reports push the first away
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.replay_line()
