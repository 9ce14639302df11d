"""`AsgiAppServer`: a raw ASGI app served by uvicorn in a thread, waited for by the one
readiness rule over real sockets.

The apps are small raw ASGI callables (no framework), so each answers the handshake
exactly as the case needs: 404, a refusal before accept (uvicorn answers 403), or a
lifespan that raises.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.errors import AsgiAppStartupError
from pytest_ws_resilience.servers.asgi_thread import AsgiAppServer

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _lifespan(receive: _Receive, send: _Send) -> None:
    while True:
        message = await receive()
        kind = message["type"].removeprefix("lifespan.")
        await send({"type": f"lifespan.{kind}.complete"})
        if kind == "shutdown":
            return


async def not_found_app(scope: _Scope, receive: _Receive, send: _Send) -> None:
    """A raw ASGI app whose WebSocket path answers HTTP 404 (denial response)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no such endpoint"})


async def token_checking_app(scope: _Scope, receive: _Receive, send: _Send) -> None:
    """Refuses a handshake without ``?token=`` before accept (uvicorn answers 403)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "websocket":
        await receive()
        if b"token=" not in scope.get("query_string", b""):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        await receive()


def test_an_endpoint_answering_404_fails_at_once_naming_url_and_status():
    server = AsgiAppServer(AppPath("tests", "not_found_app"), path="/nope", app=not_found_app)
    with pytest.raises(
        AsgiAppStartupError, match=r"ws://127\.0\.0\.1:\d+/nope answered HTTP 404 to the"
    ):
        server.start(timeout=30)
    assert not server.running


def test_an_endpoint_refusing_a_tokenless_probe_is_up():
    server = AsgiAppServer(
        AppPath("tests", "token_checking_app"), path="/ws", app=token_checking_app
    )
    began = time.monotonic()
    with server.start(timeout=10):
        assert server.running and time.monotonic() - began < 5
        assert server.probe_url() == server.url and server.url.endswith("/ws")
        assert server.exit_reason() is None
        assert server.log_so_far() == ""
    assert server.exit_reason() == "was stopped" and server.probe_url() is None


def test_a_lifespan_failure_is_reported_at_once_with_the_traceback():
    async def failing(scope: _Scope, receive: _Receive, send: _Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        raise ValueError("no config for the app")

    server = AsgiAppServer(AppPath("tests", "failing"), app=failing)
    began = time.monotonic()
    with pytest.raises(AsgiAppStartupError, match=r"(?s)failed to start.*no config for the app"):
        server.start(timeout=30)
    assert time.monotonic() - began < 15  # at once, long before the deadline
