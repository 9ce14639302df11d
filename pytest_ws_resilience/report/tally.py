"""The summary's running figures: tests added up as they finish, not kept one by one.

Without a report file the terminal summary is all a run shows of its tests, and it shows
sums: outcomes, connections, handshake times, close codes, messages. A test that passed
and used nothing but clients (most tests of a suite) needs no record for that; the
report collector adds its clients here at once (`Tally.add_usage`) and keeps no record,
and `pytest_ws_resilience.report.aggregate.summarize` starts from the tallies of every
process, then adds the records of the other tests through the same two steps
(`Tally.add_connections`, `Tally.add_counters`). Pure: plain data that crosses xdist's
channel as a dict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pytest_ws_resilience.report.records import (
    ClientUsage,
    ConnectionRecord,
    count_connections,
    uses_connections,
)

__all__ = ["Tally"]


@dataclass(slots=True)
class Tally:
    """Figures added up over tests: the part of the run summary that is a sum.

    Attributes:
        passed: passed tests added here without a record.
        using_plugin: tests among all those added whose clients connected or carried
            a message (`uses_connections`).
        handshake_ms: each connection's handshake time, in milliseconds.
        auth_methods / close_codes / closed_by: connections counted by
            `pytest_ws_resilience.report.records.count_connections`.
        still_open: connections not closed when their test ended (pooled ones).
    """

    passed: int = 0
    using_plugin: int = 0
    handshake_ms: list[float] = field(default_factory=list)
    auth_methods: Counter[str] = field(default_factory=Counter)
    close_codes: Counter[str] = field(default_factory=Counter)
    closed_by: Counter[str] = field(default_factory=Counter)
    still_open: int = 0
    retries: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def add_usage(self, usages: Iterable[ClientUsage]) -> None:
        """A passed test whose plugin use was its clients': what each did in the test."""
        self.passed += 1
        used = False
        for usage in usages:
            counters = usage.counters
            self.add_connections(usage.connections)
            self.add_counters(
                counters.sent,
                counters.received,
                counters.bytes_sent,
                counters.bytes_received,
                counters.retries,
            )
            used = used or uses_connections(usage.connections, counters.sent, counters.received)
        self.using_plugin += used

    def add_connections(self, connections: tuple[ConnectionRecord, ...]) -> None:
        """A test's connections: their handshake times and how each ended."""
        if connections:
            self.handshake_ms.extend(c.handshake_ms for c in connections)
            self.still_open += count_connections(
                connections, self.auth_methods, self.close_codes, self.closed_by
            )

    def add_counters(
        self, sent: int, received: int, bytes_sent: int, bytes_received: int, retries: int
    ) -> None:
        """A test's message counters."""
        self.messages_sent += sent
        self.messages_received += received
        self.bytes_sent += bytes_sent
        self.bytes_received += bytes_received
        self.retries += retries

    def add(self, other: Tally) -> None:
        """Another process's tally (an xdist worker's): every figure is a sum."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, list):  # the handshake times
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine + theirs)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for xdist's ``workeroutput`` (which carries builtins only: each
        counter as a dict, the times as a list)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        """The tally `as_dict` made (a missing figure is zero, or empty)."""
        return cls(**{f.name: _parsed(str(f.type), data.get(f.name)) for f in fields(cls)})


def _plain(value: Any) -> Any:
    if isinstance(value, Counter):
        return dict(value)
    return list(value) if isinstance(value, list) else value


def _parsed(annotation: str, value: Any) -> Any:
    """One figure of `Tally.as_dict`, typed as its field is annotated (the annotations
    are text here: ``from __future__ import annotations``)."""
    if annotation == "list[float]":
        return [float(ms) for ms in value or ()]
    if annotation == "Counter[str]":
        return Counter({str(k): int(v) for k, v in (value or {}).items()})
    return int(value or 0)
