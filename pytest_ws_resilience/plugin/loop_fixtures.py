"""The plugin's fixtures bound to an event loop: clients, pool, chaos, storm.

Connections belong to the loop they were opened in, so these fixtures and the tests
using them must share it. pytest-asyncio needs a fixture's loop scope when the fixture
is defined, and ours is configurable (ini ``ws_loop_scope``: "function", the default, or
"session" so pooled connections live across tests), so `loop_scoped_fixtures` defines
them at configure time, for that scope, as a plugin module of their own. Each checks
(`check_loop`) that the test runs in its loop, and says how to fix it when not.

Like `pytest_ws_resilience.plugin.fixtures`, this module imports no other glue than the
shared state (`pytest_ws_resilience.plugin.stash`, `pytest_ws_resilience.plugin.watch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import pytest_asyncio

from pytest_ws_resilience.chaos.seeds import derive_seed
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.closing import close_clients
from pytest_ws_resilience.client.jitter import check_seed, jitter_schedule, new_base_seed
from pytest_ws_resilience.client.metrics import Counters
from pytest_ws_resilience.client.release import connect_together, options_at
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.bounds import MAX_CONNECTIONS, check_count, shown
from pytest_ws_resilience.config.routes import route_url
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsResilienceError
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.plugin.stash import CHAOS_KEY, RUN_KEY
from pytest_ws_resilience.plugin.watch import TestWatch, test_watch
from pytest_ws_resilience.pool.pool import ConnectionPool
from pytest_ws_resilience.pool.stats import PoolStats
from pytest_ws_resilience.servers.under_test import ServerUnderTest

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.proxy import ChaosProxy
    from pytest_ws_resilience.plugin.options import LoopScope

__all__ = [
    "ChaosFactory",
    "ClientFactory",
    "TestClientFactory",
    "TestPool",
    "TestStorm",
    "check_loop",
    "check_user",
    "loop_scoped_fixtures",
]


class ClientFactory(Protocol):
    def __call__(
        self,
        user: TestUser | None = None,
        *,
        token: str | None = None,
        url: str | None = None,
        path: str | None = None,
        path_params: Mapping[str, Any] | None = None,
        auth: str | Sequence[str] | None = None,
        max_message_size: int | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        user_agent: str | None = None,
        compression: bool | None = None,
        connect: bool = True,
        **options: Any,
    ) -> Awaitable[WsClient]: ...

    def many(
        self,
        n: int,
        users: Sequence[TestUser] | None = None,
        *,
        jitter: float = 0.0,
        seed: int | None = None,
        **options: Any,
    ) -> Awaitable[list[WsClient]]: ...


class ChaosFactory(Protocol):
    def __call__(
        self,
        upstream_url: str | None = None,
        *,
        preset: str | None = None,
        seed: int | None = None,
        strip_compression: bool = True,
    ) -> Awaitable[ChaosProxy]: ...


def check_loop(fixture_loop: asyncio.AbstractEventLoop, name: str, loop_scope: str) -> None:
    """Fail clearly when a test runs in another loop than the fixture's connections."""
    if asyncio.get_running_loop() is not fixture_loop:
        raise WsResilienceError(
            f"{name} lives in the {loop_scope}-scoped event loop (ini ws_loop_scope = "
            f"{loop_scope}) but this test runs in another one: mark it "
            f'@pytest.mark.asyncio(loop_scope="{loop_scope}") or set '
            f"asyncio_default_test_loop_scope = {loop_scope}"
        )


def check_user(fixture: str, user: object) -> None:
    """Refuse a ``user=`` that is not a `TestUser` with a line naming the fixture (a
    user id or a token passed as the user is the usual slip).

    Raises:
        ValueError: one line naming the fixture and what to pass instead.
    """
    if user is not None and not isinstance(user, TestUser):
        raise ValueError(
            f"{fixture}(user=...) takes a TestUser (e.g. ws_user_factory(id=...)), got "
            f"{type(user).__name__} {shown(user)}; a token of your own goes in token="
        )


async def _close_all(clients: Sequence[WsClient], settings: WsSettings) -> None:
    """Close every client at once, bounded by the close timeout (plus a margin)."""
    await close_clients(clients, settings.close_timeout.value + 1.0)


