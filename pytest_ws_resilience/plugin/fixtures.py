"""The plugin's loop-agnostic fixtures: settings, server, tokens, users, isolation,
services, benchmark; and ``ws_fuzz``, defined in `pytest_ws_resilience.plugin.fuzz_fixture`
and registered with these.

Thin glue over the library: every fixture delegates to a library object and adds only
lifetime management. None is bound to an event loop: the embedded server runs in its
own thread with its own loop (as pytest-httpserver does), so they work with any
event-loop scope. The loop-bound ones (clients, pool, chaos, storm) are
`pytest_ws_resilience.plugin.loop_fixtures`.

This module imports no other glue than the shared state (`pytest_ws_resilience.plugin.
stash`, `pytest_ws_resilience.plugin.watch`), the session's own server, settings and
tokens (`pytest_ws_resilience.plugin.session_defaults`, which ``ws_settings``,
``ws_tokens`` and ``ws_server`` return unless overridden) and ``ws_fuzz``'s module: what it needs
from the rest of the plugin (the services runtime, the run's seed) it finds on
``config.stash``. What the fixtures
delegate to (clients, tokens, servers, the isolation guard) is imported when a fixture
first runs, not when pytest loads the plugin: a run, or a test, that uses none of it
does not pay for importing it (``tests/plugin/test_startup.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import pytest

from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsIsolationWarning
from pytest_ws_resilience.plugin.fuzz_fixture import ws_fuzz
from pytest_ws_resilience.plugin.marker_walk import MarkerWalk
from pytest_ws_resilience.plugin.session_defaults import SessionDefaults, session_defaults
from pytest_ws_resilience.plugin.stash import REPLAY_TIMER_KEY, SERVICES_KEY
from pytest_ws_resilience.plugin.watch import WATCH_KEY, TestWatch, test_watch, warning_for
from pytest_ws_resilience.vacuous import split_findings

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
    from pytest_ws_resilience.isolation.guard import IsolationGuard
    from pytest_ws_resilience.isolation.options import IsolationOptions
    from pytest_ws_resilience.load.bench import AsyncBenchmark
    from pytest_ws_resilience.plugin.services import ServiceRegistry, ServicesRuntime
    from pytest_ws_resilience.servers.handle import ServiceHandle
    from pytest_ws_resilience.servers.under_test import ServerUnderTest

__all__ = [
    "TEST_START_FIXTURE",
    "MarkerPlan",
    "PluginClients",
    "ServiceFactory",
    "UserFactory",
    "add_test_start",
    "arm_replay_timer",
    "check_nothing_unchecked",
    "plan_test",
    "ws_benchmark",
    "ws_fuzz",
    "ws_isolation",
    "ws_pool_user",
    "ws_server",
    "ws_service_factory",
    "ws_service_specs",
    "ws_services",
    "ws_settings",
    "ws_tokens",
    "ws_user",
    "ws_user_factory",
]

# Bound of one ws_benchmark round on top of the settings' connect + recv timeouts.
_ROUND_SLACK_S = 5.0
# Fixtures that need the services runtime ready before the test's own fixtures.
_SERVICE_FIXTURES = frozenset({"ws_services", "ws_service_factory"})
#: The markers a test's plan reads (`plan_test`).
_PLANNED_MARKERS = frozenset({"websocket_security", "ws_env", "ws_services"})


class UserFactory(Protocol):
    def __call__(self, *, ttl: float | None = None, **claims: Any) -> TestUser: ...


class ServiceFactory(Protocol):
    def __call__(self, spec: ServiceSpec | str, **changes: Any) -> ServiceHandle: ...


# -- settings, server, users -------------------------------------------------------------


@pytest.fixture(scope="session")
def ws_settings(request: pytest.FixtureRequest) -> WsSettings:
    """The run's resolved settings (env, URL, timeouts with their sources, auth)."""
    return session_defaults(request.config).settings


