"""What the run report keeps of one test, built from plain data (no pytest, no I/O).

The pytest glue (`pytest_ws_resilience.plugin.report`) reads a test's phase reports and
its `TestWatch` and hands the plain facts to `build_record`; everything after that
(aggregation across xdist workers, the terminal summary, JSON and HTML) works on
`TestRecord`, which round-trips through JSON (``as_dict`` / ``from_dict``) so that
workers can ship their records to the controller.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pytest_ws_resilience.client.metrics import ClientMetrics, Counters

__all__ = [
    "OUTCOMES",
    "ClientUsage",
    "ConnectionRecord",
    "IsolationRecord",
    "PhaseResult",
    "TestRecord",
    "build_record",
    "client_usage",
    "count_connections",
    "json_ready",
    "most_first",
    "passed_before_error",
    "test_outcome",
    "uses_connections",
]

#: Every outcome a record can have, in the order reports list them.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


class PhaseResult(NamedTuple):
    """One phase (setup, call, teardown) of a test, as pytest reported it.

    ``start`` / ``stop`` are wall-clock seconds (pytest's ``TestReport.start/stop``).
    A named tuple: three are made for every test of the run.
    """

    when: str
    outcome: str  # "passed", "failed" or "skipped", as in pytest's TestReport
    start: float
    stop: float
    duration: float
    skip_reason: str | None = None
    xfail: bool = False  # the report carries ``wasxfail``


def test_outcome(phases: Sequence[PhaseResult]) -> tuple[str, str | None]:
    """The test's outcome over its phases, as pytest's summary counts it, and the skip
    reason of a skipped test.

    A failure in setup or teardown is an ``error`` (pytest counts a passed test whose
    teardown failed as passed *and* an error; one record keeps the worse).
    """
    by_when = {p.when: p for p in phases}
    setup, call = by_when.get("setup"), by_when.get("call")
    if any(p.outcome == "failed" and p.when != "call" for p in phases):
        return "error", None
    if call is not None and call.xfail:
        return ("xfailed", None) if call.outcome == "skipped" else ("xpassed", None)
    if call is not None and call.outcome == "failed":
        return "failed", None
    for phase in (setup, call):
        if phase is not None and phase.outcome == "skipped":
            if phase.xfail:
                return "xfailed", None
            return "skipped", phase.skip_reason
    return "passed", None


test_outcome.__test__ = False  # type: ignore[attr-defined]


def passed_before_error(phases: Sequence[PhaseResult]) -> bool:
    """True when the test body passed and teardown failed: pytest counts such a test
    as passed *and* as an error, and so does the summary, to agree with pytest's line."""
    by_when = {p.when: p for p in phases}
    call, teardown = by_when.get("call"), by_when.get("teardown")
    return (
        call is not None
        and call.outcome == "passed"
        and not call.xfail
        and teardown is not None
        and teardown.outcome == "failed"
    )


@dataclass(slots=True)
class ConnectionRecord:
    """One connection a test opened: wall-clock span, handshake time, and how it
    ended: its close code (the server's; 1006 when none came) and who closed it
    ("server", "client", "network"), None while still open (a pooled connection).

    Read-only by convention, not frozen: one is made per connection of the run, and a
    frozen dataclass pays for ``object.__setattr__`` on every field it sets.
    """

    client: str
    opened_at: float
    closed_at: float | None
    handshake_ms: float
    auth_method: str | None
    close_code: int | None = None
    closed_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "handshake_ms": self.handshake_ms,
            "auth_method": self.auth_method,
            "close_code": self.close_code,
            "closed_by": self.closed_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConnectionRecord:
        return cls(
            client=str(data["client"]),
            opened_at=float(data["opened_at"]),
            closed_at=None if data.get("closed_at") is None else float(data["closed_at"]),
            handshake_ms=float(data["handshake_ms"]),
            auth_method=data.get("auth_method"),
            close_code=None if data.get("close_code") is None else int(data["close_code"]),
            closed_by=data.get("closed_by"),
        )


@dataclass(slots=True)
class ClientUsage:
    """What one client did during one test: the connections it opened in the test and
    the messages it added (a pooled client's earlier traffic is not counted).

    Not frozen (read-only by convention): one is made for every connection, and a
    frozen dataclass pays a call of ``object.__setattr__`` for each field it sets.
    """

    connections: tuple[ConnectionRecord, ...]
    counters: Counters


def client_usage(
    name: str, metrics: ClientMetrics, *, baseline: Counters | None, since: float
) -> ClientUsage:
    """The part of ``metrics`` that belongs to a test that started at ``since``.

    Args:
        name: the client's name, shown in reports.
        metrics: the client's counters over its whole life.
        baseline: its counters when the test first used it (None: all of them count).
        since: wall time the test started; connections opened before are an earlier
            test's (a pooled connection handed over again).
    """
    connections = tuple(
        ConnectionRecord(
            client=name,
            opened_at=span.opened_at,
            closed_at=span.closed_at,
            handshake_ms=span.handshake_s * 1000.0,
            auth_method=span.auth_method,
            close_code=span.close_code,
            closed_by=span.closed_by,
        )
        for span in metrics.spans
        if span.opened_at >= since
    )
    counters = metrics.counters()
    return ClientUsage(connections, counters - baseline if baseline is not None else counters)


@dataclass(frozen=True)
class IsolationRecord:
    """The isolation detector's work in a test that had ``ws_isolation`` on."""

    checks: int
    violations: int
    strict: bool = False
    #: The test provoked its violations on purpose (``expect_violations()``).
    expected: bool = False

    @property
    def unexpected_violations(self) -> int:
        return 0 if self.expected else self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "violations": self.violations,
            "strict": self.strict,
            "expected": self.expected,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IsolationRecord:
        return cls(
            int(data["checks"]),
            int(data["violations"]),
            bool(data.get("strict")),
            bool(data.get("expected")),
        )


@dataclass(slots=True)
class TestRecord:
    """One test in the run report. Times are wall-clock seconds since the epoch.

    Read-only by convention, not frozen: one is made for every test of the run, and
    a frozen dataclass of 21 fields costs four times as much to make.
    """

    __test__ = False

    nodeid: str
    outcome: str
    worker: str
    started_at: float
    finished_at: float
    duration_s: float
    skip_reason: str | None = None
    connections: tuple[ConnectionRecord, ...] = ()
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0
    isolation: IsolationRecord | None = None
    chaos_faults: Mapping[str, int] = field(default_factory=dict)
    chaos_proxies: int = 0
    services: tuple[str, ...] = ()
    pool_hits: int = 0
    pool_misses: int = 0
    storms: tuple[Mapping[str, Any], ...] = ()
    #: The body passed and teardown failed (``outcome`` is "error"): pytest counts it
    #: once as passed too.
    passed_before_error: bool = False

    @property
    def counted_outcomes(self) -> tuple[str, ...]:
        """The outcomes pytest's summary line counts for this test."""
        return ("passed", self.outcome) if self.passed_before_error else (self.outcome,)

    @property
    def auth_methods(self) -> dict[str, int]:
        """Connections by the auth method that got them accepted."""
        auth: Counter[str] = Counter()
        count_connections(self.connections, auth, Counter(), Counter())
        return dict(auth)

    @property
    def close_codes(self) -> dict[str, int]:
        """Closed connections by close code (as text: JSON keys), most frequent first."""
        codes: Counter[str] = Counter()
        count_connections(self.connections, Counter(), codes, Counter())
        return most_first(codes)

    @property
    def closed_by(self) -> dict[str, int]:
        """Closed connections by who closed them: "server", "client", "network"."""
        closers: Counter[str] = Counter()
        count_connections(self.connections, Counter(), Counter(), closers)
        return most_first(closers)

    @property
    def chaos_applied(self) -> int:
        return sum(self.chaos_faults.values())

    @property
    def used_plugin(self) -> bool:
        """True when the test used the plugin's connections, proxies, pool or load."""
        return bool(
            uses_connections(self.connections, self.messages_sent, self.messages_received)
            or (self.isolation is not None and self.isolation.checks)
            or self.chaos_proxies
            or self.services
            or self.pool_hits
            or self.pool_misses
            or self.storms
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``tests`` entries of the JSON report)."""
        auth: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        closers: Counter[str] = Counter()
        count_connections(self.connections, auth, codes, closers)
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "worker": self.worker,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "skip_reason": self.skip_reason,
            "connections_opened": len(self.connections),
            "connections": [c.as_dict() for c in self.connections],
            "auth_methods": dict(auth),
            "close_codes": most_first(codes),
            "closed_by": most_first(closers),
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "retries": self.retries,
            "isolation": self.isolation.as_dict() if self.isolation else None,
            "chaos": {"proxies": self.chaos_proxies, "faults": dict(self.chaos_faults)},
            "services": list(self.services),
            "pool": {"hits": self.pool_hits, "misses": self.pool_misses},
            "storms": [dict(s) for s in self.storms],
            "passed_before_error": self.passed_before_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRecord:
        chaos = data.get("chaos") or {}
        pool = data.get("pool") or {}
        isolation = data.get("isolation")
        return cls(
            nodeid=str(data["nodeid"]),
            outcome=str(data["outcome"]),
            worker=str(data["worker"]),
            started_at=float(data["started_at"]),
            finished_at=float(data["finished_at"]),
            duration_s=float(data["duration_s"]),
            skip_reason=data.get("skip_reason"),
            connections=tuple(ConnectionRecord.from_dict(c) for c in data.get("connections", ())),
            messages_sent=int(data.get("messages_sent", 0)),
            messages_received=int(data.get("messages_received", 0)),
            bytes_sent=int(data.get("bytes_sent", 0)),
            bytes_received=int(data.get("bytes_received", 0)),
            retries=int(data.get("retries", 0)),
            isolation=IsolationRecord.from_dict(isolation) if isolation else None,
            chaos_faults={str(k): int(v) for k, v in (chaos.get("faults") or {}).items()},
            chaos_proxies=int(chaos.get("proxies", 0)),
            services=tuple(str(s) for s in data.get("services", ())),
            pool_hits=int(pool.get("hits", 0)),
            pool_misses=int(pool.get("misses", 0)),
            storms=tuple(data.get("storms", ())),
            passed_before_error=bool(data.get("passed_before_error", False)),
        )


def uses_connections(connections: tuple[ConnectionRecord, ...], sent: int, received: int) -> bool:
    """Whether a test's clients count as using the plugin: one connected, or carried a
    message (a client made and never connected does not)."""
    return bool(connections or sent or received)


def most_first(counts: Counter[str]) -> dict[str, int]:
    """Most frequent first, then by name: stable output for reports and tests."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def count_connections(
    connections: Iterable[ConnectionRecord],
    auth: Counter[str],
    codes: Counter[str],
    closers: Counter[str],
) -> int:
    """Add each connection to the counts by the auth method that got it accepted
    ("none" without one), by close code (as text: JSON keys) and by who closed it;
    return how many are still open (no close code yet: a pooled connection). One rule
    for a test's record and for the run's summary."""
    still_open = 0
    for c in connections:
        auth[c.auth_method or "none"] += 1
        if c.close_code is None:
            still_open += 1
        else:
            codes[str(c.close_code)] += 1
        if c.closed_by:
            closers[c.closed_by] += 1
    return still_open


