"""What the event-loop-bound fixtures hand to a test: the client factory, the pool's
leases, the storm; and the checks they share (the test runs in the fixtures' loop, a
``user=`` is a `TestUser`).

Apart from `pytest_ws_resilience.plugin.loop_fixtures`, which defines the fixtures at
configure time, so that loading the plugin does not import the client, the pool or the
storm: a fixture imports this module when it first runs.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.closing import close_clients, start_closing
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
from pytest_ws_resilience.plugin.watch import TestWatch

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.proxy import ChaosProxy
    from pytest_ws_resilience.load.scenario import Scenario
    from pytest_ws_resilience.plugin.options import LoopScope

    # Types only: a suite that never pools connections loads no pool (nor its logger,
    # which pytest's log capture visits at every phase of every test).
    from pytest_ws_resilience.pool.pool import ConnectionPool
    from pytest_ws_resilience.pool.stats import PoolStats

__all__ = [
    "ChaosFactory",
    "ClientFactory",
    "TestClientFactory",
    "TestPool",
    "TestStorm",
    "check_loop",
    "check_user",
    "close_all",
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


async def close_all(clients: Sequence[WsClient], settings: WsSettings) -> None:
    """Close every client at once, bounded by the close timeout (plus a margin)."""
    await close_clients(clients, settings.close_timeout.value + 1.0)


class TestClientFactory:
    """The ``ws_client_factory`` fixture: ``await ws_client_factory(...)`` makes one
    client, ``await ws_client_factory.many(n, ...)`` makes ``n`` whose handshakes are
    released together (`pytest_ws_resilience.client.release`). Every client it made is
    closed by `aclose` (the fixture's teardown), concurrently and bounded."""

    __test__ = False

    def __init__(
        self,
        server_url: str,
        settings: WsSettings,
        user_factory: Callable[..., TestUser],
        watch: TestWatch,
        *,
        loop: asyncio.AbstractEventLoop,
        loop_scope: str,
    ) -> None:
        self._server_url = server_url
        self._settings = settings
        self._user_factory = user_factory
        self._watch = watch
        self._loop = loop
        self._loop_scope = loop_scope
        self._clients: list[WsClient] = []
        #: The jitter seed of the last `many` call (printed too), for a replay.
        self.last_seed: int | None = None

    async def __call__(
        self,
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
        check_loop(self._loop, "ws_client_factory", self._loop_scope)
        check_user("ws_client_factory", user)
        client = WsClient(
            route_url(self._server_url, url, path, path_params),
            user=user if user is not None else self._user_factory(),
            token=token,
            auth=auth,
            settings=self._settings,
            max_message_size=max_message_size,
            **options,
        )
        self._clients.append(client)
        self._watch.track(client)
        if connect:
            await client.connect()
        return client

    def start_closing(self) -> None:
        """Start the closing handshake of every client made here, without waiting
        (`pytest_ws_resilience.client.closing.start_closing`); `aclose` ends them."""
        start_closing(self._clients)

    async def aclose(self) -> None:
        """Close every client made here (the fixture's teardown)."""
        await close_all(self._clients, self._settings)

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
            await self(
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
        locust_master: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, tokens, settings, **options)
        self._watch = watch
        self._loop = loop
        self._loop_scope = loop_scope
        self._locust_master = locust_master

    def _check_ready(self) -> None:
        check_loop(self._loop, "ws_storm", self._loop_scope)

    def _on_client(self, client: WsClient) -> None:
        self._watch.track(client)  # ws_isolation watches storm clients too

    def _on_client_closed(self, client: WsClient) -> None:
        self._watch.untrack(client)

    def _on_result(self, result: StormResult) -> None:
        self._watch.storms.append(result.as_dict())

    async def distributed(
        self,
        scenario: Scenario,
        *,
        users: int,
        spawn_rate: float | None = None,
        workers: int = 2,
        run_time: float = 60.0,
        isolation: bool = True,
        reconnects: int = 0,
        startup_timeout: float = 60.0,
        label: str | None = None,
    ) -> StormResult:
        """Play ``scenario`` once per user, ``users`` users, on Locust's distributed
        engine: a headless master and ``workers`` local worker processes against the
        server under test; or, with ``--ws-locust-master=HOST:PORT``, on the master
        already running there (its web UI's address: ``ws-resilience-load --master
        --web-port PORT``), once ``workers`` of its workers are connected.

        Returns the same `StormResult` as the in-process storms (a
        `DistributedResult`: plus each worker's share), from Locust's own statistics;
        the run's card goes to ``--ws-report``. The run ends when every user has played
        the scenario, or at ``run_time`` (seconds) at the latest; every process is
        ended, bounded, before this returns. Each worker runs the isolation detector
        over its users (``isolation=False``: off): a violation is an ``isolation``
        error carrying the report. ``spawn_rate``: users started per second (default:
        all within a second). Blocking work runs in a thread; the test's loop stays free.

        Raises:
            ValueError: a bad argument, or a scenario that cannot travel to the workers
                (one line).
            LocustExtraMissingError: Locust is not installed.
            LocustRunError: the master or a worker did not start or run (its log).
        """
        self._check_ready()
        from pytest_ws_resilience.load.scenario import check_picklable
        from pytest_ws_resilience.locust.attach import run_on_master
        from pytest_ws_resilience.locust.distributed import (
            DistributedRun,
            parse_master,
            run_distributed,
        )
        from pytest_ws_resilience.locust.spec import RunSpec

        check_picklable(scenario)
        count = check_count("users", users, minimum=1, maximum=MAX_CONNECTIONS)
        run = DistributedRun(
            RunSpec(
                scenario,
                self.url,
                count,
                env=self.settings.env,
                project_dir=self.settings.project_dir,
                isolation=isolation,
                reconnects=check_count("reconnects", reconnects, minimum=0, maximum=100),
                label=label or f"distributed {scenario.name} users={count} workers={workers}",
                run_id=secrets.token_hex(8),
            ),
            spawn_rate=float(count) if spawn_rate is None else spawn_rate,
            workers=workers,
            run_time=run_time,
            secret=self.settings.keys.run_secret,
            startup_timeout=startup_timeout,
        )
        if self._locust_master is None:
            result = await asyncio.to_thread(run_distributed, run)
        else:
            master = parse_master(self._locust_master)
            result = await asyncio.to_thread(run_on_master, run, master)
        self._on_result(result)
        return result
