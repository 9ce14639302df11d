"""What a distributed run measured, from Locust's own statistics into a `StormResult`.

Pure. The Locust master (`pytest_ws_resilience.locust.user`, when it quits) writes one
JSON document: its aggregated request statistics (every request event of every
worker, by name: counts and Locust's response-time histogram), its error table, each
worker's own counts (from the workers' reports), and how many users finished the
scenario. `distributed_result` turns that document into a `DistributedResult`, the
same `StormResult` ``ws_storm`` returns (distributions, errors by kind, thresholds,
report card) plus each worker's share.

Precision: Locust keeps response times as a histogram rounded to whole milliseconds
below 100 ms, to 10 ms up to 1 s and to 100 ms above; percentiles computed from it
carry that rounding. Failed steps count in Locust's histogram too (a failed connect
has a time); the error counts say how many.

Error kinds: every failure event's text starts with ``[kind]`` (`failure_text`), so
the master's error table counts by kind: ``timeout``, ``refused``, ``reset``,
``auth``, ``closed``, ``other``, ``contract`` and ``isolation`` (the detector's
report).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_ws_resilience.load.error_kinds import ERROR_KINDS
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.redaction import redact

__all__ = [
    "CONNECT",
    "ISOLATION",
    "REQUEST_TYPE",
    "RUN_ROUTE",
    "DistributedResult",
    "WorkerShare",
    "distributed_result",
    "failure_text",
    "kind_of_failure",
]

#: The route of a serving master's web UI that says how the current run goes.
RUN_ROUTE = "/ws-resilience/run"
#: The request type of every event this package reports to Locust.
REQUEST_TYPE = "WS"
#: The name of connect events (the player's ``connect`` step).
CONNECT = "connect"
#: The name (and error kind) of an isolation violation found by a worker's detector.
ISOLATION = "isolation"
# Lines of the first isolation report `DistributedResult.describe` shows.
_REPORT_LINES = 8
_KIND_RE = re.compile(r"^\[([a-z_]+)\] ")


def failure_text(kind: str, message: str) -> str:
    """The text of a failure event: ``[kind] message`` (redacted)."""
    return f"[{kind}] {redact(message)}"


def kind_of_failure(text: str) -> str:
    """The kind `failure_text` put first; ``other`` when there is none.

    Locust stores an exception's text as ``ClassName('text')`` or as the bare text,
    so the marker is looked for after an optional ``Name('`` prefix.
    """
    body = text.split("(", 1)[1].lstrip("'\"") if re.match(r"^\w+\(", text) else text
    match = _KIND_RE.match(body)
    return match.group(1) if match else "other"


@dataclass(frozen=True)
class WorkerShare:
    """What one Locust worker did: ``connects`` connect events (failed ones included),
    ``requests`` events in all, ``failures`` of them failed."""

    worker: str
    connects: int = 0
    requests: int = 0
    failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "connects": self.connects,
            "requests": self.requests,
            "failures": self.failures,
        }


@dataclass
class DistributedResult(StormResult):
    """A `StormResult` of a run on Locust's workers, plus each worker's share.

    Attributes:
        workers: each worker's share, by Locust's worker id.
        users_finished: users that played the scenario to its end (passed or not).
        users_passed: users whose every step passed.
        isolation_reports: the isolation reports the workers sent (redacted).
    """

    workers: dict[str, WorkerShare] = field(default_factory=dict)
    users_finished: int = 0
    users_passed: int = 0
    isolation_reports: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [super().describe()]
        lines.append(
            f"  users: {self.users_finished}/{self.attempted} finished, "
            f"{self.users_passed} passed every step"
        )
        total = sum(share.connects for share in self.workers.values())
        for share in sorted(self.workers.values(), key=lambda s: s.worker):
            lines.append(
                f"  worker {share.worker}: {share.connects} connects "
                f"({share.connects / total:.0%} of {total}), {share.failures} failures"
                if total
                else f"  worker {share.worker}: no connect"
            )
        if self.isolation_reports:
            lines.append(f"  isolation reports from the workers: {len(self.isolation_reports)}")
            first = self.isolation_reports[0].splitlines()
            lines.extend(f"    {line}" for line in first[:_REPORT_LINES])
            if len(first) > _REPORT_LINES:
                lines.append(f"    ... {len(first) - _REPORT_LINES} more lines")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        document = super().as_dict()
        document["workers"] = [s.as_dict() for s in self.workers.values()]
        document["users_finished"] = self.users_finished
        document["users_passed"] = self.users_passed
        document["isolation_reports"] = list(self.isolation_reports[:10])
        return document


def _expand(histogram: Mapping[str, int] | Mapping[int, int]) -> list[float]:
    """Locust's ``{rounded ms: count}`` as one sample per request, in ascending order."""
    samples: list[float] = []
    for value, count in sorted(((float(k), int(v)) for k, v in histogram.items())):
        samples.extend([value] * count)
    return samples


def _entries(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in document.get("stats", ()) if e.get("method") == REQUEST_TYPE]


def distributed_result(document: Mapping[str, Any], *, label: str, users: int) -> DistributedResult:
    """The `DistributedResult` of the master's statistics document.

    Args:
        document: what the master wrote (see the module docstring).
        label: names the run in reports.
        users: the users the run spawned (``attempted``).
    """
    # `ERROR_KINDS` (a broken contract included) and what only a worker's detector finds.
    errors = {**dict.fromkeys(ERROR_KINDS, 0), ISOLATION: 0}
    # A scenario's result, as `ws_storm.run` makes it: the same fields from Locust's entries.
    result = DistributedResult("scenario", label, attempted=users, errors=errors)
    for entry in _entries(document):
        name = str(entry.get("name", ""))
        samples = _expand(entry.get("response_times", {}))
        passed = int(entry.get("num_requests", 0)) - int(entry.get("num_failures", 0))
        if samples and name != ISOLATION:
            result.step_ms.setdefault(name, []).extend(samples)
        if name.startswith("contract:"):
            result.contracts_checked += passed
        if name == CONNECT:
            result.connect_ms.extend(samples)
        elif name.startswith("rt:"):
            requests = int(entry.get("num_requests", 0))
            result.round_trip_ms.extend(samples)
            result.messages_sent += requests
            result.replies_received += requests - int(entry.get("num_failures", 0))
    for error in document.get("errors", ()):
        if error.get("method") != REQUEST_TYPE:
            continue
        text = str(error.get("error", ""))
        kind = kind_of_failure(text)
        if kind not in result.errors:
            result.errors[kind] = 0
        for _ in range(int(error.get("occurrences", 1))):
            result.record_error(kind, text)
        if kind == ISOLATION:
            result.isolation_reports.append(redact(text))
    example = result.error_examples.get(ISOLATION)
    if example is not None and example.count("\n") >= _REPORT_LINES:
        head = "\n".join(example.splitlines()[:_REPORT_LINES])
        result.error_examples[ISOLATION] = f"{head}\n... (whole reports: isolation_reports)"
    result.users_finished = int(document.get("users_finished", 0))
    result.users_passed = int(document.get("users_passed", 0))
    result.succeeded = result.users_passed
    result.duration_s = float(document.get("duration_s", 0.0))
    for worker, counts in sorted(document.get("workers", {}).items()):
        result.workers[worker] = WorkerShare(
            worker,
            connects=int(counts.get("connects", 0)),
            requests=int(counts.get("requests", 0)),
            failures=int(counts.get("failures", 0)),
        )
    return result
