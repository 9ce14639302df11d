"""Readiness probes connect as the clients will: the configured headers, Origin,
subprotocols and User-Agent reach the server (an Origin-checking server accepts the
probe); an unauthenticated server's refusal of a tokenless probe, and the same 5xx in a
row, end the wait at once. Real ``websockets`` servers on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import ConnectionOptions, ServerChoice, WsSettings
from pytest_ws_resilience.servers.probe import wait_ready
from pytest_ws_resilience.servers.readiness import ReadinessCheck
from pytest_ws_resilience.servers.under_test import ServerUnderTest, server_cmd_spec

ALLOWED = "http://chat.example.test"


async def _idle(conn: ServerConnection) -> None:
    await asyncio.sleep(0)


@dataclass
class Target:
    url: str

    def probe_url(self) -> str | None:
        return self.url

    def exit_reason(self) -> str | None:
        return None

    def log_so_far(self) -> str:
        return "served\n"


@asynccontextmanager
async def origin_checking_server(seen: list[Request]) -> AsyncIterator[str]:
    """Refuses (403) a handshake without the allowed Origin, as Channels'
    ``AllowedHostsOriginValidator`` does; records each request."""

    async def process_request(conn: ServerConnection, request: Request) -> Response | None:
        seen.append(request)
        if request.headers.get("Origin") != ALLOWED:
            return conn.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        return None

    async def handler(conn: ServerConnection) -> None:
        await conn.wait_closed()

    async with serve(
        handler, "127.0.0.1", 0, process_request=process_request, subprotocols=["chat.v1"]
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/"


@pytest.mark.asyncio
async def test_the_probe_carries_origin_headers_subprotocols_and_user_agent() -> None:
    seen: list[Request] = []
    options = ConnectionOptions(
        headers=(("X-Tenant", "acme"),),
        origin=ALLOWED,
        subprotocols=("chat.v1",),
        user_agent="ws-resilience-probe-test",
    )
    check = ReadinessCheck(startup_timeout=5, unauthenticated=True)
    async with origin_checking_server(seen) as url:
        result = await wait_ready(Target(url), check, connection=options)
    assert result.ready is not None and result.never is None
    headers = seen[-1].headers
    assert headers["Origin"] == ALLOWED and headers["X-Tenant"] == "acme"
    assert headers["User-Agent"] == "ws-resilience-probe-test"
    assert headers["Sec-WebSocket-Protocol"] == "chat.v1"


@pytest.mark.asyncio
async def test_an_unauthenticated_server_refusing_the_probe_fails_at_once() -> None:
    seen: list[Request] = []
    check = ReadinessCheck(startup_timeout=30, unauthenticated=True)
    async with origin_checking_server(seen) as url:
        began = time.monotonic()
        result = await wait_ready(Target(url), check)
    assert result.ready is None and result.attempts == 1
    assert result.never is not None and result.never.startswith(
        "answered HTTP 403 to the WebSocket handshake"
    )
    assert "Origin" in result.never and time.monotonic() - began < 30
    # Without the setting, a 403 to a tokenless probe still proves the endpoint served.
    async with origin_checking_server(seen) as url:
        served = await wait_ready(Target(url), ReadinessCheck(startup_timeout=5))
    assert served.ready is not None


@pytest.mark.asyncio
async def test_the_same_5xx_three_times_in_a_row_fails_at_once() -> None:
    async def process_request(conn: ServerConnection, request: Request) -> Response:
        return conn.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "broken\n")

    async with serve(_idle, "127.0.0.1", 0, process_request=process_request) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        result = await wait_ready(
            Target(f"ws://127.0.0.1:{port}/"), ReadinessCheck(startup_timeout=30)
        )
    assert result.attempts == 3 and result.never is not None
    assert result.never.startswith("answered HTTP 500 to the WebSocket handshake: 3 times in a row")
    assert result.logs == "served\n"


def test_an_unauthenticated_server_cmd_is_probed_without_a_token_and_given_no_secret() -> None:
    settings = WsSettings(auth_methods=("none",), server=ServerChoice(command="serve {port}"))
    tokens = TokenFactory("s" * 32)
    spec = server_cmd_spec(settings, tokens)
    assert spec.auth is False and spec.env == {}


def test_url_for_reaches_any_endpoint_of_the_server() -> None:
    server = ServerUnderTest(url="ws://127.0.0.1:8123/ws/chat/lobby/", source="test")
    assert server.url_for("/ws/chat/{room}/", room="a b") == "ws://127.0.0.1:8123/ws/chat/a%20b/"
    assert server.url_for("/health?full=1") == "ws://127.0.0.1:8123/health?full=1"
    with pytest.raises(ValueError, match="needs a value for room"):
        server.url_for("/ws/chat/{room}/")
    with pytest.raises(ValueError, match="has no placeholder for extra"):
        server.url_for("/ws/", extra=1)
