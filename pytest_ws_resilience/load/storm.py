"""`Storm`: many authenticated connections at once, connect/disconnect cycles, and
message bursts right after the upgrade, each measured into a `StormResult`.

The asyncio glue of the load tools; usable outside pytest::

    async with Storm(url, TokenFactory(secret), settings) as storm:
        result = await storm.connect(1000)
        result.assert_p95(connect_ms=500)

Every connection is a real `WsClient` (auth, metrics and bounded waits come with it),
as a fresh `TestUser` minted before the clock starts, or one of the given users. A
storm measures the server, so connection retries are off by default: a refused or
reset connection is counted, not hidden by a backoff. Every arrival is bounded (its
handshakes by the connect timeout, its replies by the recv timeout); closing is
concurrent and bounded by the close timeout. Before anything opens, a storm makes room
for its sockets (`load.fd_limit`: the soft open-file limit is raised when too low), and
a storm or burst pauses the cyclic garbage collector until it is over (`load.collector`).

Given the server's ``resources`` (``ws_server.resources``, ``ServiceHandle.resources``),
cycles sample the server before and after (settled: `servers.resources.settled_sample`)
and report its growth per 1,000 cycles, or why it could not be measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from pytest_ws_resilience.client.bounds import handshakes_bound
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.closing import close_clients
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.bounds import (
    MAX_CONNECTIONS,
    MAX_MESSAGES,
    check_count,
    check_rate,
)
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import ServerResourcesUnavailableError
from pytest_ws_resilience.load.arrivals import arrive
from pytest_ws_resilience.load.collector import collector_paused
from pytest_ws_resilience.load.error_kinds import error_kind
from pytest_ws_resilience.load.exchange import Exchange
from pytest_ws_resilience.load.fd_limit import ensure_fd_limit
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.load.routing import PathParams, storm_route
from pytest_ws_resilience.load.rss import current_rss_bytes
from pytest_ws_resilience.load.scenario import Scenario
from pytest_ws_resilience.load.scenario_run import ScenarioRun
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.growth import ResourceSample, ServerGrowth
from pytest_ws_resilience.servers.resources import settled_sample

__all__ = [
    "MessageSpec",
    "PathParams",
    "ReplySpec",
    "ResourcesOf",
    "Storm",
    "TokenFor",
    "burst_message",
    "burst_reply",
]

#: A message to send: a JSON-able object, text, bytes, or a factory called with the
#: message's number (the connection's index in a storm, the message's index in a burst).
MessageSpec = Any
#: The reply that answers a message: fields to match (as ``WsClient.expect``; callables
#: are predicates), or a factory called with the message's number. None: the first frame
#: the server sends after the message that is not its greeting (``settings.greeting``).
ReplySpec = Mapping[str, Any] | Callable[[int], Mapping[str, Any]] | None
#: Which token a user connects with (e.g. ``tokens.expired`` for a negative storm).
TokenFor = Callable[[TestUser], str]
#: Samples the server under test (blocking; raises `ServerResourcesUnavailableError`).
ResourcesOf = Callable[[], ResourceSample]


def burst_message(number: int) -> dict[str, Any]:
    """The default burst message: an application ping the reference server echoes."""
    return {"type": "ping", "burst": number}


def burst_reply(number: int) -> dict[str, Any]:
    """The default burst reply: the pong echoing `burst_message`'s number."""
    return {"type": "pong", "burst": number}


def _message_at(spec: MessageSpec, number: int) -> Any:
    return spec(number) if callable(spec) else spec


def _reply_at(spec: ReplySpec, number: int) -> Mapping[str, Any] | None:
    if spec is None:
        return None
    return spec(number) if callable(spec) else spec


def _positive_int(name: str, value: object, *, maximum: int = MAX_CONNECTIONS) -> int:
    return check_count(name, value, minimum=1, maximum=maximum)