@pytest.fixture(scope="session")
def ws_tokens(request: pytest.FixtureRequest, ws_settings: WsSettings) -> TokenFactory:
    """The `TokenFactory` configured for the env: its tokens are accepted by `ws_server`."""
    defaults = session_defaults(request.config)
    if ws_settings is defaults.settings:
        return defaults.tokens  # the one the client fixtures mint with
    from pytest_ws_resilience.servers.under_test import token_factory_for

    return token_factory_for(ws_settings)


@pytest.fixture(scope="session")
def ws_server(
    request: pytest.FixtureRequest, ws_settings: WsSettings, ws_tokens: TokenFactory
) -> Iterator[ServerUnderTest]:
    """The server under test: the configured URL, the user's ASGI app (``--ws-app``),
    the ``--ws-server-cmd`` process, else the embedded reference server.

    The app or the embedded server starts once per session (once per xdist worker) on a
    free loopback port and stops (bounded) when the session ends. An app that fails to
    start fails the first test that needs it, with the app's traceback, and stops the
    session: the other tests would only repeat the same error. ``str(ws_server)`` is
    its URL; ``ws_server.url_for("/ws/chat/{room}/", room="lobby")`` the URL of another
    endpoint of it. The URL it served is named in the summary and the report.
    """
    defaults = session_defaults(request.config)
    if ws_settings is defaults.settings and ws_tokens is defaults.tokens:
        # The session's own, which the client fixtures share; it stops after the session.
        yield defaults.server(request.session)
        return
    # Settings or tokens overridden in a conftest: a server of their own, for as long.
    own = SessionDefaults(request.config, settings=ws_settings, tokens=ws_tokens)
    try:
        yield own.server(request.session)
    finally:
        own.close()


@pytest.fixture
def ws_user_factory(ws_tokens: TokenFactory) -> UserFactory:
    """``ws_user_factory(*, ttl=None, **claims) -> TestUser``: a fresh user with a valid
    token; ``ttl`` (seconds) makes it short-lived (``user.expires_at`` says when it
    expires), for tests of what a server does when a connection's token expires.

    Function-scoped, so it mints with the ``ws_tokens`` the test sees: pytest caches a
    session-scoped fixture once, with the first test's dependencies, and a conftest that
    overrides ``ws_tokens`` for one directory would get users of another factory when a
    test elsewhere ran first. The client fixtures do not take it (see
    `pytest_ws_resilience.plugin.session_defaults`), so a ``ws_client`` test does not
    pay for it. A session-scoped fixture of your own mints with ``ws_tokens.user()``."""

    def make_user(*, ttl: float | None = None, **claims: Any) -> TestUser:
        return ws_tokens.user(ttl=ttl, **claims)

    return make_user


@pytest.fixture
def ws_user(ws_user_factory: UserFactory) -> TestUser:
    """A fresh `TestUser` for this test."""
    return ws_user_factory()


@pytest.fixture(scope="session")
def ws_pool_user(ws_tokens: TokenFactory) -> TestUser:
    """The user ``ws_pool.acquire()`` connects as when given none (one per session,
    so its connection is reused across tests)."""
    return ws_tokens.user()


# -- isolation ---------------------------------------------------------------------------


def _security_options(node: pytest.Item) -> IsolationOptions | None:
    """The options of the test's ``websocket_security`` markers; None without one.

    Raises:
        ValueError: a malformed marker (the collector reports it first when it can).
    """
    marks = list(node.iter_markers("websocket_security"))
    if not marks:
        return None
    from pytest_ws_resilience.plugin.markers import security_marker_options

    # iter_markers yields the closest first: the closest marker's options win.
    name = getattr(node, "name", "test")
    return security_marker_options([(m.args, m.kwargs) for m in reversed(marks)], test=name)


