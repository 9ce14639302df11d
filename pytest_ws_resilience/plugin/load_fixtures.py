"""pytest glue of the load tools: the ``ws_storm`` and ``ws_benchmark`` fixtures.

Built by `loop_scoped_load_fixtures` for the configured event-loop scope (ini
``ws_loop_scope``), as `pytest_ws_resilience.plugin.fixtures.loop_scoped_fixtures` does: a
storm's connections belong to the loop they were opened in. The library is
`pytest_ws_resilience.load.storm` and `pytest_ws_resilience.load.bench`; this module
only ties them to the test: its clients are watched (``ws_isolation``, reports), its
results are kept for the reports, everything is closed at teardown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.load.bench import AsyncBenchmark, ReplayTimer
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.plugin.fixtures import LoopScope, check_loop, test_watch
from pytest_ws_resilience.plugin.watch import TestWatch
from pytest_ws_resilience.servers.under_test import ServerUnderTest

__all__ = ["REPLAY_TIMER_KEY", "TestStorm", "loop_scoped_load_fixtures"]

#: The clock a test's ``benchmark`` fixture reads when the test uses ``ws_benchmark``.
REPLAY_TIMER_KEY = pytest.StashKey[ReplayTimer]()
# Bound of one ws_benchmark round on top of the settings' connect + recv timeouts.
_ROUND_SLACK_S = 5.0


class TestStorm(Storm):
    """The ``ws_storm`` fixture: a `Storm` against the server under test, whose clients
    the test watches and whose results go to the reports."""

    __test__ = False

    def __init__(
        self,
        url: str,
        tokens: TokenFactory,
        settings: WsSettings,
        *,
        watch: TestWatch,
        loop: asyncio.AbstractEventLoop,
        loop_scope: str,
        **options: Any,
    ) -> None:
        super().__init__(url, tokens, settings, **options)
        self._watch = watch
        self._loop = loop
        self._loop_scope = loop_scope

    def _check_ready(self) -> None:
        check_loop(self._loop, "ws_storm", self._loop_scope)

    def _on_client(self, client: WsClient) -> None:
        self._watch.track(client)  # ws_isolation watches storm clients too

    def _on_client_closed(self, client: WsClient) -> None:
        self._watch.untrack(client)

    def _on_result(self, result: StormResult) -> None:
        self._watch.storms.append(result.as_dict())


def _benchmark_options(item: pytest.Item) -> dict[str, Any]:
    marker = item.get_closest_marker("benchmark")
    return dict(marker.kwargs) if marker is not None else {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give a ``ws_benchmark`` test's ``benchmark`` fixture the replay clock.

    pytest-benchmark reads the test's ``benchmark`` marker when it builds the fixture,
    so the clock goes in a marker placed first (the user's marker options kept).
    """
    if "ws_benchmark" not in getattr(item, "fixturenames", ()):
        return
    options = _benchmark_options(item)
    measured_with = options.get("timer")
    if measured_with is None:
        configured = item.config.getoption("benchmark_timer", None)
        measured_with = getattr(configured, "target", None)
    timer = ReplayTimer(measured_with) if callable(measured_with) else ReplayTimer()
    item.stash[REPLAY_TIMER_KEY] = timer
    item.add_marker(pytest.mark.benchmark(**{**options, "timer": timer}), append=False)


@pytest.fixture
def ws_benchmark(
    request: pytest.FixtureRequest, benchmark: Any, ws_settings: WsSettings
) -> AsyncBenchmark:
    """``result = await ws_benchmark(coro_fn, *args, rounds=None, warmup_rounds=0, **kw)``.

    pytest-benchmark for coroutines: the rounds are awaited in the test's event loop
    (so they may use the test's connections), timed, and handed to pytest-benchmark,
    whose table, ``--benchmark-json`` and ``--benchmark-compare`` show them. Once per
    test, as ``benchmark``. When pytest-benchmark is disabled (``--benchmark-disable``;
    under pytest-xdist it disables itself) the coroutine runs once, untimed, and a
    warning says so under xdist.
    """
    timer = request.node.stash.get(REPLAY_TIMER_KEY, None)
    if timer is None:  # requested dynamically: the marker hook did not see it
        pytest.fail(
            "ws_benchmark must be a test argument (not getfixturevalue): pytest-benchmark "
            "reads its clock from the test's marker before the test starts",
            pytrace=False,
        )
    options = _benchmark_options(request.node)
    config = request.config
    user_disabled = bool(config.getoption("benchmark_disable", False)) and not bool(
        config.getoption("benchmark_enable", False)
    )
    reason = "--benchmark-disable" if user_disabled else "pytest-xdist is active"

    def on_disabled(note: str) -> None:
        request.node.add_report_section("call", "ws_benchmark", note)
        if not user_disabled:  # the user did not ask for it: say so once per test
            request.node.warn(pytest.PytestWarning(note))

    round_timeout = (
        ws_settings.connect_timeout.value + ws_settings.recv_timeout.value + _ROUND_SLACK_S
    )
    return AsyncBenchmark(
        benchmark,
        timer,
        min_rounds=int(options.get("min_rounds", config.getoption("benchmark_min_rounds", 5))),
        max_time=float(options.get("max_time", config.getoption("benchmark_max_time", 1.0))),
        round_timeout=round_timeout,
        on_disabled=on_disabled,
        disabled_reason=reason,
    )


def loop_scoped_load_fixtures(loop_scope: LoopScope) -> ModuleType:
    """The load fixtures built for ``loop_scope`` (as `fixtures.loop_scoped_fixtures`),
    as a plugin module (with the ``ws_benchmark`` marker hook)."""

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def ws_storm(
        request: pytest.FixtureRequest,
        ws_server: ServerUnderTest,
        ws_settings: WsSettings,
        ws_tokens: TokenFactory,
    ) -> AsyncIterator[TestStorm]:
        """``result = await ws_storm.connect(n, *, rate=None, users=None, hold=False, ...)``;
        also ``ws_storm.cycles(n, concurrency=...)`` and ``ws_storm.burst(clients, msgs)``.

        Authenticated storms against the server under test (a fresh user per
        connection unless ``users=`` is given), each returning a `StormResult` with
        p50/p95/p99 of connect, first message and round trip, errors by kind and RSS
        growth, and thresholds (``result.assert_p95(connect_ms=500)``). Results go to
        the run's reports; held connections are closed at teardown, bounded.
        """
        storm = TestStorm(
            ws_server.url,
            ws_tokens,
            ws_settings,
            watch=test_watch(request.node),
            loop=asyncio.get_running_loop(),
            loop_scope=loop_scope,
        )
        try:
            yield storm
        finally:
            await storm.aclose()

    module = ModuleType(f"pytest_ws_resilience.plugin.load_fixtures[{loop_scope}]")
    module.__doc__ = f"Load fixtures of pytest-ws-resilience ({loop_scope} loops)."
    members: dict[str, Any] = {
        "ws_storm": ws_storm,
        "ws_benchmark": ws_benchmark,
        "pytest_runtest_setup": pytest_runtest_setup,
    }
    for name, member in members.items():
        setattr(module, name, member)
    return module
