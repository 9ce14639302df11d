"""`WsClient`: an authenticated, real WebSocket connection for tests.

Built on `websockets.asyncio.client.connect`. The policy lives in pure modules
(`auth` builds each handshake, `backoff` spaces retries, `timeouts` resolves waits,
`eventlog` records and matches frames); this module is the asyncio glue that runs
them against a socket:

- ``connect()`` walks the auth fallback chain. A 401/403 moves to the next method at
  once; network errors and 5xx retry the same method with backoff; a slow handshake
  fails at once with `WsTimeoutError`.
- One reader task per connection receives every frame into the `EventLog`, runs the
  receive hooks and wakes whoever waits in ``expect``.
- Every wait is bounded: handshake by the connect timeout, waits by the recv timeout,
  ``close()`` by the close timeout even against a peer that never answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage, InvalidStatus
from websockets.protocol import State
from websockets.typing import Subprotocol

from pytest_ws_resilience.client.auth_methods import (
    ConnectRequest,
    build_connect_request,
    normalize_auth,
)
from pytest_ws_resilience.client.eventlog import EventLog, LogRecord, matches
from pytest_ws_resilience.client.metrics import ClientMetrics
from pytest_ws_resilience.client.tokens import TestUser
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue, resolve_timeout
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.contracts.result import ContractResult
from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsConnectError,
    WsConnectionClosedError,
    WsMessageTooLargeError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.redaction import RedactingFilter, redact, register_secret

__all__ = ["ClientObserver", "ReceiveHook", "WsClient", "close_clients"]

ReceiveHook = Callable[[LogRecord], None]


class ClientObserver(Protocol):
    """Something that watches a client's traffic (e.g. the isolation detector).

    Called synchronously on the client's own paths, so implementations must be quick
    and must not block. ``data`` of `on_send` is the object given to ``send_json`` (or
    None for text and bytes sent as such).
    """

    def on_receive(self, client: WsClient, record: LogRecord) -> None: ...

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None: ...

    def on_canary(self, client: WsClient, marker: str) -> None: ...


_logger = logging.getLogger("pytest_ws_resilience.client")
# websockets logs handshake headers (tokens included) at debug level: route its records
# through a logger of ours that redacts them.
_wire_logger = logging.getLogger("pytest_ws_resilience.client.wire")
for _log in (_logger, _wire_logger):
    if not any(isinstance(f, RedactingFilter) for f in _log.filters):
        _log.addFilter(RedactingFilter())

_AUTH_REJECTED = frozenset({401, 403})
# How many recent frames a timeout error shows, and how much of each.
_RECENT_EVENTS = 5
_EVENT_PREVIEW_CHARS = 200
# Bytes a frame may add to its payload: header (2 + 8 length + 4 mask) plus deflate's
# block trailer, rounded up.
_FRAME_OVERHEAD = 64
_client_counter = 0


def _utf8_size(message: str | bytes) -> int:
    if isinstance(message, str):
        # Most frames are ASCII JSON: skip the encode copy when it cannot change the size.
        return len(message) if message.isascii() else len(message.encode())
    return len(message)


def _describe(expected: Mapping[str, Any]) -> str:
    shown = {k: ("<predicate>" if callable(v) else v) for k, v in expected.items()}
    return repr(shown) if shown else "any JSON event"


class WsClient:
    """An authenticated WebSocket client that records what it receives.

    Unset arguments come from ``settings`` (default `WsSettings()`); explicit ones win.

    Args:
        url: ws:// or wss:// endpoint.
        user: the `TestUser` this client acts as.
        token: the bearer token; defaults to ``user.token``. None (and no user): no auth.
        auth: one method name or a fallback chain; None: ``settings.auth_methods`` if
            configured, else subprotocol -> query -> header -> cookie ("none" when there
            is no token).
        settings: the run's settings.
        max_message_size: limit for frames in both directions, bytes.
        recv_timeout: bound of ``expect`` waits (beats a server-negotiated value).
        close_timeout: bound of ``close()``.
        connect_timeout: bound of one opening handshake.
        connect_retries: retries after network errors / 5xx, per connect.
        backoff: delays between those retries.
        log_size: frames kept in the event log (ring buffer).
        name: label for reprs and logs.
        **connect_options: passed to `websockets.asyncio.client.connect`
            (e.g. ``ping_interval``, ``compression``, ``additional_headers``).

    Raises:
        ValueError: a URL that is not ws:// or wss://, an unknown auth method, or an
            auth method that needs a token when there is none.
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
        log_size: int = 1000,
        name: str | None = None,
        **connect_options: Any,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"WsClient url must be ws:// or wss://, got {redact(url)!r}")
        global _client_counter
        _client_counter += 1
        self._url = url
        self._user = user
        self._token = token if token is not None else (user.token if user is not None else None)
        register_secret(self._token)
        self._settings = settings if settings is not None else WsSettings()
        s = self._settings
        if auth is None and self._token is None:
            self._auth_methods: tuple[str, ...] = ("none",)
        else:
            self._auth_methods = normalize_auth(auth, s.effective_auth_methods)
        if self._token is None and self._auth_methods != ("none",):
            methods = ", ".join(m for m in self._auth_methods if m != "none")
            raise ValueError(f"auth method(s) {methods} need a token; pass user= or token=")
        self._max_message_size = (
            max_message_size if max_message_size is not None else s.max_message_size
        )
        self._explicit_recv = recv_timeout
        self._explicit_close = close_timeout
        self._explicit_connect = connect_timeout
        self._negotiated_recv: float | None = None
        self._connect_retries = (
            connect_retries if connect_retries is not None else s.connect_retries
        )
        self._backoff = backoff if backoff is not None else s.backoff
        self._name = name or (f"{user.id}#{_client_counter}" if user else f"ws{_client_counter}")
        self._connect_options = connect_options

        self._log = EventLog(log_size)
        self._metrics = ClientMetrics()
        self._hooks: list[ReceiveHook] = []
        self._observers: list[ClientObserver] = []
        self._canaries: list[str] = []
        # Correlation values of runs already checked by expect_contract (not re-picked).
        self._checked_runs: set[Any] = set()
        self._hook_error: BaseException | None = None
        self._connect_lock = asyncio.Lock()
        self._arrived = asyncio.Event()
        self._watchdog: asyncio.TimerHandle | None = None
        self._conn: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._reader_done = False
        self._close_code: int | None = None
        self._cursor = 0
        self._connection_id: Any = None
        self._auth_method: str | None = None
        # The recv bound is read on every wait and send: resolve it once per change.
        self._recv_bound = self._resolve_recv_bound()

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
        return self._auth_methods

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
        return conn is not None and not self._reader_done and conn.state is State.OPEN

    @property
    def closed(self) -> bool:
        """True once an opened connection has closed (by either side) and was drained."""
        return self._conn is not None and self._reader_done

    @property
    def close_code(self) -> int | None:
        return self._close_code

    @property
    def timeouts(self) -> dict[str, TimeoutValue | None]:
        """Effective timeouts by name, each with where it came from (the agent timeout
        is None when not configured)."""
        s = self._settings
        return {
            "recv_timeout": self._recv_bound,
            "close_timeout": resolve_timeout(s.close_timeout, explicit=self._explicit_close),
            "connect_timeout": resolve_timeout(s.connect_timeout, explicit=self._explicit_connect),
            "agent_timeout": s.agent_timeout,
        }

    @property
    def close_timeout(self) -> TimeoutValue:
        """The bound of `close` (explicit, else the settings')."""
        return self._timeout("close_timeout")

    def _timeout(self, name: str, explicit: float | None = None) -> TimeoutValue:
        """``explicit`` if given, else the resolved timeout ``name`` (never unset)."""
        if explicit is not None:
            return TimeoutValue(explicit, Source.EXPLICIT)
        if name == "recv_timeout":
            return self._recv_bound
        s = self._settings
        if name == "close_timeout":
            return resolve_timeout(s.close_timeout, explicit=self._explicit_close)
        return resolve_timeout(s.connect_timeout, explicit=self._explicit_connect)

    def _resolve_recv_bound(self) -> TimeoutValue:
        return resolve_timeout(
            self._settings.recv_timeout,
            explicit=self._explicit_recv,
            negotiated=self._negotiated_recv,
        )

    def add_receive_hook(self, callback: ReceiveHook) -> None:
        """Call ``callback(record)`` synchronously for every frame received from now on.

        A hook that raises does not stop the reader: its first exception is logged and
        re-raised by the next ``expect``/``expect_sequence`` call.
        """
        self._hooks.append(callback)

    def add_observer(self, observer: ClientObserver) -> None:
        """Let ``observer`` see every frame received and sent, and every canary.

        Canaries made before the observer was added are replayed to it, so an observer
        attached late (e.g. a fixture set up after the client) misses none.
        """
        if observer in self._observers:
            return
        self._observers.append(observer)
        for marker in self._canaries:
            observer.on_canary(self, marker)

    def remove_observer(self, observer: ClientObserver) -> None:
        """Stop notifying ``observer`` (e.g. a pooled client handed to the next test)."""
        if observer in self._observers:
            self._observers.remove(observer)

    @property
    def observers(self) -> tuple[ClientObserver, ...]:
        return tuple(self._observers)

    def canary(self, label: str = "canary") -> str:
        """A unique marker to embed in a message; no other user should ever receive it.

        Observers (the isolation detector) register it as this client's user's marker.
        """
        marker = f"{label}-{uuid.uuid4().hex}"
        self._canaries.append(marker)
        for observer in self._observers:
            observer.on_canary(self, marker)
        return marker

    @property
    def canaries(self) -> tuple[str, ...]:
        return tuple(self._canaries)

    def reset_log(self) -> None:
        """Forget what was received so far (for a pooled client handed to a new test).

        Waits start after this point; runs already checked may be checked again.
        """
        self._log.clear()
        self._cursor = self._log.last_index + 1
        self._checked_runs.clear()

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
                await self._open()
        return self

    async def _open(self) -> None:
        attempts: list[Attempt] = []
        self._metrics.attempts = attempts
        connect_timeout = self._timeout("connect_timeout")
        for method in self._auth_methods:
            request = build_connect_request(
                method,
                self._url,
                self._token,
                query_param=self._settings.auth_query_param,
                cookie=self._settings.auth_cookie,
                subprotocol=self._settings.auth_subprotocol,
            )
            delays = self._backoff.delays(self._connect_retries)
            while True:
                started = time.perf_counter()
                try:
                    conn = await self._handshake(request, connect_timeout)
                except TimeoutError:
                    attempts.append(Attempt(method, f"timed out after {connect_timeout.value:g}s"))
                    raise WsTimeoutError(
                        f"opening handshake with {self._url} (auth {method}) did not complete "
                        f"within connect_timeout={connect_timeout}; attempts: "
                        f"{self._attempts_text(attempts)}",
                        attempts=attempts,
                    ) from None
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    attempts.append(Attempt(method, f"HTTP {status}", status))
                    _logger.debug("%s: auth %s answered HTTP %s", self._name, method, status)
                    if status in _AUTH_REJECTED:
                        break  # a rejected credential stays rejected: next method, no delay
                    if status < 500:
                        raise self._connect_error(
                            f"{self._url} answered HTTP {status} to the handshake "
                            "(neither an auth rejection nor a transient 5xx)",
                            attempts,
                        ) from None
                except (OSError, InvalidMessage, EOFError, ConnectionClosed) as exc:
                    attempts.append(Attempt(method, self._network_outcome(exc)))
                    _logger.debug("%s: auth %s failed: %s", self._name, method, exc)
                except InvalidHandshake as exc:
                    attempts.append(Attempt(method, f"invalid handshake: {exc}"))
                    raise self._connect_error(
                        f"handshake with {self._url} failed", attempts
                    ) from None
                else:
                    self._on_open(conn, method, time.perf_counter() - started)
                    attempts.append(Attempt(method, "connected", 101))
                    return
                # A transient failure (network error or 5xx): retry this method.
                delay = next(delays, None)
                if delay is None:
                    raise self._connect_error(
                        f"could not connect to {self._url} (auth {method}) after "
                        f"{self._connect_retries} retries",
                        attempts,
                    )
                self._metrics.retries += 1
                await asyncio.sleep(delay)
        raise WsAuthError(
            f"every auth method was rejected by {self._url}: {self._attempts_text(attempts)}; "
            "check the token's secret or key, expiry, audience and issuer",
            attempts=attempts,
        )

    async def _handshake(
        self, request: ConnectRequest, connect_timeout: TimeoutValue
    ) -> ClientConnection:
        options = dict(self._connect_options)
        headers = list(request.headers)
        extra_headers = options.pop("additional_headers", None)
        if extra_headers:
            items = extra_headers.items() if isinstance(extra_headers, Mapping) else extra_headers
            headers.extend(items)
        subprotocols = [Subprotocol(p) for p in request.subprotocols]
        subprotocols.extend(options.pop("subprotocols", None) or ())
        options.setdefault("open_timeout", connect_timeout.value)
        options.setdefault("close_timeout", self._timeout("close_timeout").value)
        options.setdefault("max_size", self._max_message_size)
        options.setdefault("logger", _wire_logger)
        return await connect(
            request.url,
            subprotocols=subprotocols or None,
            additional_headers=headers or None,
            proxy=None,
            **options,
        )

    def _on_open(self, conn: ClientConnection, method: str, handshake_s: float) -> None:
        self._conn = conn
        self._reader_done = False
        self._close_code = None
        self._auth_method = method
        # Wall clock (not perf_counter): reports line up spans of several xdist workers.
        self._metrics.opened(time.time() - handshake_s, handshake_s, method)
        self._reader = asyncio.get_running_loop().create_task(
            self._read(conn), name=f"WsClient reader {self._name}"
        )
        # The logger's RedactingFilter hides any token in the URL (only if a record is made).
        _logger.debug("%s: connected to %s with auth %s", self._name, self._url, method)

    @staticmethod
    def _network_outcome(exc: BaseException) -> str:
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, ConnectionResetError):
            return "connection reset"
        if isinstance(exc, (InvalidMessage, EOFError)):
            return "connection closed during the handshake"
        return f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _attempts_text(attempts: Sequence[Attempt]) -> str:
        return ", ".join(str(a) for a in attempts) or "none"

    def _connect_error(self, message: str, attempts: Sequence[Attempt]) -> WsConnectError:
        methods = ", ".join(dict.fromkeys(a.method for a in attempts))
        return WsConnectError(
            f"{message}; methods tried: {methods}; {len(attempts)} attempts: "
            f"{self._attempts_text(attempts)}",
            attempts=attempts,
        )

    # -- receiving ---------------------------------------------------------------------

    async def _read(self, conn: ClientConnection) -> None:
        """Receive every frame of ``conn`` into the log until it closes."""
        log, metrics, hooks, wake = self._log, self._metrics, self._hooks, self._arrived
        observers = self._observers
        first = True
        try:
            async for message in conn:
                record = log.append(message)
                metrics.received += 1
                metrics.bytes_received += _utf8_size(message)
                if first:
                    first = False
                    self._on_first_frame(record.data)
                for hook in hooks:
                    try:
                        hook(record)
                    except Exception as exc:
                        self._on_hook_error(hook, exc)
                for observer in observers:
                    try:
                        observer.on_receive(self, record)
                    except Exception as exc:
                        self._on_hook_error(observer, exc)
                # Wake every waiter, then rearm for the next frame.
                wake.set()
                wake.clear()
        except ConnectionClosed:
            pass
        except Exception:  # a bug here must not vanish into an unretrieved task error
            _logger.exception("%s: reader failed; treating the connection as closed", self._name)
            conn.transport.abort()
        finally:
            self._reader_done = True
            self._close_code = conn.close_code
            metrics.closed(time.time())
            wake.set()
            wake.clear()
            _logger.debug("%s: connection closed, code %s", self._name, conn.close_code)

    def _on_hook_error(self, hook: object, exc: Exception) -> None:
        _logger.error("%s: receive hook %r failed: %s", self._name, hook, exc)
        if self._hook_error is None:
            self._hook_error = exc

    def _on_first_frame(self, data: Any) -> None:
        """Read the server's greeting (``settings.greeting``): the connection id and a
        negotiated recv timeout, which beats the configured one (SPEC section 3)."""
        greeting = self._settings.greeting
        if greeting is not None and isinstance(data, dict) and data.get("type") == greeting:
            self._connection_id = data.get("connection_id")
            recv_timeout = data.get("recv_timeout")
            if isinstance(recv_timeout, (int, float)) and recv_timeout > 0:
                self._negotiated_recv = float(recv_timeout)
                self._recv_bound = self._resolve_recv_bound()

    def _recent_events(self) -> str:
        records = self._log.since(self._log.last_index - _RECENT_EVENTS + 1)
        if not records:
            return "none received"
        shown = []
        for r in records:
            text = r.raw if isinstance(r.raw, str) else repr(r.raw)
            if len(text) > _EVENT_PREVIEW_CHARS:
                text = text[:_EVENT_PREVIEW_CHARS] + "..."
            shown.append(text)
        return f"last {len(shown)} of {self._log.total}: " + " | ".join(shown)

    async def _next_match(
        self, expected: Mapping[str, Any], deadline: float, step: str = ""
    ) -> dict[str, Any] | None:
        """The first unconsumed event matching ``expected``; None when the deadline passes.

        Moves the cursor past the match. Raises when the connection is gone. ``step``
        names the wait in those errors (built only then: this is the hot path).
        """
        record = await self._watch(
            lambda r: r.data is not None and matches(r.data, expected),
            deadline,
            lambda: f"{step}{_describe(expected)}",
            consume=True,
        )
        if record is None:
            return None
        found: dict[str, Any] = record.data  # matches() accepts mappings only
        return found

    async def _watch(
        self,
        accept: Callable[[LogRecord], bool],
        deadline: float,
        describe: Callable[[], str],
        *,
        consume: bool,
    ) -> LogRecord | None:
        """Feed unconsumed records, old then new, to ``accept`` until it says yes.

        Returns that record, or None when the deadline passes. With ``consume`` the
        cursor moves past what was scanned. Raises when the connection is gone.
        """
        scan_from = self._cursor
        loop = asyncio.get_running_loop()
        while True:
            if self._hook_error is not None:
                error, self._hook_error = self._hook_error, None
                raise error
            for record in self._log.since(scan_from):
                scan_from = record.index + 1
                if accept(record):
                    if consume:
                        self._cursor = scan_from
                    return record
            if self._conn is None:
                raise WsResilienceError(
                    f"{self._name} is not connected (call connect() first) while waiting "
                    f"for {describe()}"
                )
            if self._reader_done:
                if consume:
                    self._cursor = scan_from
                raise WsConnectionClosedError(
                    f"connection {self._name} to {self._url} closed (code {self._close_code}) "
                    f"while waiting for {describe()}; {self._recent_events()}",
                    code=self._close_code,
                )
            if loop.time() >= deadline:
                return None
            self._arm_watchdog(loop, deadline)
            await self._arrived.wait()

    def _arm_watchdog(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make sure waiters are woken no later than ``deadline``.

        One shared timer instead of a timeout per wait: back-to-back waits with
        deadlines ``now + recv_timeout`` find a timer already due earlier and create
        none, which keeps the round trip lean. A waiter woken by a timer that is not
        its own deadline re-arms it for that deadline.
        """
        watchdog = self._watchdog
        if watchdog is not None and not watchdog.cancelled() and watchdog.when() <= deadline:
            return
        if watchdog is not None:
            watchdog.cancel()
        self._watchdog = loop.call_at(deadline, self._on_watchdog)

    def _on_watchdog(self) -> None:
        self._watchdog = None
        self._arrived.set()
        self._arrived.clear()

    def _expect_deadline(self, timeout: float | None) -> tuple[float, TimeoutValue]:
        bound = self._timeout("recv_timeout", timeout)
        return asyncio.get_running_loop().time() + bound.value, bound

    # The public API takes a ``timeout`` (SPEC section 5): a per-call bound is the point.
    async def expect(
        self,
        type: str | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        **fields: Any,
    ) -> dict[str, Any]:
        """Wait for the next unconsumed event with ``type`` and ``fields``; return it.

        Events before the match are skipped (consumed). A callable field value is a
        predicate. Bounded by ``timeout`` or the recv timeout.

        Raises:
            WsTimeoutError: nothing matched in time (says what was expected and what came).
            WsConnectionClosedError: the connection closed first.
        """
        expected = fields if type is None else {"type": type, **fields}
        deadline, bound = self._expect_deadline(timeout)
        found = await self._next_match(expected, deadline)
        if found is None:
            raise WsTimeoutError(
                f"{self._name}: no event matching {_describe(expected)} within "
                f"recv_timeout={bound}; {self._recent_events()}"
            )
        return found

    async def expect_sequence(
        self,
        expected: Sequence[str | Mapping[str, Any]],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Wait for events matching each item in order (others may come in between).

        An item is a type name or a mapping of fields. One deadline covers the whole
        sequence.

        Raises:
            WsTimeoutError: a step was not seen in time (names the step).
            WsConnectionClosedError: the connection closed first.
        """
        steps = [{"type": item} if isinstance(item, str) else dict(item) for item in expected]
        deadline, bound = self._expect_deadline(timeout)
        found: list[dict[str, Any]] = []
        for number, step in enumerate(steps, 1):
            label = f"sequence step {number}/{len(steps)} "
            event = await self._next_match(step, deadline, label)
            if event is None:
                seen = [e.get("type") for e in found]
                raise WsTimeoutError(
                    f"{self._name}: sequence step {number}/{len(steps)} {_describe(step)} not "
                    f"seen within recv_timeout={bound}; matched before it: {seen}; "
                    f"{self._recent_events()}"
                )
            found.append(event)
        return found

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
        deadline, bound = self._expect_deadline(timeout)
        checker = contract.checker(
            correlation, skip_runs=frozenset(self._checked_runs), started_at=time.monotonic()
        )
        reason: str | None = None
        try:
            record = await self._watch(
                lambda r: checker.feed(r.data, r.received_at),
                deadline,
                lambda: f"contract {contract.name or contract.events!r}",
                consume=False,
            )
            if record is None:
                reason = f"terminal event not seen within recv_timeout={bound}"
            elif contract.correlation is None:
                # Without a correlation field runs cannot be told apart: the next check
                # starts after this run's terminal event.
                self._cursor = record.index + 1
        except WsConnectionClosedError as closed:
            reason = f"connection closed (code {closed.code}) before the terminal event"
        result = checker.finish(reason=reason)
        if result.run is not None:
            self._checked_runs.add(result.run)
        result.raise_for_violations()
        return result

    # -- sending -----------------------------------------------------------------------

    def _open_connection(self, action: str) -> ClientConnection:
        conn = self._conn
        if conn is None:
            raise WsResilienceError(f"cannot {action}: {self._name} is not connected")
        return conn

    async def _send(self, message: str | bytes, data: Any = None) -> None:
        size = _utf8_size(message)
        if size > self._max_message_size:
            raise WsMessageTooLargeError(size, self._max_message_size)
        conn = self._open_connection("send")
        for observer in self._observers:
            observer.on_send(self, message, data)
        try:
            transport = conn.transport
            # Deflate can grow incompressible data a little: allow 1/32 on top of framing.
            worst_case = size + (size >> 5) + _FRAME_OVERHEAD
            high_water = transport.get_write_buffer_limits()[1]
            if transport.get_write_buffer_size() + worst_case <= high_water:
                # Below the high-water mark the send cannot block: skip the timer.
                await conn.send(message)
            else:
                # A peer that stops reading fills the buffers: bound the wait for room.
                async with asyncio.timeout(self._recv_bound.value):
                    await conn.send(message)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else conn.close_code
            raise WsConnectionClosedError(
                f"cannot send: connection {self._name} to {self._url} is closed (code {code})",
                code=code,
                reason=exc.rcvd.reason if exc.rcvd is not None else "",
            ) from None
        except TimeoutError:
            raise WsTimeoutError(
                f"{self._name}: send of {size} bytes did not complete within "
                f"recv_timeout={self._timeout('recv_timeout')} (the peer stopped reading?)"
            ) from None
        self._metrics.sent += 1
        self._metrics.bytes_sent += size

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as a JSON text frame."""
        await self._send(json.dumps(obj), obj)

    async def send_text(self, text: str) -> None:
        await self._send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self._send(bytes(data))

    async def ping(self) -> float:
        """WebSocket ping round trip in seconds (bounded by the recv timeout)."""
        conn = self._open_connection("ping")
        bound = self._timeout("recv_timeout")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(bound.value):
                pong = await conn.ping()
                await pong
        except ConnectionClosed as exc:
            raise WsConnectionClosedError(
                f"cannot ping: connection {self._name} is closed", code=conn.close_code
            ) from exc
        except TimeoutError:
            raise WsTimeoutError(f"{self._name}: no pong within recv_timeout={bound}") from None
        rtt = time.perf_counter() - started
        self._metrics.ping_rtt_s = rtt
        return rtt

    # -- closing -----------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection; idempotent, bounded by the close timeout, never raises
        for a connection that is already dead."""
        conn, reader = self._conn, self._reader
        if conn is None:
            return
        bound = self._timeout("close_timeout").value
        try:
            async with asyncio.timeout(bound):
                await conn.close()
        except TimeoutError:
            _logger.debug("%s: close timed out after %ss, aborting", self._name, bound)
            conn.transport.abort()
        except Exception as exc:  # a dead socket must not fail the caller's teardown
            _logger.debug("%s: error while closing: %s", self._name, exc)
            conn.transport.abort()
        if reader is not None and not reader.done():
            # The reader ends by itself once the socket is closed; do not wait long for it.
            done, _ = await asyncio.wait({reader}, timeout=1.0)
            if not done:
                reader.cancel()
                await asyncio.wait({reader}, timeout=1.0)
        self._reader_done = True
        self._metrics.closed(time.time())
        if self._close_code is None:
            self._close_code = conn.close_code
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def reconnect(self) -> Self:
        """Close (bounded) and connect again as the same user with the same auth.

        The event log is kept; waits start after everything received so far.
        """
        await self.close()
        self._cursor = self._log.last_index + 1
        self._negotiated_recv = None
        self._recv_bound = self._resolve_recv_bound()
        self._connection_id = None
        async with self._connect_lock:
            await self._open()
        self._metrics.reconnects += 1
        return self


async def close_clients(clients: Sequence[WsClient], bound: float) -> None:
    """Close ``clients`` at once; each close is bounded by its own timeout, and the whole
    by ``bound`` seconds, a last line of defence so no teardown can hang."""
    if not clients:
        return
    try:
        async with asyncio.timeout(bound):
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    except TimeoutError:
        pass
