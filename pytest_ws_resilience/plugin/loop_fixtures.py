"""The plugin's fixtures bound to an event loop: clients, pool, chaos, storm.

Connections belong to the loop they were opened in, so these fixtures and the tests
using them must share it. pytest-asyncio needs a fixture's loop scope when the fixture
is defined, and ours is configurable (ini ``ws_loop_scope``: "function", the default, or
"session" so pooled connections live across tests), so `loop_scoped_fixtures` defines
them at configure time, for that scope, as a plugin module of their own. Each checks
(`pytest_ws_resilience.plugin.loop_objects.check_loop`) that the test runs in its loop,
and says how to fix it when not.

What the fixtures hand to a test (the client factory, the pool's leases, the storm)
lives in `pytest_ws_resilience.plugin.loop_objects`, imported when a fixture first runs:
loading the plugin does not import the client, the pool, the storm or websockets.

Like `pytest_ws_resilience.plugin.fixtures`, this module imports no other glue than the
shared state (`pytest_ws_resilience.plugin.stash`, `pytest_ws_resilience.plugin.watch`)
and what the client fixtures connect with (`pytest_ws_resilience.plugin.session_defaults`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
import pytest_asyncio.plugin

from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.plugin.options import locust_master_option
from pytest_ws_resilience.plugin.session_defaults import (
    ClientInputs,
    client_inputs,
    client_user,
    fresh_user,
)
from pytest_ws_resilience.plugin.stash import CHAOS_KEY, RUN_KEY, CurrentTest
from pytest_ws_resilience.plugin.watch import TestWatch, test_watch

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.proxy import ChaosProxy
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
    from pytest_ws_resilience.plugin.loop_objects import (
        ChaosFactory,
        ClientFactory,
        TestClientFactory,
        TestPool,
        TestStorm,
    )
    from pytest_ws_resilience.plugin.options import LoopScope
    from pytest_ws_resilience.pool.pool import ConnectionPool
    from pytest_ws_resilience.servers.under_test import ServerUnderTest

__all__ = ["in_test_loop", "loop_scoped_fixtures", "runner_fixture"]


#: What a fixture in the tests' loop does, given the loop: a generator (setup, yield
#: the value, teardown).
_FixtureBody = Callable[[asyncio.AbstractEventLoop], Iterator[Any]]


def runner_fixture(loop_scope: LoopScope) -> str:
    """The name of pytest-asyncio's runner fixture for ``loop_scope`` (its tests and
    async fixtures ask for it by that name), checked once at configure time.

    Raises:
        pytest.UsageError: this pytest-asyncio has no such fixture (1.0 named its loops
            otherwise): one line naming the versions that work.
    """
    name = f"_{loop_scope}_scoped_runner"
    if not hasattr(pytest_asyncio.plugin, name):
        raise pytest.UsageError(
            f"pytest-asyncio {getattr(pytest_asyncio, '__version__', '?')} has no {name} "
            "fixture: pytest-ws-resilience needs pytest-asyncio>=1.1,<2"
        )
    return name


def in_test_loop(loop_scope: LoopScope, name: str, body: _FixtureBody) -> Any:
    """A synchronous fixture ``name`` that runs ``body`` with the tests' event loop.

    The loop is pytest-asyncio's runner's, taken as an argument: pytest sets the runner
    up first and tears it down after ``body`` has finished (in reverse order of setup).
    As a ``pytest_asyncio.fixture``, the fixture would pay on every test for the
    wrapper pytest-asyncio builds around it (a second look-up of the runner, a
    finalizer, a patched fixture function, the loop made current), and as an argument
    pytest's ``request`` costs a fixture definition more, read from a signature, each
    of the three times pytest resolves it: together about a quarter of the calls the
    plugin added to a ``ws_client`` test (``benchmarks/suite_overhead.py``). ``body``
    learns its test from `pytest_ws_resilience.plugin.stash.CurrentTest` instead.
    """
    runner_name = runner_fixture(loop_scope)

    # pytest reads a fixture's arguments from its signature: one per runner name.
    def on_session_loop(_session_scoped_runner: asyncio.Runner) -> Iterator[Any]:
        yield from body(_session_scoped_runner.get_loop())

    def on_function_loop(_function_scoped_runner: asyncio.Runner) -> Iterator[Any]:
        yield from body(_function_scoped_runner.get_loop())

    fixture = on_session_loop if runner_name == "_session_scoped_runner" else on_function_loop
    fixture.__doc__ = body.__doc__
    fixture.__qualname__ = fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)


def _check_idle(loop: asyncio.AbstractEventLoop, name: str) -> None:
    """Fixture ``name`` runs ``loop`` until its setup is done: the loop must not be
    running already, as it is when an ``async`` fixture or test asks for ``name`` with
    ``request.getfixturevalue`` (a one-line error, not asyncio's)."""
    if loop.is_running():
        pytest.fail(
            f"{name} was asked for from inside the running event loop (request."
            f"getfixturevalue in an async fixture or test): take {name} as an argument "
            "of that fixture or test instead",
            pytrace=False,
        )


def _offer_early_close(watch: TestWatch, name: str, factory: TestClientFactory) -> None:
    """The clients of fixture ``name`` may start closing once the body passed, if nothing
    set up after it can still use them (`pytest_ws_resilience.plugin.early_close`)."""
    watch.closing_offers.append((name, factory))


def _keep_open_to_teardown(watch: TestWatch, name: str, factory: TestClientFactory) -> None:
    """ini ``ws_early_close = false``: the clients close at the fixture's teardown only."""


def loop_scoped_fixtures(
    loop_scope: LoopScope, current: CurrentTest, *, early_close: bool = True
) -> ModuleType:
    """Build the event-loop-bound fixtures for ``loop_scope``, as a plugin module.

    pytest-asyncio needs a fixture's loop scope when the fixture is defined; this one is
    configurable (ini ``ws_loop_scope``), so the fixtures are defined here, at configure
    time, and registered as a plugin. ``current`` says which test the client fixtures
    serve (set by the session's setup hook). ``early_close`` (ini ``ws_early_close``):
    whether the client fixtures offer their clients to close once the body passed.
    """
    offer = _offer_early_close if early_close else _keep_open_to_teardown

    def client_factory(
        loop: asyncio.AbstractEventLoop, name: str
    ) -> tuple[TestClientFactory, ClientInputs, pytest.Item]:
        """A factory of clients watched by the current test (offered to close early as
        fixture ``name``'s), what they connect with (`client_inputs`), and the test."""
        from pytest_ws_resilience.plugin.loop_objects import TestClientFactory

        item = current.require("the client fixtures")
        inputs = client_inputs(item)
        watch = test_watch(item)

        def new_user() -> TestUser:
            return fresh_user(item, inputs)

        factory = TestClientFactory(
            inputs.server.url, inputs.settings, new_user, watch, loop=loop, loop_scope=loop_scope
        )
        offer(watch, name, factory)
        return factory, inputs, item

    # ws_client_factory and ws_client, which nearly every test uses, are synchronous
    # fixtures in the test's event loop (`in_test_loop`): they connect and close with
    # run_until_complete. An async fixture would pay for a runner turn of its own at
    # setup and at teardown (signal handlers, a context copy) on every test. Their
    # server, settings and users are the session's own unless a conftest overrides one
    # (`pytest_ws_resilience.plugin.session_defaults`).
    def ws_client_factory(loop: asyncio.AbstractEventLoop) -> Iterator[ClientFactory]:
        """``await ws_client_factory(user=None, *, token=None, url=None, path=None,
        path_params=None, auth=None, headers=None, origin=None, ...)``.

        Each call returns a `WsClient` (connected unless ``connect=False``) for ``user``
        (a fresh one from ``ws_user_factory`` when None) on ``ws_server`` with
        ``ws_settings``; ``token`` overrides the user's token (negative tests);
        ``path`` (``"/chat/{room}"``, filled from ``path_params``) reaches another
        endpoint of the server; ``auth`` is a method or a fallback chain; ``headers``,
        ``origin``, ``subprotocols``, ``user_agent`` and ``compression`` go over the
        settings' connection options; other keywords go to `WsClient`. Every client made
        here is closed at teardown, concurrently and bounded (the close frames sent as
        soon as a passing body returns, when nothing set up after this fixture can use
        them: `pytest_ws_resilience.plugin.early_close`).
        """
        factory, _, _ = client_factory(loop, "ws_client_factory")
        try:
            yield factory
        finally:
            loop.run_until_complete(factory.aclose())

    def ws_client(loop: asyncio.AbstractEventLoop) -> Iterator[WsClient]:
        """A connected `WsClient` for ``ws_user`` on ``ws_server`` with ``ws_settings``,
        closed (bounded) at teardown, its close frame sent as soon as a passing body
        returns when nothing set up after this fixture can use it
        (`pytest_ws_resilience.plugin.early_close`): a client factory's one client (its
        own factory, not the ``ws_client_factory`` fixture, which would be a fixture
        more on every test)."""
        _check_idle(loop, "ws_client")  # it connects at setup
        factory, inputs, item = client_factory(loop, "ws_client")
        try:
            yield loop.run_until_complete(factory(client_user(item, inputs)))
        finally:
            loop.run_until_complete(factory.aclose())

    if loop_scope == "session":

        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        async def _ws_shared_pool(ws_settings: WsSettings) -> AsyncIterator[ConnectionPool]:
            from pytest_ws_resilience.pool.pool import ConnectionPool

            pool = ConnectionPool(settings=ws_settings)
            try:
                yield pool
            finally:
                await pool.cleanup_all()

    else:

        @pytest.fixture(scope="session")
        def _ws_shared_pool(ws_settings: WsSettings) -> ConnectionPool:
            # Function-scoped loops: ws_pool empties the pool at the end of each test.
            from pytest_ws_resilience.pool.pool import ConnectionPool

            return ConnectionPool(settings=ws_settings)

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def ws_pool(
        request: pytest.FixtureRequest,
        _ws_shared_pool: ConnectionPool,
        ws_server: ServerUnderTest,
        ws_pool_user: TestUser,
    ) -> AsyncIterator[TestPool]:
        """``client = await ws_pool.acquire(user=None, **options)``: pooled connections.

        Connections are kept per user (never crossing users), health-checked before
        reuse and handed back at the end of the test; ``ws_pool.stats`` has hits,
        misses, evictions and the reuse rate. Reuse across tests needs the session loop
        (ini ``ws_loop_scope = session``); with function-scoped loops the pool is
        emptied after each test.
        """
        from pytest_ws_resilience.plugin.loop_objects import TestPool

        pool = TestPool(
            _ws_shared_pool,
            test_watch(request.node),
            url=ws_server.url,
            default_user=ws_pool_user,
            loop=asyncio.get_running_loop(),
            loop_scope=loop_scope,
        )
        try:
            yield pool
        finally:
            await pool.release_all()
            if loop_scope == "function":
                await _ws_shared_pool.cleanup_all()

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def ws_chaos(
        request: pytest.FixtureRequest, ws_server: ServerUnderTest, ws_settings: WsSettings
    ) -> AsyncIterator[ChaosFactory]:
        """``proxy = await ws_chaos(upstream_url=None, *, preset=None, seed=None)``.

        A `ChaosProxy` on a free loopback port in front of ``upstream_url`` (default:
        the server under test); connect through it with
        ``ws_client_factory(url=proxy.url)``. ``preset`` arms a named toxic set ("3g",
        "lossy_wifi", ...) before the first connection. Random faults are seeded from
        the run's seed (``--ws-chaos-seed``), the test and the proxy's number, so a
        failing test prints the seed that replays it. Proxies stop at teardown, bounded.
        """
        from pytest_ws_resilience.chaos.presets import apply_preset
        from pytest_ws_resilience.chaos.proxy import ChaosProxy
        from pytest_ws_resilience.chaos.seeds import derive_seed
        from pytest_ws_resilience.plugin.loop_objects import check_loop

        loop = asyncio.get_running_loop()
        run = request.config.stash.get(RUN_KEY, None)
        run_seed = run.chaos_seed if run is not None else 0
        seeds = request.node.stash.setdefault(CHAOS_KEY, [])
        proxies: list[ChaosProxy] = []

        async def make_proxy(
            upstream_url: str | None = None,
            *,
            preset: str | None = None,
            seed: int | None = None,
            strip_compression: bool = True,
        ) -> ChaosProxy:
            check_loop(loop, "ws_chaos", loop_scope)
            proxy_seed = (
                seed
                if seed is not None
                else derive_seed(run_seed, request.node.nodeid, len(proxies))
            )
            proxy = ChaosProxy(
                upstream_url or ws_server.url,
                seed=proxy_seed,
                strip_compression=strip_compression,
            )
            if preset is not None:
                apply_preset(proxy, preset)  # armed before start: no connection escapes
            await proxy.start()
            proxies.append(proxy)
            seeds.append(proxy_seed)
            test_watch(request.node).proxies.append(proxy)
            return proxy

        try:
            yield make_proxy
        finally:
            bound = ws_settings.close_timeout.value
            await asyncio.gather(*(p.stop(timeout=bound) for p in proxies), return_exceptions=True)

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
        the run's reports; held connections are closed at teardown, bounded. Every
        storm carries the env's connection options (Origin, headers...) and takes
        ``path=`` / ``path_params=`` (a mapping, or a factory of the connection's index)
        or ``url=``, and `WsClient` keywords for its clients (``origin=``...).
        """
        from pytest_ws_resilience.plugin.loop_objects import TestStorm

        storm = TestStorm(
            ws_server.url,
            ws_tokens,
            ws_settings,
            resources=ws_server.resources,
            locust_master=locust_master_option(request.config),
            watch=test_watch(request.node),
            loop=asyncio.get_running_loop(),
            loop_scope=loop_scope,
        )
        try:
            yield storm
        finally:
            await storm.aclose()

    module = ModuleType(f"pytest_ws_resilience.plugin.loop_fixtures[{loop_scope}]")
    module.__doc__ = f"Event-loop-bound fixtures of pytest-ws-resilience ({loop_scope} loops)."
    fixtures = {
        "ws_client_factory": in_test_loop(loop_scope, "ws_client_factory", ws_client_factory),
        "ws_client": in_test_loop(loop_scope, "ws_client", ws_client),
        "_ws_shared_pool": _ws_shared_pool,
        "ws_pool": ws_pool,
        "ws_chaos": ws_chaos,
        "ws_storm": ws_storm,
    }
    for name, fixture in fixtures.items():
        setattr(module, name, fixture)
    return module