class PluginClients:
    """The clients of ``ws_isolation.differential`` and ``ws_isolation.race``: users from
    ``ws_user_factory``, the server under test, the run's settings, each client watched
    by the test (`TestWatch`). The fixtures are looked up at first use, so a test that
    never races does not start a server for it."""

    def __init__(self, request: pytest.FixtureRequest, watch: TestWatch) -> None:
        self._request = request
        self._watch = watch

    @property
    def settings(self) -> WsSettings:
        settings: WsSettings = self._request.getfixturevalue("ws_settings")
        return settings

    def new_user(self) -> TestUser:
        factory: UserFactory = self._request.getfixturevalue("ws_user_factory")
        return factory()

    def make(self, user: TestUser, options: Mapping[str, Any]) -> WsClient:
        from pytest_ws_resilience.client.client import WsClient
        from pytest_ws_resilience.config.routes import route_url

        server: ServerUnderTest = self._request.getfixturevalue("ws_server")
        chosen = dict(options)
        url = route_url(
            server.url,
            chosen.pop("url", None),
            chosen.pop("path", None),
            chosen.pop("path_params", None),
        )
        client = WsClient(url, user=user, settings=self.settings, **chosen)
        self._watch.track(client)
        return client

    async def retire(self, clients: Sequence[WsClient]) -> None:
        from pytest_ws_resilience.client.closing import close_clients

        await close_clients(clients, self.settings.close_timeout.value + 1.0)
        for client in clients:
            self._watch.untrack(client)


@pytest.fixture
def ws_isolation(request: pytest.FixtureRequest) -> Iterator[IsolationGuard]:
    """Watch every client of this test for cross-user leaks; fail the test on any.

    Attaches an `IsolationDetector` to each client the test uses (``ws_client``,
    ``ws_client_factory``, ``ws_pool``), whenever it was made. Violations fail the test
    after its body, once; a leak seen only in frames that came after the body fails
    its teardown. A test that provokes violations on purpose calls
    ``ws_isolation.expect_violations()`` and asserts on ``ws_isolation.violations``.
    Options: ``ws_isolation.configure(taint=..., identity=..., allow=[...], ...)``, or
    the same as ``websocket_security`` marker arguments. Strict (nothing may be
    expected) under ``websocket_security``, which turns this fixture on by itself and
    warns (`WsIsolationWarning`) when the detector checked no frame at all (unless
    every connection the test tried was refused at the handshake).
    """
    node = request.node
    try:
        options = _security_options(node)
    except ValueError as err:
        pytest.fail(str(err), pytrace=False)
    strict = options is not None
    watch = test_watch(node)
    from pytest_ws_resilience.isolation.detector import IsolationDetector
    from pytest_ws_resilience.isolation.guard import IsolationGuard

    def clients_seen() -> tuple[int, int]:
        clients = watch.seen_clients
        return len(clients), sum(1 for c in clients if c.metrics.connects)

    guard = IsolationGuard(
        IsolationDetector(), strict=strict, options=options, clients_seen=clients_seen
    )
    watch.start_isolation(guard)
    guard.provide_clients(PluginClients(request, watch))
    try:
        yield guard
    finally:
        watch.stop_isolation()
    failure, note = guard.teardown_verdict()
    if note is not None:
        node.add_report_section("teardown", "ws-isolation, frames after the test body", note)
    if failure is not None:
        pytest.fail(f"isolation violations after the test body:\n{failure}", pytrace=False)
    if not strict:  # a strict guard failed the test body instead (`IsolationGuard.verdict`)
        finding = guard.nothing_checked()
        if finding is not None:
            node.warn(WsIsolationWarning(f"{node.name}: {finding}"))


# -- services ----------------------------------------------------------------------------


def _runtime(config: pytest.Config) -> ServicesRuntime:
    runtime = config.stash.get(SERVICES_KEY, None)
    if runtime is None:  # pragma: no cover - the plugin's configure always sets it
        raise RuntimeError("the ws-resilience plugin is not configured")
    return runtime


