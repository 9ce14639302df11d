"""Opening a client's connection: one websockets handshake per attempt of the chain.

The asyncio side of ``WsClient.connect()``. What each attempt sends is
`pytest_ws_resilience.client.auth_methods`'s; what each answer leads to (next method,
retry after a backoff delay, or failure) is `pytest_ws_resilience.client.fallback`'s.
This module only makes the handshakes, sleeps the delays and translates websockets'
exceptions into the outcomes the chain understands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage, InvalidStatus
from websockets.typing import Subprotocol

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
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue

__all__ = ["Connector", "Opened"]


@dataclass(frozen=True, slots=True)
class Opened:
    """A connection `Connector.open` got accepted, and how."""

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

    async def _handshake(self, request: ConnectRequest) -> ClientConnection:
        """One opening handshake presenting ``request``'s credential."""
        options = dict(self._options)
        headers = list(request.headers)
        extra_headers = options.pop("additional_headers", None)
        if extra_headers:
            items = extra_headers.items() if isinstance(extra_headers, Mapping) else extra_headers
            headers.extend(items)
        subprotocols = [Subprotocol(p) for p in request.subprotocols]
        subprotocols.extend(options.pop("subprotocols", None) or ())
        options.setdefault("open_timeout", self.connect_timeout.value)
        options.setdefault("close_timeout", self._close_timeout.value)
        options.setdefault("max_size", self._max_message_size)
        options.setdefault("logger", wire_logger)
        return await connect(
            request.url,
            subprotocols=subprotocols or None,
            additional_headers=headers or None,
            proxy=None,
            **options,
        )