class TestClientFactory:
    """The ``ws_client_factory`` fixture: ``await ws_client_factory(...)`` makes one
    client, ``await ws_client_factory.many(n, ...)`` makes ``n`` whose handshakes are
    released together (`pytest_ws_resilience.client.release`)."""

    __test__ = False

    def __init__(self, make: Callable[..., Awaitable[WsClient]], settings: WsSettings) -> None:
        self._make = make
        self._settings = settings
        #: The jitter seed of the last `many` call (printed too), for a replay.
        self.last_seed: int | None = None

    def __call__(self, user: TestUser | None = None, **options: Any) -> Awaitable[WsClient]:
        return self._make(user, **options)

    async def many(
        self,
        n: int,
        users: Sequence[TestUser] | None = None,
        *,
        jitter: float = 0.0,
        seed: int | None = None,
        **options: Any,
    ) -> list[WsClient]:
        """``n`` connected clients whose handshakes start together: one barrier releases
        them all, then each waits its own delay in ``[0, jitter]`` seconds, drawn from
        ``seed`` (random when None; printed), so a race in the server's accept or auth
        path shows, and replays. ``users`` are cycled when fewer than ``n`` (fresh users
        when None); ``options`` as the factory's (``path_params`` may be a factory of
        the client's index). Every client is closed at teardown.

        Raises:
            ValueError: a bad ``n``, ``users``, ``jitter`` or ``seed`` (one line).
            WsAuthError, WsConnectError, WsTimeoutError: a handshake failed (the first
                failure; the others are in the message).
        """
        count = check_count("n", n, minimum=1, maximum=MAX_CONNECTIONS)
        if users is not None:
            users = list(users)
            if not users:
                raise ValueError("users is empty: give at least one TestUser, or None")
            for user in users:
                check_user("ws_client_factory.many", user)
        base = new_base_seed() if seed is None else check_seed(seed)
        delays = jitter_schedule(base, count, jitter, "connect")
        self.last_seed = base
        print(f"ws_client_factory.many({count}): jitter {jitter * 1000:g} ms, seed {base}")
        clients = [
            await self._make(
                users[index % len(users)] if users else None,
                connect=False,
                **options_at(options, index),
            )
            for index in range(count)
        ]
        outcomes = await connect_together(clients, delays, self._settings)
        failures = [(i, o) for i, o in enumerate(outcomes) if o is not None]
        if failures:
            index, first = failures[0]
            if len(failures) > 1:
                first.add_note(
                    f"ws_client_factory.many: {len(failures)} of {count} handshakes failed "
                    f"(seed {base}); the first, client {index}, is shown"
                )
            raise first
        return clients


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
        path: str | None = None,
        path_params: Mapping[str, Any] | None = None,
        auth: str | Sequence[str] | None = None,
        **options: Any,
    ) -> WsClient:
        """A connected client for ``user`` (`ws_pool_user` when None): reused if the pool
        holds a healthy one for the same user, URL, auth and options (``headers=``,
        ``origin=``... over the settings' connection options). ``path`` (a template
        filled from ``path_params``) picks another endpoint of the server."""
        check_loop(self._loop, "ws_pool", self._loop_scope)
        check_user("ws_pool.acquire", user)
        before = self.pool.stats
        client = await self.pool.acquire(
            user if user is not None else self._default_user,
            url=route_url(self._url, url, path, path_params),
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
        ws_user_factory: Callable[..., TestUser],
    ) -> AsyncIterator[ClientFactory]:
        """``await ws_client_factory(user=None, *, token=None, url=None, path=None,
        path_params=None, auth=None, headers=None, origin=None, ...)``.

        Each call returns a `WsClient` (connected unless ``connect=False``) for ``user``
        (a fresh one when None); ``token`` overrides the user's token (negative tests);
        ``path`` (``"/chat/{room}"``, filled from ``path_params``) reaches another
        endpoint of the server; ``auth`` is a method or a fallback chain; ``headers``,
        ``origin``, ``subprotocols``, ``user_agent`` and ``compression`` go over the
        settings' connection options; other keywords go to `WsClient`. Every client made
        here is closed at teardown, concurrently and bounded.
        """
        loop = asyncio.get_running_loop()
        watch = test_watch(request.node)
        clients: list[WsClient] = []

        async def make_client(
            user: TestUser | None = None,
            *,
            token: str | None = None,
            url: str | None = None,
            path: str | None = None,
            path_params: Mapping[str, Any] | None = None,
            auth: str | Sequence[str] | None = None,
            max_message_size: int | None = None,
            connect: bool = True,
            **options: Any,
        ) -> WsClient:
            check_loop(loop, "ws_client_factory", loop_scope)
            check_user("ws_client_factory", user)
            client = WsClient(
                route_url(ws_server.url, url, path, path_params),
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
            yield TestClientFactory(make_client, ws_settings)
        finally:
            await _close_all(clients, ws_settings)

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def ws_client(
        request: pytest.FixtureRequest,
        ws_server: ServerUnderTest,
        ws_settings: WsSettings,
        ws_user: TestUser,
    ) -> AsyncIterator[WsClient]:
        """A connected `WsClient` for `ws_user`, closed (bounded) at teardown.

        Made here rather than through ``ws_client_factory``: the most used fixture pays
        for one event-loop fixture, not two (each costs a loop run at setup and at
        teardown, on every test).
        """
        client = WsClient(ws_server.url, user=ws_user, settings=ws_settings)
        test_watch(request.node).track(client)
        try:
            await client.connect()
            yield client
        finally:
            await _close_all([client], ws_settings)

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

    module = ModuleType(f"pytest_ws_resilience.plugin.loop_fixtures[{loop_scope}]")
    module.__doc__ = f"Event-loop-bound fixtures of pytest-ws-resilience ({loop_scope} loops)."
    fixtures = {
        "ws_client_factory": ws_client_factory,
        "ws_client": ws_client,
        "_ws_shared_pool": _ws_shared_pool,
        "ws_pool": ws_pool,
        "ws_chaos": ws_chaos,
        "ws_storm": ws_storm,
    }
    for name, fixture in fixtures.items():
        setattr(module, name, fixture)
    return module
