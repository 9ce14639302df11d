"""`StormResult`: what a storm measured, its thresholds, its text and its JSON.

Pure data: the storm runner fills it; tests assert on it (``assert_p95(connect_ms=...)``);
reports read `StormResult.as_dict`. Latencies are kept in milliseconds. A storm that
sent messages and saw no reply at all checked nothing (`StormResult.nothing_checked`,
the rule of `pytest_ws_resilience.vacuous`): its text says so and the error thresholds
fail on it, whatever they allow. Cycles also carry the growth of the server under
test per 1,000 cycles (`StormResult.server_growth`, checked by
`StormResult.assert_server_growth`), or why it could not be measured
(`StormResult.server_growth_note`): a growth that was not measured never passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.errors import StormThresholdError
from pytest_ws_resilience.load.error_kinds import ERROR_KINDS
from pytest_ws_resilience.load.thresholds import (
    METRICS,
    Breach,
    error_count_breach,
    error_rate_breach,
    growth_breaches,
    percentile_breaches,
)
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.growth import RESOURCE_METRICS, ServerGrowth
from pytest_ws_resilience.stats import Distribution
from pytest_ws_resilience.vacuous import NothingChecked

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient

__all__ = ["MAX_SAMPLES", "STORM_KINDS", "StormResult", "thin_samples"]

#: What produced a result: a connection storm, connect/disconnect cycles, a burst, a
#: scenario played by many users (``Storm.run``).
STORM_KINDS: tuple[str, ...] = ("storm", "cycles", "burst", "scenario")
#: Samples per metric kept in `StormResult.as_dict` (reports chart them; JSON stays small).
MAX_SAMPLES = 2000
_MIB = 1024 * 1024


def thin_samples(values: Sequence[float], limit: int = MAX_SAMPLES) -> list[float]:
    """At most ``limit`` of ``values``, evenly spaced, in their order (rounded to µs)."""
    if len(values) <= limit:
        picked = list(values)
    else:
        step = len(values) / limit
        picked = [values[int(i * step)] for i in range(limit)]
    return [round(v, 3) for v in picked]


def _format_bytes(size: int | None) -> str:
    if size is None:
        return "unknown"
    sign = "+" if size >= 0 else "-"
    return f"{sign}{abs(size) / _MIB:.1f} MiB"


def _format_per_connection(size: float | None) -> str:
    if size is None:
        return ""
    return f" ({size / 1024:.1f} KiB per connection)"


@dataclass
class StormResult:
    """The outcome of one storm, cycle run or burst.

    Attributes:
        kind: "storm", "cycles" or "burst".
        label: what ran, e.g. ``"connect n=1000 all at once"``.
        attempted / succeeded: connections (storm, burst) or cycles attempted and fully
            successful.
        errors: failures by kind (every kind of `ERROR_KINDS`, zeros included).
        error_examples: the first error message of each kind seen (redacted).
        rss_growth_bytes: resident memory of this process at the storm's peak minus
            before it; None when it cannot be read.
        rss_per_connection_bytes: that growth per connection that succeeded (cycles:
            what each cycle left behind); None when unknown or none succeeded.
        connect_ms: opening handshake of each successful connection.
        first_message_ms: per connection, from its first send to the first frame the
            server sent after it.
        round_trip_ms: per message, from its send to its reply.
        started_s / opened_s: per connection, when it started and when it was open,
            in seconds from the start of the storm (arrival pattern and window).
        duration_s: the whole storm, first start to last completion.
        messages_sent / replies_received: messages written and replies matched.
        clients: the open clients of a ``hold=True`` storm (closed by the storm later).
        server_growth: what the server under test grew by over the cycles, before and
            after samples included (cycles only); None when it was not measured.
        server_growth_note: why it was not measured (e.g. the embedded server runs
            inside the test process), or None.
        contracts_checked: runs checked against an event contract and found whole
            (scenario runs; a broken one is an error of kind ``contract``).
        step_ms: scenario runs: each timed step that passed, by its name
            (``connect``, ``rt:<label>``, ``contract:<label>``, ``close``).
    """

    kind: str
    label: str
    attempted: int = 0
    succeeded: int = 0
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    error_examples: dict[str, str] = field(default_factory=dict)
    rss_growth_bytes: int | None = None
    connect_ms: list[float] = field(default_factory=list)
    first_message_ms: list[float] = field(default_factory=list)
    round_trip_ms: list[float] = field(default_factory=list)
    started_s: list[float] = field(default_factory=list)
    opened_s: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    messages_sent: int = 0
    replies_received: int = 0
    clients: list[WsClient] = field(default_factory=list, repr=False, compare=False)
    server_growth: ServerGrowth | None = None
    server_growth_note: str | None = None
    contracts_checked: int = 0
    step_ms: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in STORM_KINDS:
            raise ValueError(f"unknown storm kind {self.kind!r}; valid: {', '.join(STORM_KINDS)}")

    def __repr__(self) -> str:
        growth = self._server_growth_phrase()
        shown = f", server growth per 1,000 cycles: {growth}" if growth else ""
        return (
            f"StormResult(kind={self.kind!r}, label={self.label!r}, "
            f"succeeded={self.succeeded}/{self.attempted}, errors={self.error_count}{shown})"
        )

    def _server_growth_phrase(self) -> str | None:
        """``fds +1000, RSS +62.4 MiB``, ``not measured (why)``, or None (not asked)."""
        if self.server_growth is not None:
            return self.server_growth.short()
        if self.server_growth_note is not None:
            return f"not measured ({self.server_growth_note})"
        return None

    # -- recording (by the runner) -------------------------------------------------

    def record_error(self, kind: str, message: str) -> None:
        """Count one failure of ``kind``; keep the first message of each kind."""
        if kind not in self.errors:
            raise ValueError(f"unknown error kind {kind!r}; valid: {', '.join(ERROR_KINDS)}")
        self.errors[kind] += 1
        self.error_examples.setdefault(kind, redact(message))

    # -- figures -------------------------------------------------------------------

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        """Failed fraction of what was attempted (0.0 when nothing was)."""
        return self.error_count / self.attempted if self.attempted else 0.0

    @property
    def distributions(self) -> dict[str, Distribution]:
        """`Distribution` of each latency metric (ms), by name (see `METRICS`)."""
        return {
            "connect_ms": Distribution.of(self.connect_ms),
            "first_message_ms": Distribution.of(self.first_message_ms),
            "round_trip_ms": Distribution.of(self.round_trip_ms),
        }

    @property
    def nothing_checked(self) -> NothingChecked | None:
        """The finding when messages were sent and no reply was seen at all; else None.

        Such a storm measured no round trip, whatever its error counts say (a reply
        spec that matches nothing the server sends, a server that answers nothing).
        """
        if not self.messages_sent or self.replies_received:
            return None
        return NothingChecked(
            "load",
            f"{self.kind} {self.label!r}",
            f"{self.messages_sent} message(s) sent and no reply seen",
        )

    @property
    def rss_per_connection_bytes(self) -> float | None:
        """`rss_growth_bytes` per successful connection: the client memory one open
        connection costs at the peak of a storm or burst (with an in-process server,
        its memory too); for cycles, what each cycle left behind. None when the growth
        is unknown or no connection succeeded."""
        if self.rss_growth_bytes is None or not self.succeeded:
            return None
        return self.rss_growth_bytes / self.succeeded

    @property
    def open_window_s(self) -> float | None:
        """Seconds from the start of the storm until its last connection was open."""
        return max(self.opened_s) if self.opened_s else None

    # -- thresholds ----------------------------------------------------------------

    def assert_p50(self, **limits: float) -> None:
        """Fail unless each metric's p50 is at most its limit (ms): ``connect_ms=200``."""
        self._fail_on(percentile_breaches(self.distributions, "p50", limits))

    def assert_p95(self, **limits: float) -> None:
        """Fail unless each metric's p95 is at most its limit (ms), e.g.
        ``assert_p95(connect_ms=500, round_trip_ms=100)``."""
        self._fail_on(percentile_breaches(self.distributions, "p95", limits))

    def assert_p99(self, **limits: float) -> None:
        """Fail unless each metric's p99 is at most its limit (ms)."""
        self._fail_on(percentile_breaches(self.distributions, "p99", limits))

    def assert_errors(self, max: int = 0) -> None:  # named as k6 names it
        """Fail when more than ``max`` connections (or cycles) failed, or when messages
        were sent and no reply was seen (`nothing_checked`)."""
        breach = error_count_breach(self.error_count, max_count=max)
        self._fail_on([breach] if breach else [], vacuous=self.nothing_checked)

    def assert_error_rate(self, max: float = 0.01) -> None:
        """Fail when the failed fraction exceeds ``max`` (0..1), or when messages were
        sent and no reply was seen (`nothing_checked`)."""
        breach = error_rate_breach(self.error_count, self.attempted, max_rate=max)
        self._fail_on([breach] if breach else [], vacuous=self.nothing_checked)

    def assert_server_growth(
        self,
        *,
        rss_mib: float | None = None,
        fds: float | None = None,
        threads: float | None = None,
        sockets: float | None = None,
    ) -> None:
        """Fail when the server under test grew by more than a limit per 1,000 cycles:
        ``assert_server_growth(fds=10, rss_mib=20)``. A limit left out is not checked.

        A figure that could not be read breaches its limit, and a result with no growth
        measured (another kind than cycles, the embedded server, a server the plugin did
        not start) fails with the reason: a check that could not run never passes.

        Raises:
            StormThresholdError: a limit exceeded, or nothing measured.
            ValueError: no limit given, or a negative or non-finite one.
        """
        limits = {"rss_mib": rss_mib, "fds": fds, "threads": threads, "sockets": sockets}
        growth = self.server_growth
        if growth is None:
            growth_breaches(dict.fromkeys(RESOURCE_METRICS), limits)  # bad limits first
            reason = self.server_growth_note or f"a {self.kind} run does not measure it"
            raise StormThresholdError(
                f"{self.kind} {self.label!r}: server growth was not measured, nothing to "
                f"assert: {reason}"
            )
        self._fail_on(growth_breaches(growth.per_1000, limits))

    def _fail_on(self, breaches: list[Breach], vacuous: NothingChecked | None = None) -> None:
        if not breaches and vacuous is None:
            return
        lines = [f"{self.kind} {self.label!r} missed its thresholds:"]
        lines.extend(f"  {breach}" for breach in breaches)
        if vacuous is not None:
            lines.append(f"  {vacuous}")
        lines.append(self.describe())
        raise StormThresholdError("\n".join(lines))

    # -- output --------------------------------------------------------------------

    def describe(self) -> str:
        """Every distribution and the error counts, one line each (no secrets)."""
        lines = [
            f"{self.label}: {self.succeeded}/{self.attempted} succeeded in "
            f"{self.duration_s:.3f} s, RSS growth {_format_bytes(self.rss_growth_bytes)}"
            f"{_format_per_connection(self.rss_per_connection_bytes)}"
        ]
        if self.server_growth is not None:
            lines.append(f"  {self.server_growth.describe()}")
        elif self.server_growth_note is not None:
            lines.append(f"  server growth: not measured ({self.server_growth_note})")
        if self.messages_sent:
            lines.append(f"  messages sent {self.messages_sent}, replies {self.replies_received}")
        if self.contracts_checked:
            lines.append(f"  contracts checked {self.contracts_checked}")
        vacuous = self.nothing_checked
        if vacuous is not None:
            lines.append(f"  NO REPLY SEEN: {vacuous.reason}; round trips measured nothing")
        width = max(len(name) for name in METRICS)
        for name, dist in self.distributions.items():
            lines.append(f"  {name:<{width}}  {dist.describe('ms')}")
        if self.step_ms:
            step_width = max(len(name) for name in self.step_ms)
            lines.append("  steps:")
            for name, values in self.step_ms.items():
                dist = Distribution.of(values)
                lines.append(f"    {name:<{step_width}}  {dist.describe('ms')}")
        counts = ", ".join(f"{kind}={n}" for kind, n in self.errors.items() if n)
        lines.append(f"  errors: {counts or 'none'}")
        for kind, example in self.error_examples.items():
            lines.append(f"    {kind}, first: {example}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary for reports (the shape reports rely on; samples thinned)."""
        distributions: dict[str, Any] = {}
        for name, dist in self.distributions.items():
            samples = thin_samples(getattr(self, name))
            distributions[name] = {**dist.as_dict(), "samples": samples}
        return {
            "kind": self.kind,
            "label": self.label,
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "errors": dict(self.errors),
            "rss_growth_bytes": self.rss_growth_bytes,
            "rss_per_connection_bytes": self.rss_per_connection_bytes,
            "distributions": distributions,
            "server_growth": None if self.server_growth is None else self.server_growth.as_dict(),
            "server_growth_note": self.server_growth_note,
            "contracts_checked": self.contracts_checked,
            "steps": {name: Distribution.of(v).as_dict() for name, v in self.step_ms.items()},
            # One phrase for the terminal summary's storm line.
            "server_growth_text": (
                self.server_growth.short()
                if self.server_growth is not None
                else ("not measured" if self.server_growth_note is not None else None)
            ),
        }
