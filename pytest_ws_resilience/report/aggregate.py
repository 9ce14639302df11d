"""One run from several processes: merge the xdist workers' records into one summary.

Each process that ran tests (an xdist worker, or the only process without xdist) is a
`Source`: its records and its session facts. A worker ships its source as plain data
through ``config.workeroutput``; the controller adds its own (services it started for
everybody) and `summarize` makes the figures the terminal and the reports show. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_ws_resilience.report.records import (
    OUTCOMES,
    IsolationRecord,
    TestRecord,
    most_first,
)
from pytest_ws_resilience.report.tally import Tally
from pytest_ws_resilience.stats import Distribution

__all__ = ["RunSummary", "Source", "merge_records", "summarize"]


@dataclass(frozen=True)
class Source:
    """What one process contributes to the run report.

    Attributes:
        worker: the xdist worker id ("gw0", ...), "controller", or "main" without xdist.
        records: the tests it ran.
        services_started: one line per service it started or adopted.
        chaos_seed: its run seed for chaos (``--ws-chaos-seed`` or drawn at random).
        started_at / finished_at: its session's wall-clock span.
        server_urls: the URL(s) its ``ws_server`` served (the server really tested).
        tally: tests added up, not recorded (`pytest_ws_resilience.report.tally`):
            without ``--ws-report``, those that passed using no more than clients.
    """

    worker: str
    records: tuple[TestRecord, ...] = ()
    services_started: tuple[str, ...] = ()
    chaos_seed: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    server_urls: tuple[str, ...] = ()
    tally: Tally = field(default_factory=Tally)

    @property
    def ran_tests(self) -> bool:
        return bool(self.records or self.tally.passed)

    def to_payload(self) -> dict[str, Any]:
        """Plain data for xdist's ``workeroutput`` (execnet carries only builtins)."""
        return {
            "worker": self.worker,
            "records": [r.as_dict() for r in self.records],
            "services_started": list(self.services_started),
            "chaos_seed": self.chaos_seed,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "server_urls": list(self.server_urls),
            "tally": self.tally.as_dict(),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Source:
        return cls(
            worker=str(data["worker"]),
            records=tuple(TestRecord.from_dict(r) for r in data.get("records", ())),
            services_started=tuple(str(s) for s in data.get("services_started", ())),
            chaos_seed=data.get("chaos_seed"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            server_urls=tuple(str(u) for u in data.get("server_urls", ())),
            tally=Tally.from_dict(data.get("tally") or {}),
        )


def merge_records(sources: Iterable[Source]) -> list[TestRecord]:
    """Every source's records, in the order they started (ties: by node id)."""
    records = [r for s in sources for r in s.records]
    return sorted(records, key=lambda r: (r.started_at, r.nodeid))


@dataclass(frozen=True)
class RunSummary:
    """The run's figures, over every source: what the terminal summary prints and the
    report's ``summary`` holds. Handshake times are in milliseconds."""

    tests: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    workers: tuple[str, ...] = ()
    connections: int = 0
    handshake_ms: Distribution = Distribution.of(())
    auth_methods: Mapping[str, int] = field(default_factory=dict)
    #: Closed connections by close code (text) and by who closed them; connections
    #: still open when their test's record was made (pooled ones) are not closed.
    close_codes: Mapping[str, int] = field(default_factory=dict)
    closed_by: Mapping[str, int] = field(default_factory=dict)
    still_open: int = 0
    retries: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    isolation_tests: int = 0
    isolation_checks: int = 0
    isolation_violations: int = 0
    #: Violations in tests that did not provoke them on purpose: real leaks.
    isolation_unexpected: int = 0
    chaos_proxies: int = 0
    chaos_faults: Mapping[str, int] = field(default_factory=dict)
    chaos_seeds: Mapping[str, int] = field(default_factory=dict)
    pool_hits: int = 0
    pool_misses: int = 0
    services_started: tuple[str, ...] = ()
    services_used: Mapping[str, int] = field(default_factory=dict)
    skips: Mapping[str, int] = field(default_factory=dict)
    storms: tuple[Mapping[str, Any], ...] = ()
    tests_using_plugin: int = 0
    #: The URLs the processes' ``ws_server`` served, in worker order, once each.
    server_urls: tuple[str, ...] = ()

    @property
    def chaos_applied(self) -> int:
        return sum(self.chaos_faults.values())

    @property
    def pool_hit_rate(self) -> float | None:
        """hits / (hits + misses); None when the pool was never used."""
        total = self.pool_hits + self.pool_misses
        return self.pool_hits / total if total else None

    @property
    def used(self) -> bool:
        """True when anything in the run used the plugin's connections or services:
        a suite that never connects gets no summary section."""
        return bool(self.tests_using_plugin or self.services_started)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the report's ``summary``)."""
        return {
            "tests": self.tests,
            "outcomes": dict(self.outcomes),
            "workers": list(self.workers),
            "connections_opened": self.connections,
            "handshake_ms": self.handshake_ms.as_dict(),
            "auth_methods": dict(self.auth_methods),
            "close_codes": dict(self.close_codes),
            "closed_by": dict(self.closed_by),
            "still_open": self.still_open,
            "retries": self.retries,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "isolation": {
                "tests": self.isolation_tests,
                "checks": self.isolation_checks,
                "violations": self.isolation_violations,
                "unexpected_violations": self.isolation_unexpected,
            },
            "chaos": {
                "proxies": self.chaos_proxies,
                "faults_applied": self.chaos_applied,
                "faults": dict(self.chaos_faults),
                "seeds": dict(self.chaos_seeds),
            },
            "pool": {
                "hits": self.pool_hits,
                "misses": self.pool_misses,
                "hit_rate": self.pool_hit_rate,
            },
            "services_started": list(self.services_started),
            "services_used": dict(self.services_used),
            "skips": dict(self.skips),
            "storms": len(self.storms),
            "tests_using_plugin": self.tests_using_plugin,
        }


def _worker_order(worker: str) -> tuple[int, str]:
    """gw2 before gw10."""
    return len(worker), worker


def summarize(sources: Sequence[Source]) -> RunSummary:
    """The run's figures over every source (one per process): their tallies, and their
    records added to them.

    One pass over the records, each connection counted where it is read: this runs
    over every recorded test of the run.
    """
    records = merge_records(sources)
    tally = Tally()
    for source in sources:
        tally.add(source.tally)
    outcomes: Counter[str] = Counter(passed=tally.passed) if tally.passed else Counter()
    faults: Counter[str] = Counter()
    services: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    isolated: list[IsolationRecord] = []
    proxies = pool_hits = pool_misses = 0
    storms: list[Mapping[str, Any]] = []
    for record in records:
        # As pytest counts: a test whose teardown failed after its body passed is both.
        outcomes.update(record.counted_outcomes)
        if record.outcome == "skipped":
            skips[record.skip_reason or "no reason given"] += 1
        # A test skipped after its detector was on did not check anything: not counted.
        elif record.isolation is not None:
            isolated.append(record.isolation)
        tally.add_connections(record.connections)
        tally.add_counters(
            record.messages_sent,
            record.messages_received,
            record.bytes_sent,
            record.bytes_received,
            record.retries,
        )
        if record.chaos_faults:
            faults.update(record.chaos_faults)
        if record.services:
            services.update(record.services)
        if record.storms:
            storms.extend(record.storms)
        proxies += record.chaos_proxies
        pool_hits += record.pool_hits
        pool_misses += record.pool_misses
        tally.using_plugin += record.used_plugin
    return RunSummary(
        tests=len(records) + tally.passed,
        outcomes={name: outcomes[name] for name in OUTCOMES if outcomes[name]},
        workers=tuple(sorted({s.worker for s in sources if s.ran_tests}, key=_worker_order)),
        connections=len(tally.handshake_ms),
        handshake_ms=Distribution.of(tally.handshake_ms),
        auth_methods=most_first(tally.auth_methods),
        close_codes=most_first(tally.close_codes),
        closed_by=most_first(tally.closed_by),
        still_open=tally.still_open,
        retries=tally.retries,
        messages_sent=tally.messages_sent,
        messages_received=tally.messages_received,
        bytes_sent=tally.bytes_sent,
        bytes_received=tally.bytes_received,
        isolation_tests=len(isolated),
        isolation_checks=sum(i.checks for i in isolated),
        isolation_violations=sum(i.violations for i in isolated),
        isolation_unexpected=sum(i.unexpected_violations for i in isolated),
        chaos_proxies=proxies,
        chaos_faults=most_first(faults),
        # The seeds that drove the tests: a process that ran none used none.
        chaos_seeds={
            s.worker: s.chaos_seed
            for s in sorted(sources, key=lambda s: _worker_order(s.worker))
            if s.ran_tests and s.chaos_seed is not None
        },
        pool_hits=pool_hits,
        pool_misses=pool_misses,
        services_started=tuple(line for s in sources for line in s.services_started),
        services_used=most_first(services),
        skips=most_first(skips),
        storms=tuple(storms),
        tests_using_plugin=tally.using_plugin,
        server_urls=tuple(
            dict.fromkeys(
                url
                for s in sorted(sources, key=lambda s: _worker_order(s.worker))
                for url in s.server_urls
            )
        ),
    )