class Storm:
    """Storms of authenticated connections against ``url``, measured.

    Args:
        url: ws:// or wss:// endpoint.
        tokens: mints a fresh user per connection when no users are given.
        settings: timeouts and auth chain of the clients (default `WsSettings()`).
        auth: auth method or fallback chain of every client (default: the settings').
        connect_retries: retries after network errors / 5xx per connection; 0 (the
            default) counts each failure instead of hiding it behind a backoff.
        log_size: frames each client keeps (small: a storm has many clients).
        resources: samples the server at ``url`` (``ws_server.resources``,
            ``ServiceHandle.resources``): cycles then report its growth.
        **client_options: passed to every `WsClient` (e.g. ``origin=``, ``headers=``,
            ``compression=False``), over the settings' connection options.

    Every storm also takes ``url=`` or ``path=`` (a template such as
    ``"/chat/{room}"``, filled from ``path_params=``: a mapping, or a factory of the
    connection's index for per-client rooms), and `WsClient` keywords for its clients
    only (``origin=``, ``headers=``...).
    """

    def __init__(
        self,
        url: str,
        tokens: TokenFactory,
        settings: WsSettings | None = None,
        *,
        auth: str | Sequence[str] | None = None,
        connect_retries: int = 0,
        log_size: int = 64,
        resources: ResourcesOf | None = None,
        **client_options: Any,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"Storm url must be ws:// or wss://, got {redact(url)!r}")
        self.url = url
        self.tokens = tokens
        self.settings = settings if settings is not None else WsSettings()
        self._auth = auth
        self._connect_retries = connect_retries
        self._log_size = log_size
        self._client_options = client_options
        self._resources = resources
        self._held: list[WsClient] = []
        self._count = 0

    def __repr__(self) -> str:
        return f"Storm(url={redact(self.url)!r}, held={len(self._held)})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def held(self) -> list[WsClient]:
        """Open clients of ``hold=True`` storms, closed by `aclose`."""
        return list(self._held)

    async def aclose(self) -> None:
        """Close every held client, concurrently and bounded."""
        held, self._held = self._held, []
        await self._close(held)

    # -- hooks for glue (the pytest fixture tracks clients and records results) ---------

    def _check_ready(self) -> None:
        """Called first by every storm (the fixture checks the event loop here)."""

    def _on_client(self, client: WsClient) -> None:
        """A client was made (before it connects)."""

    def _on_client_closed(self, client: WsClient) -> None:
        """A client was closed by the storm."""

    def _on_result(self, result: StormResult) -> None:
        """A storm finished."""

    # -- storms --------------------------------------------------------------------

    async def connect(
        self,
        n: int | None = None,
        *,
        rate: float | None = None,
        users: Sequence[TestUser] | None = None,
        token: TokenFor | None = None,
        hold: bool = False,
        message: MessageSpec = None,
        reply: ReplySpec = None,
        label: str | None = None,
        url: str | None = None,
        path: str | None = None,
        path_params: PathParams = None,
        **client_options: Any,
    ) -> StormResult:
        """Open ``n`` authenticated connections and measure them.

        Args:
            n: connections (default: one per user in ``users``).
            rate: None opens them all at once; else connections per second, arriving on
                the clock (open model, like k6's constant-arrival-rate): a slow
                handshake does not delay the next arrival.
            users: connect as these users (cycled when fewer than ``n``); default: a
                fresh user per connection.
            token: the token each user connects with (e.g. ``tokens.expired``).
            hold: keep the connections open after the storm (``result.clients``,
                closed by `aclose`); else all are closed, concurrently, at its end.
            message: sent by each connection once open (its number is the
                connection's index); its reply is timed.
            reply: what answers ``message`` (None: the first frame after it that is
                not the server's greeting; a server that never answers fails every
                connection with a ``timeout`` error, and ``result.nothing_checked``
                says no reply was seen).
            label: names the storm in reports.
            url: another endpoint than the storm's; path: a path (template) on it.
            path_params: the template's values: a mapping, or a factory of the
                connection's index.
            **client_options: `WsClient` keywords of these clients (``origin=``...).

        Raises:
            ValueError: bad arguments (one line naming the problem).
        """
        self._check_ready()
        route = storm_route(self.url, url, path, path_params)
        count = _positive_int("n", n if n is not None else len(users or ()))
        if rate is not None:
            rate = check_rate("rate", rate, count=count)
        if label is None:
            pace = "all at once" if rate is None else f"at {rate:g}/s"
            label = f"connect n={count} {pace}{' hold' if hold else ''}"
        result = StormResult("storm", label, attempted=count)
        sends = message is not None
        return await self._run(
            result,
            self._users(count, users),
            token,
            messages=lambda i: [_message_at(message, i)] if sends else [],
            replies=lambda i: [_reply_at(reply, i)] if sends else [],
            rate=rate,
            settle=False,
            hold=hold,
            route=route,
            options=client_options,
        )

    async def burst(
        self,
        n_clients: int = 10,
        messages_per_client: int = 100,
        *,
        during_handshake: bool = True,
        users: Sequence[TestUser] | None = None,
        token: TokenFor | None = None,
        message: MessageSpec = None,
        reply: ReplySpec = None,
        label: str | None = None,
        url: str | None = None,
        path: str | None = None,
        path_params: PathParams = None,
        **client_options: Any,
    ) -> StormResult:
        """``n_clients`` connections each write ``messages_per_client`` messages at once
        and every reply is awaited: proof the server received them all.

        Args:
            during_handshake: write right after the upgrade, before waiting for
                anything (the server's handler may not be reading yet); False waits for
                a ping round trip first.
            message: default `burst_message` (``{"type": "ping", "burst": k}``); a
                factory gets the message's index within its client.
            reply: default `burst_reply` (the matching pong); required with ``message``.
            url, path, path_params, client_options: as for `connect`.
        """
        self._check_ready()
        route = storm_route(self.url, url, path, path_params)
        clients = _positive_int("n_clients", n_clients)
        per_client = _positive_int("messages_per_client", messages_per_client, maximum=MAX_MESSAGES)
        if message is None:
            message, reply = burst_message, burst_reply
        elif reply is None:
            raise ValueError("burst(message=...) needs reply=... to check each message arrived")
        if label is None:
            when = "during handshake" if during_handshake else "after a ping"
            label = f"burst {clients}x{per_client} {when}"
        result = StormResult("burst", label, attempted=clients)
        return await self._run(
            result,
            self._users(clients, users),
            token,
            messages=lambda _: [_message_at(message, k) for k in range(per_client)],
            replies=lambda _: [_reply_at(reply, k) for k in range(per_client)],
            rate=None,
            settle=not during_handshake,
            hold=False,
            route=route,
            options=client_options,
        )

    async def cycles(
        self,
        n: int = 100,
        *,
        concurrency: int = 10,
        users: Sequence[TestUser] | None = None,
        token: TokenFor | None = None,
        message: MessageSpec = None,
        reply: ReplySpec = None,
        label: str | None = None,
        url: str | None = None,
        path: str | None = None,
        path_params: PathParams = None,
        **client_options: Any,
    ) -> StormResult:
        """``n`` rapid connect/disconnect cycles, ``concurrency`` at a time.

        Each cycle opens a connection, optionally exchanges ``message`` / ``reply``,
        and closes it; the next cycle starts at once. Memory growth is taken after the
        last close, so it shows what the cycles leaked rather than what they held.
        ``url``, ``path``, ``path_params`` and ``client_options``: as for `connect`.

        With the server's ``resources``, the server is sampled before and after (once
        its fd count stopped falling, bounded by the close timeout) and
        ``result.server_growth`` holds its growth per 1,000 cycles; else
        ``result.server_growth_note`` says why not.
        """
        self._check_ready()
        route = storm_route(self.url, url, path, path_params)
        count = _positive_int("n", n)
        workers = _positive_int("concurrency", concurrency)
        if label is None:
            label = f"cycles n={count} concurrency={workers}"
        result = StormResult("cycles", label, attempted=count)
        ensure_fd_limit(min(workers, count))
        all_users = self._users(count, users)
        sends = message is not None
        numbers = iter(range(count))
        before, result.server_growth_note = await self._sample_server(url)
        rss_before = current_rss_bytes()
        started = time.monotonic()

        async def worker() -> None:
            for index in numbers:  # shared: each worker takes the next cycle
                client = self._client(index, all_users[index], token, route(index), client_options)
                try:
                    ok = await self._arrive(
                        client,
                        index,
                        result,
                        started,
                        [_message_at(message, index)] if sends else [],
                        [_reply_at(reply, index)] if sends else [],
                        settle=False,
                    )
                finally:
                    await client.close()
                    self._on_client_closed(client)
                result.succeeded += ok

        await asyncio.gather(*(worker() for _ in range(min(workers, count))))
        result.duration_s = time.monotonic() - started
        result.rss_growth_bytes = _growth(rss_before, current_rss_bytes())
        if before is not None:
            after, result.server_growth_note = await self._sample_server(url)
            if after is not None:
                result.server_growth = ServerGrowth(before, after, count)
        self._on_result(result)
        return result

    async def run(
        self,
        scenario: Scenario,
        users: int = 1,
        spawn_rate: float | None = None,
        *,
        label: str | None = None,
        token: TokenFor | None = None,
        url: str | None = None,
        path: str | None = None,
        path_params: PathParams = None,
        **client_options: Any,
    ) -> StormResult:
        """``users`` fresh users play ``scenario``, ``spawn_rate`` arriving per second (None:
        all at once): `load.scenario_run`. Other keywords as for `connect`."""
        self._check_ready()
        route = storm_route(self.url, url, path, path_params)
        plan = ScenarioRun(scenario, users, spawn_rate, label)

        def client(i: int) -> WsClient:
            return self._client(i, self.tokens.user(), token, route(i), client_options)

        result = await plan.run(client, self._close, self.settings)
        self._on_result(result)
        return result

    async def _sample_server(self, url: str | None) -> tuple[ResourceSample | None, str | None]:
        """A settled sample of the server under test, or why there is none."""
        if self._resources is None:
            return None, "no server to sample: the storm was given no resources="
        if url is not None and urlsplit(url).netloc != urlsplit(self.url).netloc:
            return None, f"url= {redact(url)} is not the server whose resources are known"
        bound = self.settings.close_timeout.value
        try:
            sample = await asyncio.to_thread(settled_sample, self._resources, timeout=bound)
        except ServerResourcesUnavailableError as err:
            return None, str(err)
        return sample, None

    # -- the runner ----------------------------------------------------------------

    def _users(self, count: int, users: Sequence[TestUser] | None) -> list[TestUser]:
        """One user per connection, minted now so that minting is not timed."""
        if users is None:
            return [self.tokens.user() for _ in range(count)]
        if not users:
            raise ValueError("users is empty: give at least one TestUser, or None")
        return [users[i % len(users)] for i in range(count)]

    def _client(
        self,
        index: int,
        user: TestUser,
        token: TokenFor | None,
        url: str,
        options: Mapping[str, Any],
    ) -> WsClient:
        self._count += 1
        client = WsClient(
            url,
            user=user,
            token=token(user) if token is not None else None,
            auth=self._auth,
            settings=self.settings,
            connect_retries=self._connect_retries,
            log_size=self._log_size,
            name=f"storm#{self._count}:{user.id}",
            **{**self._client_options, **options},
        )
        self._on_client(client)
        return client

    def _arrival_bound(self, client: WsClient, exchanges: bool) -> float:
        """The most one arrival may take: every handshake it may try, then its replies."""
        methods = len(client.auth_methods)
        bound = handshakes_bound(methods, self._connect_retries, self.settings) + 1.0
        if exchanges:
            bound += 2 * self.settings.recv_timeout.value  # a settling ping, then the replies
        return bound

    async def _arrive(
        self,
        client: WsClient,
        index: int,
        result: StormResult,
        storm_start: float,
        messages: list[Any],
        replies: list[Mapping[str, Any] | None],
        *,
        settle: bool,
    ) -> bool:
        """Connect ``client``, exchange its messages; record everything. True on success."""
        result.started_s.append(time.monotonic() - storm_start)
        bound = self._arrival_bound(client, bool(messages))
        exchange = Exchange(self.settings.greeting)
        try:
            async with asyncio.timeout(bound):
                await client.connect()
                result.opened_s.append(time.monotonic() - storm_start)
                if client.metrics.handshake_s is not None:
                    result.connect_ms.append(client.metrics.handshake_s * 1000.0)
                if messages:
                    client.add_receive_hook(exchange.on_frame)
                    if settle:
                        await client.ping()
                    await exchange.send_all(client, messages, replies)
                    await exchange.wait(client, self.settings.recv_timeout.value)
        except Exception as exc:  # counted by kind: a storm reports failures, not raises
            text = str(exc) or f"no outcome within {bound:g}s"
            if client.name not in text:
                text = f"{client.name}: {text}"
            result.record_error(error_kind(exc), text)
            return False
        finally:
            result.messages_sent += exchange.sent
            result.replies_received += len(exchange.round_trips_s)
            result.round_trip_ms.extend(rt * 1000.0 for rt in exchange.round_trips_s)
            if exchange.first_frame_at is not None and exchange.first_sent_at is not None:
                first = exchange.first_frame_at - exchange.first_sent_at
                result.first_message_ms.append(first * 1000.0)
        return True

    async def _run(
        self,
        result: StormResult,
        users: list[TestUser],
        token: TokenFor | None,
        *,
        messages: Callable[[int], list[Any]],
        replies: Callable[[int], list[Mapping[str, Any] | None]],
        rate: float | None,
        settle: bool,
        hold: bool,
        route: Callable[[int], str],
        options: Mapping[str, Any],
    ) -> StormResult:
        # The collector waits until the storm is over (`load.collector`: why).
        with collector_paused():
            ensure_fd_limit(len(users))  # before anything opens: one clear error, not EMFILEs
            rss_before = current_rss_bytes()  # the clients' own objects count as their memory
            clients = [
                self._client(i, user, token, route(i), options) for i, user in enumerate(users)
            ]
            ok = [False] * len(clients)

            async def arrival(index: int) -> None:
                ok[index] = await self._arrive(
                    clients[index],
                    index,
                    result,
                    started,
                    messages(index),
                    replies(index),
                    settle=settle,
                )

            started = time.monotonic()
            try:
                await arrive(len(clients), rate, arrival, name="storm arrival", cancel_wait=1.0)
            except BaseException:
                await self._close(clients)
                raise
            result.duration_s = time.monotonic() - started
            result.rss_growth_bytes = _growth(rss_before, current_rss_bytes())  # at the peak
            result.succeeded = sum(ok)
            if hold:
                kept = [c for c, good in zip(clients, ok, strict=True) if good]
                result.clients = kept
                self._held.extend(kept)
                await self._close([c for c, good in zip(clients, ok, strict=True) if not good])
            else:
                await self._close(clients)
            self._on_result(result)
            return result

    async def _close(self, clients: Sequence[WsClient]) -> None:
        """Close ``clients`` at once; each close is bounded, and so is the whole."""
        await close_clients(clients, self.settings.close_timeout.value + 1.0)
        for client in clients:
            self._on_client_closed(client)


def _growth(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None else None
