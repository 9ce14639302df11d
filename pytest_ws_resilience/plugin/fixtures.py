"""The plugin's fixtures: settings, server, tokens, users, clients, isolation, pool.

Thin glue over the library: every fixture delegates to a library object and adds only
lifetime management.

Two kinds of fixture live here:
- loop-agnostic ones (settings, server, tokens, users, ``ws_isolation``), plain
  functions of this module; the embedded server runs in its own thread with its own
  loop (as pytest-httpserver does), so they work with any event-loop scope;
- async ones bound to an event loop (``ws_client_factory``, ``ws_client``, ``ws_pool``),
  built by `loop_scoped_fixtures` for the loop scope configured with the ini key
  ``ws_loop_scope`` ("function", the default, or "session" so pooled connections live
  across tests). Connections belong to the loop they were opened in, so these fixtures
  and the tests using them must share it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pytest
import pytest_asyncio

from pytest_ws_resilience.chaos.seeds import derive_seed
from pytest_ws_resilience.client.client import WsClient, close_clients
from pytest_ws_resilience.client.metrics import Counters
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import (
    AsgiAppStartupError,
    ServiceError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.plugin.stash import CHAOS_KEY, CHAOS_SEED_KEY, SETTINGS_KEY, WATCH_KEY
from pytest_ws_resilience.plugin.watch import IsolationGuard, TestWatch
from pytest_ws_resilience.pool.pool import ConnectionPool
from pytest_ws_resilience.pool.stats import PoolStats
from pytest_ws_resilience.servers.under_test import (
    ServerUnderTest,
    open_server_under_test,
    token_factory_for,
)

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.proxy import ChaosProxy

__all__ = [
    "LOOP_SCOPES",
    "ChaosFactory",
    "ClientFactory",
    "TestPool",
    "UserFactory",
    "check_loop",
    "loop_scoped_fixtures",
    "test_watch",
    "ws_isolation",
    "ws_server",
    "ws_settings",
    "ws_tokens",
    "ws_user",
    "ws_user_factory",
]

LoopScope = Literal["function", "session"]
#: Event-loop scopes the async fixtures can be built for (ini ``ws_loop_scope``).
LOOP_SCOPES: tuple[LoopScope, ...] = ("function", "session")


class UserFactory(Protocol):
    def __call__(self, **claims: Any) -> TestUser: ...


class ClientFactory(Protocol):
    def __call__(
        self,
        user: TestUser | None = None,
        *,
        token: str | None = None,
        url: str | None = None,
        auth: str | Sequence[str] | None = None,
        max_message_size: int | None = None,
        connect: bool = True,
        **options: Any,
    ) -> Awaitable[WsClient]: ...


class ChaosFactory(Protocol):
    def __call__(
        self,
        upstream_url: str | None = None,
        *,
        preset: str | None = None,
        seed: int | None = None,
        strip_compression: bool = True,
    ) -> Awaitable[ChaosProxy]: ...


def test_watch(node: pytest.Item) -> TestWatch:
    """The `TestWatch` of a test item (made on first use)."""
    return node.stash.setdefault(WATCH_KEY, TestWatch())


test_watch.__test__ = False  # type: ignore[attr-defined]


# -- loop-agnostic fixtures --------------------------------------------------------------


@pytest.fixture(scope="session")
def ws_settings(pytestconfig: pytest.Config) -> WsSettings:
    """The run's resolved settings (env, URL, timeouts with their sources, auth)."""
    return pytestconfig.stash.get(SETTINGS_KEY, None) or WsSettings()


@pytest.fixture(scope="session")
def ws_tokens(ws_settings: WsSettings) -> TokenFactory:
    """The `TokenFactory` configured for the env: its tokens are accepted by `ws_server`."""
    return token_factory_for(ws_settings)


@pytest.fixture(scope="session")
def ws_server(
    request: pytest.FixtureRequest, ws_settings: WsSettings, ws_tokens: TokenFactory
) -> Iterator[ServerUnderTest]:
    """The server under test: the configured URL, the user's ASGI app (``--ws-app``),
    else the embedded reference server.

    The app or the embedded server starts once per session (once per xdist worker) on a
    free loopback port and stops (bounded) when the session ends. An app that fails to
    start fails the first test that needs it, with the app's traceback, and stops the
    session: the other tests would only repeat the same error.
    """
    failure: str | None = None
    try:
        server = open_server_under_test(ws_settings, ws_tokens)
    except (AsgiAppStartupError, WsTimeoutError, ServiceError) as err:
        if ws_settings.server.app is None and ws_settings.server.command is None:
            raise
        failure = str(err)
    if failure is not None:  # outside the except block: no chained traceback to repeat
        what = "ASGI app" if ws_settings.server.app is not None else "server command"
        request.session.shouldfail = (
            f"the {what} under test failed to start; session stopped (see the first error)"
        )
        pytest.fail(failure, pytrace=False)
    try:
        yield server
    finally:
        server.close(timeout=ws_settings.close_timeout.value)


