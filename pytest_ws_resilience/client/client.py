"""`WsClient`: an authenticated, real WebSocket connection for tests.

Built on `websockets.asyncio.client`. Each rule of the client has its own module, pure
where it can be; this one ties them to one connection:

- connecting: `auth_methods` (what each attempt presents), `fallback` (what each answer
  leads to: next method, retry after a backoff delay, or failure) and `handshake` (the
  asyncio loop that makes the attempts);
- receiving: `receiving` takes each message where websockets parses it (no task of
  its own), records it in the `eventlog`, reads the `greeting`, runs the receive hooks
  and `observers`, and wakes the waits of `waiting`, which look for what `matching`
  describes;
- sending: `sending` writes one message (or a ping) bounded by the recv timeout;
- `bounds` holds the timeouts, `metrics` counts, `logs` redacts, `tokens` mints the
  users, `entitlements` keeps what the client may see (scope rules read it).

Every wait is bounded: the handshake by the connect timeout, waits and sends by the
recv timeout, ``close()`` by the close timeout even against a peer that never answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from pytest_ws_resilience.client.arguments import check_client_arguments, heartbeat_options
from pytest_ws_resilience.client.auth_methods import auth_chain, header_secrets
from pytest_ws_resilience.client.bounds import ClientBounds
from pytest_ws_resilience.client.closing import close_connection
from pytest_ws_resilience.client.ending import await_close
from pytest_ws_resilience.client.entitlements import EXPLICIT, EntitlementTimeline
from pytest_ws_resilience.client.eventlog import EventLog
from pytest_ws_resilience.client.greeting import read_greeting
from pytest_ws_resilience.client.handshake import Connector, Opened
from pytest_ws_resilience.client.logs import client_logger
from pytest_ws_resilience.client.matching import (
    BytesMatch,
    TextMatch,
    expected_event,
    frame_wait,
)
from pytest_ws_resilience.client.metrics import ClientMetrics, payload_size
from pytest_ws_resilience.client.observers import ClientObserver, Observers, ReceiveHook
from pytest_ws_resilience.client.receiving import Receiver, ReceivingConnection
from pytest_ws_resilience.client.sending import joined_fragments, ping_bounded, send_bounded
from pytest_ws_resilience.client.waiting import EventWaiter
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.contracts.keys import EventKey
from pytest_ws_resilience.contracts.result import ContractResult
from pytest_ws_resilience.errors import WsMessageTooLargeError, WsResilienceError
from pytest_ws_resilience.redaction import redact, register_secret

if TYPE_CHECKING:
    # Typing only: minting tokens (pyjwt, cryptography) is not a client's business.
    from pytest_ws_resilience.client.tokens import TestUser

__all__ = ["WsClient"]

_client_counter = 0


class WsClient:
    """An authenticated WebSocket client that records what it receives.

    Unset arguments come from ``settings`` (default `WsSettings()`); explicit ones win.

    Args:
        url: ws:// or wss:// endpoint.
        user: the `TestUser` this client acts as.
        token: the bearer token; defaults to ``user.token``. None (and no user): no auth.
        auth: one method name or a fallback chain; None: ``settings.auth_methods`` if
            configured, else subprotocol -> query -> header -> cookie ("none" when there
            is no token, or when the settings say the server is unauthenticated).
        settings: the run's settings.
        max_message_size: limit for frames in both directions, bytes.
        recv_timeout: bound of ``expect`` waits (beats a server-negotiated value).
        close_timeout: bound of ``close()``.
        connect_timeout: bound of one opening handshake.
        connect_retries: retries after network errors / 5xx, per connect.
        backoff: delays between those retries.
        headers: request headers over ``settings.connection``'s (same name: these win).
        origin, subprotocols, user_agent, compression: replace the settings' own
            (``compression=False``: no permessage-deflate).
        log_size: frames kept in the event log (ring buffer).
        name: label for reprs and logs.
        **connect_options: passed to `websockets.asyncio.client.connect`
            (e.g. ``ping_interval``, ``additional_headers``).

    Raises:
        ValueError: a URL that is not ws:// or wss://, an unknown auth method, an
            auth method that needs a token when there is none, a number out of bounds
            (`pytest_ws_resilience.config.bounds`), or an unknown websockets option.
    """

    def __init__(
        self,
        url: str,
        *,
        user: TestUser | None = None,
        token: str | None = None,
        auth: str | Sequence[str] | None = None,
        settings: WsSettings | None = None,
        max_message_size: int | None = None,
        recv_timeout: float | None = None,
        close_timeout: float | None = None,
        connect_timeout: float | None = None,
        connect_retries: int | None = None,
        backoff: Backoff | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        user_agent: str | None = None,
        compression: bool | None = None,
        log_size: int = 1000,
        name: str | None = None,
        **connect_options: Any,
    ) -> None:
        check_client_arguments(
            url=url,
            user=user,
            token=token,
            max_message_size=max_message_size,
            connect_retries=connect_retries,
            log_size=log_size,
            connect_options=connect_options,
        )
        global _client_counter
        _client_counter += 1
        self._url = url
        self._user = user
        self._token = token if token is not None else (user.token if user is not None else None)
        register_secret(self._token)
        self._settings = s = settings if settings is not None else WsSettings()
        self._max_message_size = (
            max_message_size if max_message_size is not None else s.max_message_size
        )
        self._name = name or (f"{user.id}#{_client_counter}" if user else f"ws{_client_counter}")
        self._bounds = bounds = ClientBounds(
            s, recv=recv_timeout, close=close_timeout, connect=connect_timeout
        )
        connection = s.connection.merged(
            headers=headers,
            origin=origin,
            subprotocols=subprotocols,
            user_agent=user_agent,
            compression=compression,
        )
        for secret in header_secrets(connection.headers):  # credential-like header values
            register_secret(secret)
        keepalive = heartbeat_options(s.heartbeat_interval, connect_options)
        self._connector = Connector(
            url,
            self._token,
            auth_chain(auth, self._token, s.effective_auth_methods),
            settings=s,
            retries=connect_retries if connect_retries is not None else s.connect_retries,
            backoff=backoff if backoff is not None else s.backoff,
            connect_timeout=bounds.connect,
            close_timeout=bounds.close,
            max_message_size=self._max_message_size,
            # Waits learn of a protocol failure at once, not after the closing handshake.
            options={**keepalive, "create_connection": ReceivingConnection},
            label=self._name,
            connection=connection,
        )

        self._log = EventLog(log_size)
        self._waiter = EventWaiter(self._log, self._name, url)
        self._metrics = ClientMetrics()
        self._watchers = Observers(on_error=self._waiter.hook_failed)
        self._connect_lock = asyncio.Lock()
        self._conn: ReceivingConnection | None = None
        self._connection_id: Any = None
        self._auth_method: str | None = None
        self._entitlements = EntitlementTimeline()

    # -- introspection ---------------------------------------------------------------

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("closed" if self.closed else "new")
        user = self._user.id if self._user is not None else None
        return (
            f"WsClient(name={self._name!r}, url={redact(self._url)!r}, user={user!r}, "
            f"state={state}, auth_method={self._auth_method!r})"
        )

    @property
    def user(self) -> TestUser | None:
        return self._user

    @property
    def url(self) -> str:
        """The URL as given (may hold a token: print ``repr(client)`` instead)."""
        return self._url

    @property
    def name(self) -> str:
        return self._name

    @property
    def metrics(self) -> ClientMetrics:
        return self._metrics

    @property
    def log(self) -> EventLog:
        return self._log

    @property
    def events(self) -> list[Any]:
        """Parsed messages received, in order (bounded by the log size)."""
        return self._log.events

    @property
    def auth_methods(self) -> tuple[str, ...]:
        """The fallback chain ``connect()`` walks."""
        return self._connector.methods

    @property
    def auth_method(self) -> str | None:
        """The method the current (or last) connection was accepted with."""
        return self._auth_method

    @property
    def connection_id(self) -> Any:
        """``connection_id`` from the server's greeting (``settings.greeting``), if any."""
        return self._connection_id

    @property
    def connection(self) -> ClientConnection | None:
        """The underlying websockets connection (for what this class does not cover)."""
        return self._conn

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not self._waiter.ended and conn.state is State.OPEN

    @property
    def closed(self) -> bool:
        """True once an opened connection has closed (by either side) and was drained."""
        return self._conn is not None and self._waiter.ended

    @property
    def close_code(self) -> int | None:
        return self._waiter.close_code

    @property
    def timeouts(self) -> dict[str, TimeoutValue | None]:
        """Effective timeouts by name, each with where it came from (the agent timeout
        is None when not configured)."""
        return self._bounds.as_dict()

    @property
    def close_timeout(self) -> TimeoutValue:
        """The bound of `close` (explicit, else the settings')."""
        return self._bounds.close

    # -- observers ---------------------------------------------------------------------

    def add_receive_hook(self, callback: ReceiveHook) -> None:
        """Call ``callback(record)`` synchronously for every frame received from now on.

        A hook that raises does not stop the reader: its first exception is logged and
        re-raised by the next ``expect``/``expect_sequence`` call.
        """
        self._watchers.hooks.append(callback)

    def add_observer(self, observer: ClientObserver) -> None:
        """Let ``observer`` see every frame received and sent, and every canary.

        Canaries made before the observer was added are replayed to it, so an observer
        attached late (e.g. a fixture set up after the client) misses none.
        """
        self._watchers.add(self, observer)

    def remove_observer(self, observer: ClientObserver) -> None:
        """Stop notifying ``observer`` (e.g. a pooled client handed to the next test)."""
        self._watchers.remove(observer)

    @property
    def observers(self) -> tuple[ClientObserver, ...]:
        return tuple(self._watchers.observers)

    def canary(self, label: str = "canary") -> str:
        """A unique marker to embed in a message; no other user should ever receive it.

        Observers (the isolation detector) register it as this client's user's marker.
        """
        return self._watchers.canary(self, label)

    @property
    def canaries(self) -> tuple[str, ...]:
        return tuple(self._watchers.canaries)

    def reset_log(self) -> None:
        """Forget what was received so far (for a pooled client handed to a new test).

        Waits start after this point; runs already checked may be checked again.
        """
        self._log.clear()
        self._waiter.forget()

    # -- entitlements ------------------------------------------------------------------

    def entitle(self, **scopes: Any) -> None:
        """Entitle this client to each ``scope=value`` (``room="a"``) from now on, across
        reconnects: scope rules (``ws_isolation.scope``) judge received frames by it.

        Raises:
            ValueError: no scope given, or a value that is not a str or an int.
        """
        self._entitlements.apply(time.monotonic(), EXPLICIT, scopes, grant=True)

    def revoke(self, **scopes: Any) -> None:
        """End this client's entitlement to each ``scope=value``; a scope rule excuses
        frames for its grace after the call (they may be in flight). Raises as `entitle`."""
        self._entitlements.apply(time.monotonic(), EXPLICIT, scopes, grant=False)

    @property
    def entitlements(self) -> EntitlementTimeline:
        """What this client may see: its connects, grants and revokes, with times and
        sources (explicit, sent frame, received frame, path)."""
        return self._entitlements

    # -- connecting --------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> Self:
        """Open the connection (no-op when open); concurrent callers share one connection.

        Raises:
            WsAuthError: every auth method was rejected (401/403).
            WsConnectError: network errors or 5xx outlasted the retries, or another
                handshake failure.
            WsTimeoutError: one handshake took longer than the connect timeout.
        """
        if self.connected:
            return self
        async with self._connect_lock:
            if not self.connected:
                self._on_open(await self._connector.open(self._metrics))
        return self

    def _on_open(self, opened: Opened) -> None:
        conn = opened.connection
        assert isinstance(conn, ReceivingConnection)  # create_connection is the client's
        self._conn = conn
        self._waiter.attach()
        self._auth_method = method = opened.auth_method
        self._entitlements.connected(time.monotonic())
        # Wall clock (not perf_counter): reports line up spans of several xdist workers.
        self._metrics.opened(time.time() - opened.handshake_s, opened.handshake_s, method)
        conn.on_failure = self._waiter.failed  # waits raise as soon as websockets fails it
        conn.tell_failure()  # it may have failed on a frame that came with the upgrade
        conn.attach(
            Receiver(
                self, self._log, self._metrics, self._waiter, self._watchers, self._on_first_frame
            )
        )
        # The logger's RedactingFilter hides any token in the URL (only if a record is made).
        client_logger.debug("%s: connected to %s with auth %s", self._name, self._url, method)

    # -- receiving ---------------------------------------------------------------------

    def _on_first_frame(self, data: Any) -> None:
        """Take the connection id and a negotiated recv timeout from the greeting; the
        negotiated timeout beats the configured one (SPEC section 3)."""
        greeting = read_greeting(data, self._settings.greeting)
        if greeting is None:
            return
        self._connection_id = greeting.connection_id
        if greeting.recv_timeout is not None:
            self._bounds.negotiate(greeting.recv_timeout)

    # -- waiting -----------------------------------------------------------------------

    # The public API takes a ``timeout`` (SPEC section 5): a per-call bound is the point.
    async def expect(
        self,
        type: str | Callable[[Any], Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        **fields: Any,
    ) -> Any:
        """Wait for the next unconsumed event with ``type`` and ``fields``; return it
        (a dict, for every form but the predicate one).

        Events before the match are skipped (consumed). A callable field value is a
        predicate. A callable first argument is a predicate on ANY frame (the parsed
        JSON, else the text, else the bytes: `LogRecord.frame`), which is returned.
        Bounded by ``timeout`` or the recv timeout. No criteria at all is refused: it
        would return whatever came first; ``expect(lambda frame: True)`` says so.

        Raises:
            ValueError: no type, no field and no predicate.
            WsTimeoutError: nothing matched in time (says what was expected and what came).
            WsConnectionClosedError: the connection closed first.
        """
        bound = self._bounds.for_wait(timeout)
        if callable(type):
            return (await self._waiter.expect_frame(frame_wait(type, fields), bound)).frame
        return await self._waiter.expect(expected_event(type, fields), bound)

    async def expect_text(self, match: TextMatch, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Wait for the next unconsumed text frame (JSON or not) equal to ``match`` (a
        ``str``), in which a compiled regex finds a match, or that a predicate accepts;
        return its text. Bounded and raising as `expect` (``TypeError``: another kind)."""
        return await self._waiter.expect_text(match, self._bounds.for_wait(timeout))

    async def expect_bytes(self, match: BytesMatch, *, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Wait for the next unconsumed binary frame equal to ``match`` or accepted by a
        predicate on its bytes; return them. Bounded and raising as `expect_text`."""
        return await self._waiter.expect_bytes(match, self._bounds.for_wait(timeout))

    async def expect_sequence(
        self,
        expected: Sequence[str | Mapping[str, Any] | Callable[[Any], Any]],
        *,
        key: EventKey | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Any]:
        """Wait for frames matching each item in order (others may come in between).

        An item is an event name, a mapping of fields or a predicate on any frame. A
        name is the ``type`` field, or, with ``key``, what ``key(frame)`` returns (for
        protocols without a ``type``: ``key=lambda f: f.get("action")``, or for text
        ``key=lambda t: t.split(":")[0]``). One deadline covers the whole sequence.

        Raises:
            WsTimeoutError: a step was not seen in time (names the step and what came,
                in ``key``'s names).
            WsConnectionClosedError: the connection closed first.
        """
        bound = self._bounds.for_wait(timeout)
        return await self._waiter.expect_sequence(expected, bound, key)

    async def expect_contract(
        self,
        contract: EventContract,
        *,
        correlation: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ContractResult:
        """Check one run against ``contract``, through its terminal event.

        The run is the first one seen (by the contract's correlation field) among the
        events not yet consumed and not checked before, or the one whose correlation
        value is ``correlation``. With a correlation field the ``expect`` cursor stays
        put, so interleaved runs can each be checked; without one, the cursor moves past
        the terminal event, so back-to-back checks see back-to-back runs.

        Raises:
            ContractViolationError: events missing, duplicated, out of order or late,
                with an expected-vs-observed transcript; also when the terminal event
                did not come within the timeout or the connection closed first.
        """
        bound = self._bounds.for_wait(timeout)
        return await self._waiter.expect_contract(contract, correlation, bound)

    # -- sending -----------------------------------------------------------------------

    def _open_connection(self, action: str) -> ClientConnection:
        conn = self._conn
        if conn is None:
            raise WsResilienceError(f"cannot {action}: {self._name} is not connected")
        waiter = self._waiter
        if waiter.ended:  # also when websockets failed it and is still closing
            raise waiter.closed_error(f"{self._closed_head(action)} (code {waiter.close_code})")
        return conn

    def _closed_head(self, action: str) -> str:
        return f"cannot {action}: connection {self._name} to {redact(self._url)} is closed"

    async def _send(
        self, message: str | bytes, data: Any = None, parts: list[str] | list[bytes] | None = None
    ) -> None:
        size = payload_size(message)
        if size > self._max_message_size:
            raise WsMessageTooLargeError(size, self._max_message_size)
        conn = self._open_connection("send")
        self._watchers.sending(self, message, data)
        await send_bounded(
            conn,
            message if parts is None else parts,
            size,
            bound=self._bounds.recv,
            name=self._name,
            closed_head=partial(self._closed_head, "send"),
        )
        metrics = self._metrics
        metrics.sent += 1
        metrics.bytes_sent += size

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as a JSON text frame."""
        await self._send(json.dumps(obj), obj)

    async def send_text(self, text: str) -> None:
        await self._send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self._send(bytes(data))

    async def send_fragments(self, parts: Sequence[str] | Sequence[bytes]) -> None:
        """Send one message as several frames, one per part (then websockets' empty final
        frame): all str, a text message; all bytes, binary. Limited, observed and
        counted as the one message it is (`client.sending.joined_fragments`)."""
        message, fragments = joined_fragments(parts)
        await self._send(message, parts=fragments)

    async def ping(self) -> float:
        """WebSocket ping round trip in seconds (bounded by the recv timeout)."""
        rtt = await ping_bounded(
            self._open_connection("ping"),
            bound=self._bounds.recv,
            name=self._name,
            closed_head=partial(self._closed_head, "ping"),
        )
        self._metrics.ping_rtt_s = rtt
        return rtt

    # -- closing -----------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection; idempotent, bounded by the close timeout, never raises
        for a connection that is already dead."""
        conn = self._conn
        if conn is None:
            return
        await close_connection(conn, bound=self._bounds.close.value, name=self._name)
        self._metrics.closed(time.time())
        waiter = self._waiter
        waiter.end(conn.close_code if waiter.close_code is None else waiter.close_code)
        waiter.stop()

    async def expect_close(
        self, code: int | Collection[int] | None = None, *, within: float | None = None
    ) -> int:
        """Wait until the connection closes (at once if it has); return its close code,
        one of ``code`` (an int, a collection; None: any), within ``within`` seconds (else
        the recv timeout). Raises as `pytest_ws_resilience.client.ending.await_close`."""
        where = f"connection {self._name} to {redact(self._url)}"
        return await await_close(self._waiter, self._log, code, within, self._bounds.recv, where)

    async def reconnect(self) -> Self:
        """Close (bounded) and connect again as the same user with the same auth.

        The event log is kept; waits start after everything received so far.
        """
        await self.close()
        self._waiter.skip_received()
        self._bounds.negotiate(None)
        self._connection_id = None
        async with self._connect_lock:
            self._on_open(await self._connector.open(self._metrics))
        self._metrics.reconnects += 1
        return self
