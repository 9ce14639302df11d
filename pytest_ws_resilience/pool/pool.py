"""`ConnectionPool`: reuse open, authenticated connections across tests.

An authenticated connect costs a TCP handshake, an HTTP upgrade, a JWT check on the
server and its greeting; a suite that opens a connection per test for the same few
users pays that again and again. The pool keeps released clients open and hands them
back to the next ``acquire`` for exactly the same identity, after a ping.

The rules, in order of importance:

- **Never cross users.** A client is reused only for the same key: URL, user id, token,
  auth chain and client options (`pytest_ws_resilience.pool.keys`). Same id with
  another token is a miss.
- **Exclusive leases.** An idle client is taken out of the idle set before anything is
  awaited, so concurrent ``acquire`` calls never share one.
- **Clean slate.** A reused client's event log is reset (`WsClient.reset_log`) and its
  observers detached on release, so nothing of the previous lease leaks into the next.
- **Healthy or gone.** Before reuse a client is pinged (bounded) unless it proved alive
  (a frame received, a ping answered) within ``health_check_interval``; a dead or
  unhealthy one is evicted and replaced. Idle ones past ``idle_timeout`` are evicted.
- **Bounded.** At most ``max_size`` open connections; a miss when full evicts the least
  recently used idle client, and raises `WsPoolExhaustedError` when all are leased.
- **One event loop per client.** A client belongs to the loop it connected in. One of
  another loop is evicted ("loop") without awaiting anything on that loop
  (`pytest_ws_resilience.pool.abandon`).

The key and the stats are pure data (`pytest_ws_resilience.pool.keys`,
`pytest_ws_resilience.pool.stats`); this module is the asyncio bookkeeping around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.closing import close_clients
from pytest_ws_resilience.config.bounds import MAX_CONNECTIONS, check_count, check_seconds
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import (
    WsConnectionClosedError,
    WsPoolExhaustedError,
    WsResilienceError,
)
from pytest_ws_resilience.pool.abandon import abandon
from pytest_ws_resilience.pool.keys import PoolKey, pool_key
from pytest_ws_resilience.pool.stats import PoolStats

if TYPE_CHECKING:
    from pytest_ws_resilience.client.tokens import TestUser

__all__ = ["ConnectionPool"]

_logger = logging.getLogger("pytest_ws_resilience.pool")

#: Added to a client's close timeout to bound closing several at once: covers the
#: client's own turn of the loop for an aborted transport to report its end.
_CLOSE_MARGIN_S = 2.5


@dataclass(eq=False)
class _Entry:
    """One pooled connection and where it stands."""

    client: WsClient
    key: PoolKey
    loop: asyncio.AbstractEventLoop
    idle_since: float = 0.0
    #: ``time.monotonic()`` of the last pong the pool saw (frames are read from the log).
    alive_at: float = 0.0


class ConnectionPool:
    """Reuses open, healthy connections for the same user; never across users.

    Args:
        settings: settings for the clients the pool opens (default `WsSettings()`); an
            acquire may pass ``settings=`` among its client options to override them.
        max_size: most open connections at once (idle + leased).
        idle_timeout: seconds an idle connection may wait before it is evicted.
        health_check_timeout: bound of the ping that precedes a reuse.
        health_check_interval: a connection that proved alive (received a frame or
            answered the pool's ping) less than this many seconds ago is reused without
            a new ping (its state is still checked); 0 pings before every reuse. A ping
            is a full round trip, often most of the cost of a hit: the window (like
            HikariCP's 500 ms validation bypass) spares it in back-to-back reuse.

    Raises:
        ValueError: a non-positive size or timeout.
    """

    def __init__(
        self,
        *,
        settings: WsSettings | None = None,
        max_size: int = 50,
        idle_timeout: float = 300.0,
        health_check_timeout: float = 2.0,
        health_check_interval: float = 0.5,
    ) -> None:
        max_size = check_count(
            "ConnectionPool max_size", max_size, minimum=1, maximum=MAX_CONNECTIONS
        )
        idle_timeout = check_seconds("ConnectionPool idle_timeout", idle_timeout)
        health_check_timeout = check_seconds(
            "ConnectionPool health_check_timeout", health_check_timeout
        )
        health_check_interval = check_seconds(
            "ConnectionPool health_check_interval", health_check_interval, minimum=0.0
        )
        self._settings = settings if settings is not None else WsSettings()
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.health_check_timeout = health_check_timeout
        self.health_check_interval = health_check_interval
        # Idle entries oldest release first (LRU at the front); per key for O(1) hits.
        self._idle: OrderedDict[WsClient, _Entry] = OrderedDict()
        self._idle_by_key: dict[PoolKey, OrderedDict[WsClient, _Entry]] = {}
        self._leased: dict[WsClient, _Entry] = {}
        self._opening = 0  # misses connecting now: they hold a slot
        self._stats = PoolStats()

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"ConnectionPool(size={s.size}/{self.max_size}, idle={s.idle}, leased={s.leased}, "
            f"hits={s.hits}, misses={s.misses}, evictions={s.evictions}, "
            f"reuse_rate={s.reuse_rate:.2f})"
        )

    @property
    def stats(self) -> PoolStats:
        """A snapshot of the counters and the current sizes."""
        s = self._stats
        return PoolStats(
            hits=s.hits,
            misses=s.misses,
            evictions=sum(s.evicted_by_reason.values()),
            evicted_by_reason=dict(s.evicted_by_reason),
            created=s.created,
            closed=s.closed,
            size=self.size,
            idle=len(self._idle),
            leased=len(self._leased),
        )

    @property
    def size(self) -> int:
        """Open connections: idle, leased and being opened."""
        return len(self._idle) + len(self._leased) + self._opening

    def is_leased(self, client: WsClient) -> bool:
        return client in self._leased

    # -- acquire / release ---------------------------------------------------------

    async def acquire(
        self,
        user: TestUser,
        *,
        url: str,
        auth: str | Sequence[str] | None = None,
        **client_options: Any,
    ) -> WsClient:
        """A connected client for ``user``: an idle one of the same key, else a new one.

        A reused client passed the health check and has an empty event log. The caller owns it
        until `release`.

        Args:
            user: whose connection.
            url: the server's ws:// URL.
            auth: auth method or fallback chain, as for `WsClient`.
            **client_options: other `WsClient` arguments (part of the key).

        Raises:
            WsPoolExhaustedError: the pool is full and every connection is leased.
            WsAuthError, WsConnectError, WsTimeoutError: opening a new connection failed
                (nothing is left in the pool).
        """
        loop = asyncio.get_running_loop()
        key = pool_key(user, url=url, auth=auth, options=client_options)
        await self._close_evicted(self._take_expired(loop))
        while (entry := self._take_idle(key)) is not None:
            if entry.loop is not loop:
                del self._leased[entry.client]
                self._count_eviction("loop")
                self._discard_nowait(entry)
                continue
            try:
                reason = await self._health_check(entry)
            except BaseException:  # cancelled mid-check: the client's state is unknown
                if self._leased.pop(entry.client, None) is not None:
                    self._count_eviction("unhealthy")
                    self._discard_nowait(entry)
                raise
            if entry.client not in self._leased:
                continue  # cleanup_all closed it during the check
            if reason is None:
                entry.client.reset_log()
                self._stats.hits += 1
                return entry.client
            del self._leased[entry.client]
            self._count_eviction(reason)
            await self._close_evicted([(entry, reason)])
        return await self._open(key, user, url, auth, client_options, loop)

    async def release(self, client: WsClient) -> None:
        """Give ``client`` back for reuse (most recently used, idle from now).

        A client that is closed, or belongs to another loop, is evicted instead. Its
        observers are detached. Releasing a client that is not leased from this pool
        (unknown, already released, or evicted by ``cleanup_all``) does nothing, so
        teardown code may release unconditionally.
        """
        entry = self._leased.pop(client, None)
        if entry is None:
            _logger.debug("release of %r: not leased from this pool, ignored", client)
            return
        for observer in client.observers:
            client.remove_observer(observer)
        loop = asyncio.get_running_loop()
        evicted = self._take_expired(loop)
        if entry.loop is not loop:
            self._count_eviction("loop")
            self._discard_nowait(entry)
        elif not client.connected:
            self._count_eviction("dead")
            evicted.append((entry, "dead"))
        else:
            entry.idle_since = time.monotonic()
            self._idle[client] = entry
            self._idle_by_key.setdefault(entry.key, OrderedDict())[client] = entry
        await self._close_evicted(evicted)

    @contextlib.asynccontextmanager
    async def lease(
        self,
        user: TestUser,
        *,
        url: str,
        auth: str | Sequence[str] | None = None,
        **client_options: Any,
    ) -> AsyncIterator[WsClient]:
        """``async with pool.lease(user, url=...) as client:``; released on exit, even
        on error."""
        client = await self.acquire(user, url=url, auth=auth, **client_options)
        try:
            yield client
        finally:
            await self.release(client)

    async def evict_idle(self) -> int:
        """Evict idle connections past ``idle_timeout`` (and ones of closed loops).

        Returns:
            how many were evicted.
        """
        before = sum(self._stats.evicted_by_reason.values())
        await self._close_evicted(self._take_expired(asyncio.get_running_loop()))
        return sum(self._stats.evicted_by_reason.values()) - before

    # -- cleanup -------------------------------------------------------------------

    async def cleanup_all(self) -> None:
        """Close every connection, idle and leased, concurrently and bounded.

        Each close is bounded by the client's close timeout, the whole by the longest of
        them plus a small margin; clients of another loop are dropped without awaiting.
        Idempotent; the stats are kept.
        """
        loop = asyncio.get_running_loop()
        entries = self._take_all()
        local = [e.client for e in entries if e.loop is loop]
        for entry in entries:
            if entry.loop is not loop:
                abandon(entry.client, entry.loop)
        self._stats.closed += len(entries)
        await self._close_clients(local)

    def cleanup_all_nowait(self) -> None:
        """Drop every connection without awaiting (for synchronous teardown code).

        Sockets are shut down and transports aborted on their own loops when possible
        (see `cleanup_all` for the graceful way). Idempotent.
        """
        entries = self._take_all()
        for entry in entries:
            abandon(entry.client, entry.loop)
        self._stats.closed += len(entries)

    # -- internals: bookkeeping (no awaits, so concurrent acquires see it at once) -------

    def _take_idle(self, key: PoolKey) -> _Entry | None:
        """Move the most recently released idle entry of ``key`` to the leased set."""
        by_key = self._idle_by_key.get(key)
        if not by_key:
            return None
        client, entry = by_key.popitem(last=True)
        if not by_key:
            del self._idle_by_key[key]
        del self._idle[client]
        self._leased[client] = entry
        return entry

    def _remove_idle(self, entry: _Entry) -> None:
        del self._idle[entry.client]
        by_key = self._idle_by_key[entry.key]
        del by_key[entry.client]
        if not by_key:
            del self._idle_by_key[entry.key]

    def _take_expired(self, loop: asyncio.AbstractEventLoop) -> list[tuple[_Entry, str]]:
        """Remove idle entries past ``idle_timeout`` or whose loop is closed.

        Entries of other loops are dropped here (nothing to await); those of ``loop``
        are returned for the caller to close.
        """
        now = time.monotonic()
        to_close: list[tuple[_Entry, str]] = []
        for entry in list(self._idle.values()):
            if entry.loop.is_closed():
                reason = "loop"
            elif now - entry.idle_since > self.idle_timeout:
                reason = "idle"
            else:
                continue
            self._remove_idle(entry)
            self._count_eviction(reason)
            if entry.loop is loop:
                to_close.append((entry, reason))
            else:
                self._discard_nowait(entry)
        return to_close

    def _take_all(self) -> list[_Entry]:
        entries = [*self._idle.values(), *self._leased.values()]
        self._idle.clear()
        self._idle_by_key.clear()
        self._leased.clear()
        return entries

    def _count_eviction(self, reason: str) -> None:
        self._stats.evicted_by_reason[reason] += 1
        _logger.debug("pool eviction: %s", reason)

    def _discard_nowait(self, entry: _Entry) -> None:
        """Close an entry already removed (and counted) without awaiting anything."""
        self._stats.closed += 1
        if entry.loop is _running_loop():
            conn = entry.client.connection
            if conn is not None:
                conn.transport.abort()  # the client sees the end on the next loop pass
        else:
            abandon(entry.client, entry.loop)

    # -- internals: I/O ------------------------------------------------------------

    async def _health_check(self, entry: _Entry) -> str | None:
        """None when the client is open and alive, else the eviction reason.

        Alive: it received a frame or answered a ping within ``health_check_interval``,
        or it answers a ping now within ``health_check_timeout``.
        """
        client = entry.client
        if not client.connected:
            return "dead"
        if self.health_check_interval > 0:
            last = client.log.since(client.log.last_index)
            seen_at = max(entry.alive_at, last[0].received_at if last else 0.0)
            if time.monotonic() - seen_at < self.health_check_interval:
                return None
        try:
            async with asyncio.timeout(self.health_check_timeout):
                await client.ping()
        except TimeoutError:  # WsTimeoutError included: the recv bound ran out first
            return "unhealthy"
        except (WsConnectionClosedError, WsResilienceError, OSError):
            return "dead"
        if not client.connected:
            return "dead"
        entry.alive_at = time.monotonic()
        return None

    async def _open(
        self,
        key: PoolKey,
        user: TestUser,
        url: str,
        auth: str | Sequence[str] | None,
        client_options: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
    ) -> WsClient:
        """A miss: make room (LRU idle eviction), then connect a new client."""
        self._stats.misses += 1
        evicted: list[tuple[_Entry, str]] = []
        if self.size >= self.max_size:
            if not self._idle:
                raise WsPoolExhaustedError(self.max_size, len(self._leased))
            lru = next(iter(self._idle.values()))
            self._remove_idle(lru)
            self._count_eviction("capacity")
            if lru.loop is loop:
                evicted.append((lru, "capacity"))
            else:
                self._discard_nowait(lru)
        self._opening += 1  # the slot is ours from here, before any await
        options = dict(client_options)
        settings = options.pop("settings", self._settings)
        try:
            await self._close_evicted(evicted)
            client = WsClient(url, user=user, auth=auth, settings=settings, **options)
            try:
                await client.connect()
            except BaseException:
                conn = client.connection
                if conn is not None:  # cancelled after the handshake: do not leak it
                    conn.transport.abort()
                raise
        finally:
            self._opening -= 1
        self._stats.created += 1
        self._leased[client] = _Entry(client=client, key=key, loop=loop)
        return client

    async def _close_evicted(self, evicted: Iterable[tuple[_Entry, str]]) -> None:
        """Close evicted entries of the running loop (already removed and counted)."""
        clients = []
        for entry, reason in evicted:
            self._stats.closed += 1
            conn = entry.client.connection
            if reason == "unhealthy" and conn is not None:
                conn.transport.abort()  # a peer that does not pong will not close either
            clients.append(entry.client)
        await self._close_clients(clients)

    async def _close_clients(self, clients: Sequence[WsClient]) -> None:
        """Close ``clients`` concurrently; bounded by the longest close timeout among
        them plus a margin, never raises."""
        if clients:
            bound = max(c.close_timeout.value for c in clients) + _CLOSE_MARGIN_S
            await close_clients(clients, bound)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