@pytest.fixture
def ws_user_factory(ws_tokens: TokenFactory) -> UserFactory:
    """``ws_user_factory(**claims) -> TestUser``: a fresh user with a valid token."""

    def make_user(**claims: Any) -> TestUser:
        return ws_tokens.user(**claims)

    return make_user


@pytest.fixture
def ws_user(ws_user_factory: UserFactory) -> TestUser:
    """A fresh `TestUser` for this test."""
    return ws_user_factory()


@pytest.fixture
def ws_isolation(request: pytest.FixtureRequest) -> Iterator[IsolationGuard]:
    """Watch every client of this test for cross-user leaks; fail the test on any.

    Attaches an `IsolationDetector` to each client the test uses (``ws_client``,
    ``ws_client_factory``, ``ws_pool``), whenever it was made. Violations fail the test
    after its body, and at teardown for frames that came late; a test that provokes
    them on purpose calls ``ws_isolation.expect_violations()`` and asserts on
    ``ws_isolation.violations``. Strict (nothing may be expected) under the
    ``websocket_security`` marker, which turns this fixture on by itself.
    """
    strict = request.node.get_closest_marker("websocket_security") is not None
    guard = IsolationGuard(IsolationDetector(), strict=strict)
    watch = test_watch(request.node)
    watch.start_isolation(guard)
    try:
        yield guard
    finally:
        watch.stop_isolation()
    report = guard.verdict()
    if report is not None:
        pytest.fail(report, pytrace=False)


@pytest.fixture(autouse=True)
def _ws_security(request: pytest.FixtureRequest) -> None:
    """``websocket_security`` tests get ``ws_isolation`` without asking for it."""
    if request.node.get_closest_marker("websocket_security") is not None:
        request.getfixturevalue("ws_isolation")


@pytest.fixture(scope="session")
def ws_pool_user(ws_tokens: TokenFactory) -> TestUser:
    """The user ``ws_pool.acquire()`` connects as when given none (one per session,
    so its connection is reused across tests)."""
    return ws_tokens.user()


# -- loop-bound fixtures -----------------------------------------------------------------


class TestPool:
    """The ``ws_pool`` fixture: this test's leases on the session's `ConnectionPool`.

    Every client acquired here is watched by ``ws_isolation`` (when on) and goes back
    to the pool at the end of the test.
    """

    __test__ = False

    def __init__(
        self,
        pool: ConnectionPool,
        watch: TestWatch,
        *,
        url: str,
        default_user: TestUser,
        loop: asyncio.AbstractEventLoop,
        loop_scope: LoopScope,
    ) -> None:
        self.pool = pool
        self._watch = watch
        self._url = url
        self._default_user = default_user
        self._loop = loop
        self._loop_scope = loop_scope
        self._leased: list[WsClient] = []

    def __repr__(self) -> str:
        return f"TestPool(leased={len(self._leased)}, {self.pool!r})"

    @property
    def stats(self) -> PoolStats:
        return self.pool.stats

    async def acquire(
        self,
        user: TestUser | None = None,
        *,
        url: str | None = None,
        auth: str | Sequence[str] | None = None,
        **options: Any,
    ) -> WsClient:
        """A connected client for ``user`` (`ws_pool_user` when None): reused if the pool
        holds a healthy one for the same user, URL, auth and options."""
        check_loop(self._loop, "ws_pool", self._loop_scope)
        before = self.pool.stats
        client = await self.pool.acquire(
            user if user is not None else self._default_user,
            url=url or self._url,
            auth=auth,
            **options,
        )
        after = self.pool.stats
        self._leased.append(client)
        self._watch.track(client)
        # For the run report. The session's pool serves one test at a time per process,
        # so the difference is this acquire's.
        self._watch.pool_hits += after.hits - before.hits
        misses = after.misses - before.misses
        self._watch.pool_misses += misses
        if misses:
            # A fresh connection: all of its traffic (the server's greeting, which may
            # have arrived before it was tracked) belongs to this test.
            self._watch.baselines[id(client)] = Counters()
        return client

    async def release(self, client: WsClient) -> None:
        """Give ``client`` back before the end of the test (optional)."""
        if client in self._leased:
            self._leased.remove(client)
        self._watch.untrack(client)
        await self.pool.release(client)

    async def release_all(self) -> None:
        for client in list(self._leased):
            await self.release(client)


