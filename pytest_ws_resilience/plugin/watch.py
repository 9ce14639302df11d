"""What one test watches: the clients it uses and the isolation detector over them.

The clients of a test come from several fixtures (``ws_client``, ``ws_client_factory``,
``ws_pool``) and the detector from another (``ws_isolation``), set up in whatever order
pytest picks. `TestWatch` is the meeting point, kept on the test item: a client is
tracked when made, and the detector attaches to every tracked client, earlier or later.
No I/O here. At the end of the test, `TestWatch.nothing_checked` gathers what the test
armed and never exercised (the rule: `pytest_ws_resilience.vacuous`).

The item (and so its stash) lives as long as the session. Once the test's record is
made, at its teardown report, `TestWatch.release` lets go of every client, proxy and
the guard: each client holds its connection, buffers, event log and its (closed) event
loop, some 60-75 KiB each, which a session of storms would otherwise keep to the end.
Only the plain aggregates (storm results, service names, pool counts) stay.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import pytest

from pytest_ws_resilience.errors import (
    WsChaosWarning,
    WsIsolationWarning,
    WsNothingCheckedWarning,
)
from pytest_ws_resilience.vacuous import NothingChecked

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.proxy import ChaosProxy
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.metrics import Counters
    from pytest_ws_resilience.isolation.guard import IsolationGuard
    from pytest_ws_resilience.isolation.rules import FrameRule

__all__ = ["WATCH_KEY", "Closable", "TestWatch", "test_watch", "warning_for"]

_WARNINGS: dict[str, type[WsNothingCheckedWarning]] = {
    "isolation": WsIsolationWarning,
    "chaos": WsChaosWarning,
}


class Closable(Protocol):
    """What a client fixture offers to close early: its clients' closing handshakes."""

    def start_closing(self) -> None: ...


def warning_for(finding: NothingChecked) -> type[WsNothingCheckedWarning]:
    """The warning class of a "nothing was checked" finding, by its area."""
    return _WARNINGS.get(finding.area, WsNothingCheckedWarning)


class TestWatch:
    """The clients one test uses and, once ``ws_isolation`` is on, the guard over them."""

    __test__ = False

    def __init__(self) -> None:
        #: Wall time the watch was made (the test's setup): connections opened before it
        #: (a pooled client reused from an earlier test) are not this test's.
        self.started_at = time.time()
        self.clients: list[WsClient] = []
        self.guard: IsolationGuard | None = None
        #: Every client the test ever used (pooled ones stay here after release),
        #: in order: what the reports count.
        self.seen_clients: list[WsClient] = []
        #: Chaos proxies the test made (``ws_chaos``), for the reports.
        self.proxies: list[ChaosProxy] = []
        #: Names of the services the test used (``ws_services``).
        self.services: list[str] = []
        #: Load results the test produced (``ws_storm``), JSON-ready dicts for reports.
        self.storms: list[dict[str, object]] = []
        #: Message counters of each seen client when this test first used it, so a
        #: pooled client's earlier traffic is not counted again (keyed by ``id``; none
        #: for a client that had counted nothing yet).
        self.baselines: dict[int, Counters] = {}
        #: The client fixtures whose clients may start closing once the body passed,
        #: by fixture name (`pytest_ws_resilience.plugin.early_close`).
        self.closing_offers: list[tuple[str, Closable]] = []
        #: Pool acquires served by an idle connection / that opened one (``ws_pool``).
        self.pool_hits = 0
        self.pool_misses = 0
        #: The test's record was made and the references above dropped (`release`).
        self.released = False

    @property
    def only_clients(self) -> bool:
        """The test used clients and nothing else of the plugin's watched features (no
        detector, proxy, service, pool or storm): its clients' figures are all the
        summary needs of it."""
        return not (
            self.guard is not None
            or self.proxies
            or self.services
            or self.storms
            or self.pool_hits
            or self.pool_misses
        )

    def release(self) -> None:
        """The test's record is made: drop the references to its clients, proxies and
        isolation guard (keeping plain aggregates only), so their memory is freed now,
        not at the end of the session."""
        self.clients.clear()
        self.seen_clients.clear()
        self.baselines.clear()
        self.closing_offers.clear()
        self.proxies.clear()
        self.guard = None
        self.released = True

    def track(self, client: WsClient) -> None:
        """A client the test uses: watched by the detector, now or once it starts."""
        if client in self.clients:
            return
        self.clients.append(client)
        if client not in self.seen_clients:
            self.seen_clients.append(client)
            metrics = client.metrics
            # Only a client that connected or retried before (a pooled one) has counts
            # that are not this test's: a new one needs no baseline.
            if metrics.connects or metrics.retries:
                self.baselines[id(client)] = metrics.counters()
        if self.guard is not None:
            self.guard.detector.attach(client)
            for rule in self.guard.rules:
                client.add_observer(rule)

    def untrack(self, client: WsClient) -> None:
        """The test is done with ``client`` (a pooled one goes back): stop watching it."""
        if client in self.clients:
            self.clients.remove(client)
        if self.guard is not None:
            self._detach(self.guard, client)

    def start_isolation(self, guard: IsolationGuard) -> None:
        """Watch every client with the guard's detector and rules, now and later."""
        self.guard = guard
        for client in self.clients:
            guard.detector.attach(client)
        guard.bind(self._attach_rule)

    def _attach_rule(self, rule: FrameRule) -> None:
        for client in self.clients:
            client.add_observer(rule)

    @staticmethod
    def _detach(guard: IsolationGuard, client: WsClient) -> None:
        guard.detector.detach(client)
        for rule in guard.rules:
            client.remove_observer(rule)

    def nothing_checked(self) -> list[NothingChecked]:
        """The end-of-test "nothing was checked" findings of what the test armed: every
        message fault of its proxies that applied 0 times, or whose predicate raised
        (`ChaosProxy.nothing_checked`). The isolation guard judges its own detector."""
        findings: list[NothingChecked] = []
        for proxy in self.proxies:
            findings.extend(proxy.nothing_checked())
        return findings

    def stop_isolation(self) -> None:
        """Detach the detector from every client (pooled ones outlive the test)."""
        if self.guard is None:
            return
        for client in self.clients:
            self._detach(self.guard, client)


#: What the current test watches (its clients, and the isolation guard once on).
WATCH_KEY = pytest.StashKey[TestWatch]()


def test_watch(node: pytest.Item) -> TestWatch:
    """The `TestWatch` of a test item (made on first use)."""
    watch = node.stash.get(WATCH_KEY, None)
    if watch is None:
        watch = node.stash[WATCH_KEY] = TestWatch()
    return watch


test_watch.__test__ = False  # type: ignore[attr-defined]