@pytest.fixture(scope="session")
def ws_service_specs() -> Iterable[ServiceSpec]:
    """Services defined in code: override it (session scope, in a conftest) to return
    `ServiceSpec` objects; they join those of ``[tool.ws_resilience.services]``."""
    return ()


@pytest.fixture(scope="session")
def ws_services(
    pytestconfig: pytest.Config, ws_service_specs: Iterable[ServiceSpec]
) -> ServiceRegistry:
    """``ws_services["name"] -> ServiceHandle``: the run's services, started lazily,
    healthy by a real WebSocket handshake, shared across xdist workers, removed once
    at the end of the run."""
    runtime = _runtime(pytestconfig)
    for spec in ws_service_specs:
        runtime.add(spec)
    return runtime.registry()


@pytest.fixture
def ws_service_factory(
    pytestconfig: pytest.Config, ws_services: ServiceRegistry
) -> Iterator[ServiceFactory]:
    """``ws_service_factory(spec_or_name, **changes) -> ServiceHandle``: a private
    instance of a service for this test, for container chaos (``pause``, ``unpause``,
    ``kill``, ``restart``); removed at teardown (bounded). ``changes`` replace fields
    of the spec (e.g. ``env=...``). Skipped or failed like ``ws_services``."""
    private = _runtime(pytestconfig).private_services()
    try:
        yield private.start
    finally:
        errors = private.stop_all()
        if errors:
            pytest.fail("; ".join(errors), pytrace=False)


# -- every test that needs it ----------------------------------------------------------

#: The fixture `add_test_start` puts first in a test's fixtures when the test needs it.
TEST_START_FIXTURE = "_ws_test_start"


class MarkerPlan(NamedTuple):
    """What a test's markers ask of the plugin, found once (`plan_test`)."""

    #: A ``websocket_security`` test.
    strict: bool
    #: It needs the start fixture (services, or the ``websocket_security`` guard).
    needs_start: bool
    #: Its closest ``ws_env`` marker (checked at setup), or None.
    ws_env: pytest.Mark | None


_PLAN_KEY = pytest.StashKey[MarkerPlan]()
#: The plan of most tests: none of our markers, nothing to start.
_NO_PLAN = MarkerPlan(strict=False, needs_start=False, ws_env=None)


def plan_test(item: pytest.Item, walk: MarkerWalk | None = None) -> MarkerPlan:
    """What the test's markers ask of the plugin, read at its first call and kept on the
    item: at collection, once per test (after every plugin changed the items), so that
    its setup and teardown walk no markers (each walk climbs the item's parents, on
    every test); at setup for an item no collection hook saw. ``walk``: the pass's
    `MarkerWalk`, which reads each parent's markers once for all the items under it."""
    plan = item.stash.get(_PLAN_KEY, None)
    if plan is None:
        # One walk of the item's markers (each walk climbs its parents): the closest
        # of each of ours.
        closest: dict[str, pytest.Mark] = {}
        services: list[pytest.Mark] = []  # every one: their names add up
        for mark in item.iter_markers() if walk is None else walk.markers(item):
            if mark.name in _PLANNED_MARKERS:
                closest.setdefault(mark.name, mark)
                if mark.name == "ws_services":
                    services.append(mark)
        strict = "websocket_security" in closest
        names = getattr(item, "fixturenames", None)
        needs_start = names is not None and _needs_test_start(item, names, strict, services)
        ws_env = closest.get("ws_env")
        plan = (
            MarkerPlan(strict, needs_start, ws_env)
            if strict or needs_start or ws_env is not None
            else _NO_PLAN
        )
        item.stash[_PLAN_KEY] = plan
    return plan