def check_loop(fixture_loop: asyncio.AbstractEventLoop, name: str, loop_scope: str) -> None:
    """Fail clearly when a test runs in another loop than the fixture's connections."""
    if asyncio.get_running_loop() is not fixture_loop:
        raise WsResilienceError(
            f"{name} lives in the {loop_scope}-scoped event loop (ini ws_loop_scope = "
            f"{loop_scope}) but this test runs in another one: mark it "
            f'@pytest.mark.asyncio(loop_scope="{loop_scope}") or set '
            f"asyncio_default_test_loop_scope = {loop_scope}"
        )


async def _close_all(clients: Sequence[WsClient], settings: WsSettings) -> None:
    """Close every client at once, bounded by the close timeout (plus a margin)."""
    await close_clients(clients, settings.close_timeout.value + 1.0)


def loop_scoped_fixtures(loop_scope: LoopScope) -> ModuleType:
    """Build the event-loop-bound fixtures for ``loop_scope``, as a plugin module.

    pytest-asyncio needs a fixture's loop scope when the fixture is defined; this one is
    configurable (ini ``ws_loop_scope``), so the fixtures are defined here, at configure
    time, and registered as a plugin.
    """

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def ws_client_factory(
        request: pytest.FixtureRequest,
        ws_server: ServerUnderTest,
        ws_settings: WsSettings,
        ws_user_factory: UserFactory,
    ) -> AsyncIterator[ClientFactory]:
        """``await ws_client_factory(user=None, *, token=None, url=None, auth=None, ...)``.

        Each call returns a `WsClient` (connected unless ``connect=False``) for ``user``
        (a fresh one when None); ``token`` overrides the user's token (negative tests);
        ``auth`` is a method or a fallback chain; other keywords go to `WsClient`. Every
        client made here is closed at teardown, concurrently and bounded.
        """
        loop = asyncio.get_running_loop()
        watch = test_watch(request.node)
        clients: list[WsClient] = []

        async def make_client(
            user: TestUser | None = None,
            *,
            token: str | None = None,
            url: str | None = None,
            auth: str | Sequence[str] | None = None,
            max_message_size: int | None = None,
            connect: bool = True,
            **options: Any,
        ) -> WsClient:
            check_loop(loop, "ws_client_factory", loop_scope)
            client = WsClient(
                url or ws_server.url,
                user=user if user is not None else ws_user_factory(),
                token=token,
                auth=auth,
                settings=ws_settings,
                max_message_size=max_message_size,
                **options,
            )
            clients.append(client)
            watch.track(client)
            if connect:
                await client.connect()
            return client

        try:
            yield make_client
        finally:
            await _close_all(clients, ws_settings)

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def ws_client(ws_client_factory: ClientFactory, ws_user: TestUser) -> WsClient:
        """A connected `WsClient` for `ws_user` (closed at teardown by the factory)."""
        return await ws_client_factory(ws_user)

    if loop_scope == "session":

        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        async def _ws_shared_pool(ws_settings: WsSettings) -> AsyncIterator[ConnectionPool]:
            pool = ConnectionPool(settings=ws_settings)
            try:
                yield pool
            finally:
                await pool.cleanup_all()

    else:

        @pytest.fixture(scope="session")
        def _ws_shared_pool(ws_settings: WsSettings) -> ConnectionPool:
            # Function-scoped loops: ws_pool empties the pool at the end of each test.
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

        loop = asyncio.get_running_loop()
        run_seed = request.config.stash.get(CHAOS_SEED_KEY, 0)
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

    module = ModuleType(f"pytest_ws_resilience.plugin.fixtures[{loop_scope}]")
    module.__doc__ = f"Event-loop-bound fixtures of pytest-ws-resilience ({loop_scope} loops)."
    fixtures = {
        "ws_client_factory": ws_client_factory,
        "ws_client": ws_client,
        "_ws_shared_pool": _ws_shared_pool,
        "ws_pool": ws_pool,
        "ws_chaos": ws_chaos,
    }
    for name, fixture in fixtures.items():
        setattr(module, name, fixture)
    return module