def json_ready(value: Any) -> Any:
    """``value`` as plain JSON data (tuples as lists, unknown objects as their text),
    so it survives xdist's channel and ``json.dumps`` alike."""
    return json.loads(json.dumps(value, default=str))


_NO_COUNTERS = Counters()


def build_record(
    nodeid: str,
    phases: Sequence[PhaseResult],
    *,
    worker: str,
    clients: Iterable[ClientUsage] = (),
    isolation: IsolationRecord | None = None,
    chaos_faults: Iterable[Mapping[str, int]] = (),
    services: Iterable[str] = (),
    pool_hits: int = 0,
    pool_misses: int = 0,
    storms: Iterable[Mapping[str, Any]] = (),
) -> TestRecord:
    """The record of one test from its phases and what its watch saw.

    Args:
        chaos_faults: one mapping per chaos proxy of the test, faults applied by kind.
    """
    # Built once per test of the run: the usual case (every phase passed, one connection
    # or none) takes no sort and no second look at the phases.
    if all(p.outcome == "passed" and not p.xfail for p in phases):
        outcome, skip_reason, body_passed = "passed", None, False
    else:
        outcome, skip_reason = test_outcome(phases)
        body_passed = passed_before_error(phases)
    started = finished = duration = 0.0
    for i, phase in enumerate(phases):
        duration += phase.duration
        if i == 0 or phase.start < started:
            started = phase.start
        if i == 0 or phase.stop > finished:
            finished = phase.stop
    usages = list(clients)
    connections: tuple[ConnectionRecord, ...] = ()
    total = _NO_COUNTERS
    if len(usages) == 1:  # the usual case: one client
        total, connections = usages[0].counters, usages[0].connections
    elif usages:
        total = sum((u.counters for u in usages), Counters())
        found = [c for u in usages for c in u.connections]
        found.sort(key=lambda c: c.opened_at)
        connections = tuple(found)
    faults: dict[str, int] = {}
    proxies = 0
    for per_proxy in chaos_faults:
        proxies += 1
        for kind, count in per_proxy.items():
            if count:
                faults[kind] = faults.get(kind, 0) + count
    return TestRecord(
        nodeid=nodeid,
        outcome=outcome,
        worker=worker,
        started_at=started,
        finished_at=finished,
        duration_s=duration,
        skip_reason=skip_reason,
        connections=connections,
        messages_sent=total.sent,
        messages_received=total.received,
        bytes_sent=total.bytes_sent,
        bytes_received=total.bytes_received,
        retries=total.retries,
        isolation=isolation,
        chaos_faults=faults,
        chaos_proxies=proxies,
        services=tuple(dict.fromkeys(services)) if services else (),
        pool_hits=pool_hits,
        pool_misses=pool_misses,
        storms=tuple(json_ready(dict(s)) for s in storms) if storms else (),
        passed_before_error=body_passed,
    )
