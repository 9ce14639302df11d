"""Opening a client's connection: one websockets handshake per attempt of the chain.

The asyncio side of ``WsClient.connect()``. What each attempt sends is
`pytest_ws_resilience.client.auth_methods`'s; what each answer leads to (next method,
retry after a backoff delay, or failure) is `pytest_ws_resilience.client.fallback`'s.
This module only makes the handshakes, sleeps the delays and translates websockets'
exceptions into the outcomes the chain understands. What every handshake carries
besides the credential (headers, Origin, subprotocols, User-Agent, compression: the
settings' `ConnectionOptions` with the client's own on top) becomes websockets'
``connect()`` arguments in one place, `connect_arguments`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage, InvalidStatus
from websockets.typing import Origin, Subprotocol

from pytest_ws_resilience.client.auth_methods import ConnectRequest, build_connect_request
from pytest_ws_resilience.client.fallback import (
    HANDSHAKE_CUT_SHORT,
    FallbackChain,
    Step,
    network_outcome,
)
from pytest_ws_resilience.client.logs import client_logger, wire_logger
from pytest_ws_resilience.client.metrics import ClientMetrics
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import ConnectionOptions, WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue

__all__ = ["Connector", "Opened", "connect_arguments"]


def connect_arguments(
    request: ConnectRequest, connection: ConnectionOptions, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The keyword arguments of websockets' ``connect()`` for one attempt (all but the URL).

    The credential's header wins over a configured header of the same name; the
    subprotocols are the auth method's, then the configured ones, then any passed as
    ``subprotocols=`` among ``options``. Explicit websockets options (``origin=``,
    ``user_agent_header=``, ``compression=``, ``additional_headers=``) win over
    ``connection``, so the ``**connect_options`` passthrough keeps its meaning.
    """
    kwargs = dict(options)
    own = {name.lower() for name, _ in request.headers}
    headers = [*request.headers, *((n, v) for n, v in connection.headers if n.lower() not in own)]
    extra_headers = kwargs.pop("additional_headers", None)
    if extra_headers:
        items = extra_headers.items() if isinstance(extra_headers, Mapping) else extra_headers
        headers.extend(items)
    subprotocols = [Subprotocol(p) for p in (*request.subprotocols, *connection.subprotocols)]
    subprotocols.extend(kwargs.pop("subprotocols", None) or ())
    if connection.origin is not None:
        kwargs.setdefault("origin", Origin(connection.origin))
    if connection.user_agent is not None:
        kwargs.setdefault("user_agent_header", connection.user_agent)
    kwargs.setdefault("compression", "deflate" if connection.compression else None)
    kwargs["subprotocols"] = list(dict.fromkeys(subprotocols)) or None
    kwargs["additional_headers"] = headers or None
    return kwargs


@dataclass(slots=True)
class Opened:
    """A connection `Connector.open` got accepted, and how.

    Not frozen (read-only by convention): one is made for every connection, and a
    frozen dataclass pays a call of ``object.__setattr__`` for each field it sets.
    """

    connection: ClientConnection
    #: The auth method the server accepted.
    auth_method: str
    #: How long the successful handshake took (TCP + HTTP upgrade), seconds.
    handshake_s: float


class Connector:
    """Opens connections to one endpoint with one credential, for one client.

    Everything here is fixed when the client is made; each `open` walks the fallback
    chain afresh.

    Args:
        url: the ws:// or wss:// endpoint.
        token: the bearer token (None for "none" only).
        methods: the auth fallback chain.
        settings: names of the query parameter, cookie and subprotocol.
        retries: retries per method after network errors and 5xx.
        backoff: the delays of those retries.
        connect_timeout: bound of one handshake.
        close_timeout: bound of websockets' own close handshake.
        max_message_size: frame size limit, both directions.
        options: passed to `websockets.asyncio.client.connect` (``additional_headers``
            and ``subprotocols`` are merged with the auth method's).
        label: the client's name, for logs.
        connection: headers, Origin, subprotocols, User-Agent and compression of every
            attempt (see `connect_arguments`).
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        methods: tuple[str, ...],
        *,
        settings: WsSettings,
        retries: int,
        backoff: Backoff,
        connect_timeout: TimeoutValue,
        close_timeout: TimeoutValue,
        max_message_size: int,
        options: Mapping[str, Any],
        label: str,
        connection: ConnectionOptions | None = None,
    ) -> None:
        #: The auth fallback chain.
        self.methods = methods
        #: The bound of one handshake, with its source.
        self.connect_timeout = connect_timeout
        self._url = url
        self._retries = retries
        self._token = token
        self._settings = settings
        self._backoff = backoff
        self._close_timeout = close_timeout
        self._max_message_size = max_message_size
        self._options = options
        self._label = label
        #: What every attempt carries besides the credential.
        self.connection = connection if connection is not None else settings.connection

    async def open(self, metrics: ClientMetrics) -> Opened:
        """Walk the fallback chain until a handshake succeeds.

        ``metrics.attempts`` is this walk's list of attempts (filled as it goes);
        ``metrics.retries`` counts each backoff retry.

        Raises:
            WsAuthError: every auth method was rejected (401/403).
            WsConnectError: network errors or 5xx outlasted the retries, or another
                handshake failure.
            WsTimeoutError: one handshake took longer than the connect timeout.
        """
        chain = FallbackChain(
            self._url,
            self.methods,
            retries=self._retries,
            backoff=self._backoff,
            connect_timeout=self.connect_timeout,
        )
        metrics.attempts = chain.attempts
        s = self._settings
        while (method := chain.method) is not None:
            request = build_connect_request(
                method,
                self._url,
                self._token,
                query_param=s.auth_query_param,
                cookie=s.auth_cookie,
                subprotocol=s.auth_subprotocol,
            )
            while chain.method == method:
                started = time.perf_counter()
                try:
                    conn = await self._handshake(request)
                except TimeoutError:
                    raise chain.timed_out() from None
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    client_logger.debug("%s: auth %s answered HTTP %s", self._label, method, status)
                    verdict = chain.answered(status)
                except (InvalidMessage, EOFError) as exc:
                    client_logger.debug("%s: auth %s failed: %s", self._label, method, exc)
                    verdict = chain.failed(HANDSHAKE_CUT_SHORT)
                except (OSError, ConnectionClosed) as exc:
                    client_logger.debug("%s: auth %s failed: %s", self._label, method, exc)
                    verdict = chain.failed(network_outcome(exc))
                except InvalidHandshake as exc:
                    raise chain.invalid(exc) from None
                else:
                    chain.connected()
                    return Opened(conn, method, time.perf_counter() - started)
                if verdict.error is not None:
                    raise verdict.error from None
                if verdict.step is Step.RETRY:
                    metrics.retries += 1
                    await asyncio.sleep(verdict.delay)
        raise chain.rejected()

    def _handshake(self, request: ConnectRequest) -> Awaitable[ClientConnection]:
        """One opening handshake presenting ``request``'s credential (websockets' own
        awaitable: no coroutine of ours to resume at each of its steps)."""
        kwargs = connect_arguments(request, self.connection, self._options)
        kwargs.setdefault("open_timeout", self.connect_timeout.value)
        kwargs.setdefault("close_timeout", self._close_timeout.value)
        kwargs.setdefault("max_size", self._max_message_size)
        kwargs.setdefault("logger", wire_logger)
        return connect(request.url, proxy=None, **kwargs)