def add_test_start(item: pytest.Item, plan: MarkerPlan) -> None:
    """Put `_ws_test_start` first in the fixtures of a test that needs it (services, or
    ``websocket_security``), before pytest fills them (``pytest_runtest_setup``).

    Not an autouse fixture: a fixture costs every test its setup and teardown in pytest's
    machinery, and most tests need neither (``benchmarks/suite_overhead.py``). A new list,
    not an append: the parametrized items of one function share theirs, as pytest-asyncio's
    runner fixture does. The other half, the "nothing was checked" verdicts, is
    `check_nothing_unchecked`, after the test's teardown. ``plan``: the test's
    `plan_test`.
    """
    names: list[str] | None = getattr(item, "fixturenames", None)
    if plan.needs_start and names is not None and TEST_START_FIXTURE not in names:
        item.fixturenames = [TEST_START_FIXTURE, *names]  # type: ignore[attr-defined]


def _needs_test_start(
    item: pytest.Item,
    fixturenames: Sequence[str],
    strict: bool,
    services: Sequence[pytest.Mark],
) -> bool:
    if strict:
        return True
    runtime = item.config.stash.get(SERVICES_KEY, None)
    if runtime is None:
        return False
    if not _SERVICE_FIXTURES.isdisjoint(fixturenames):
        return True
    try:
        return bool(runtime.needed_names(item, services))
    except ValueError:  # a malformed marker: the fixture fails the test with it
        return True


@pytest.fixture
def _ws_test_start(request: pytest.FixtureRequest) -> None:
    """Before the test's own fixtures (`add_test_start` puts it first): its services
    (marker, env) healthy, or a skip; ``websocket_security`` tests get ``ws_isolation``
    without asking for it."""
    _start_services(request)
    if plan_test(request.node).strict:
        request.getfixturevalue("ws_isolation")


def check_nothing_unchecked(item: pytest.Item) -> None:
    """After the test's teardown: the "nothing was checked" verdicts of its `TestWatch`
    (chaos faults that never fired), as warnings, or a failure when strict or required.

    A hook's step, not a fixture's teardown, for the reason of `add_test_start`.
    """
    watch = item.stash.get(WATCH_KEY, None)  # none: the test used nothing of ours
    if watch is None:
        return
    findings = watch.nothing_checked()
    if not findings:  # most tests: nothing armed, or everything fired
        return
    failures, warnings = split_findings(findings, strict=plan_test(item).strict)
    for finding in warnings:
        item.warn(warning_for(finding)(f"{item.name}: {finding}"))
    if failures:
        lines = "\n".join(f"  {finding}" for finding in failures)
        pytest.fail(f"{item.name}: checks that checked nothing:\n{lines}", pytrace=False)


def _start_services(request: pytest.FixtureRequest) -> None:
    """Before the test's own fixtures: its services (marker, env) healthy, or a skip."""
    runtime = request.config.stash.get(SERVICES_KEY, None)
    if runtime is None:
        return
    try:
        names = runtime.needed_names(request.node)
    except ValueError as err:  # a malformed marker on an item no collector checked
        message = str(err)
    else:
        message = ""
    if message:
        pytest.fail(message, pytrace=False)
    if not names and _SERVICE_FIXTURES.isdisjoint(request.fixturenames):
        return
    # Specs a module or class overrides ws_service_specs with join the run's.
    for spec in request.getfixturevalue("ws_service_specs"):
        runtime.add(spec)
    registry: ServiceRegistry = request.getfixturevalue("ws_services")
    for name in names:
        registry[name]


# -- benchmark ---------------------------------------------------------------------------


def _benchmark_options(item: pytest.Item) -> dict[str, Any]:
    marker = item.get_closest_marker("benchmark")
    return dict(marker.kwargs) if marker is not None else {}


def arm_replay_timer(item: pytest.Item) -> None:
    """Give a ``ws_benchmark`` test's ``benchmark`` fixture the replay clock (called by
    the role objects' ``pytest_runtest_setup``, before any fixture is set up).

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
    from pytest_ws_resilience.load.bench import ReplayTimer

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

    from pytest_ws_resilience.load.bench import AsyncBenchmark

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
