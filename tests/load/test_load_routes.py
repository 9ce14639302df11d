"""Storms on many routes and with their own connection options, against a real plain
websockets server that records what each handshake asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.load.storm import Storm

UNAUTHENTICATED = WsSettings(auth_methods=("none",), greeting=None)


@pytest_asyncio.fixture(loop_scope="function")
async def recorder() -> AsyncIterator[tuple[Server, list[Request]]]:
    requests: list[Request] = []

    def record(connection: ServerConnection, request: Request) -> Response | None:
        requests.append(request)
        if request.headers.get("Origin") == "http://refused.test":
            return connection.respond(403, "no\n")
        return None

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(echo, "127.0.0.1", 0, process_request=record) as server:
        yield server, requests


def _url(server: Server) -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"ws://{host}:{port}/ws"


@pytest.mark.asyncio(loop_scope="function")
async def test_each_connection_reaches_its_own_room(
    recorder: tuple[Server, list[Request]],
) -> None:
    server, requests = recorder
    async with Storm(_url(server), TokenFactory(), UNAUTHENTICATED) as storm:
        result = await storm.connect(
            4, path="/chat/{room}", path_params=lambda i: {"room": f"r{i % 2}"}
        )
        cycles = await storm.cycles(2, concurrency=1, path="/lobby")
    assert result.succeeded == 4 and cycles.succeeded == 2
    assert sorted(r.path for r in requests) == sorted(
        ["/chat/r0", "/chat/r1", "/chat/r0", "/chat/r1", "/lobby", "/lobby"]
    )


@pytest.mark.asyncio(loop_scope="function")
async def test_a_storm_s_own_options_ride_on_its_handshakes(
    recorder: tuple[Server, list[Request]],
) -> None:
    server, requests = recorder
    async with Storm(
        _url(server), TokenFactory(), UNAUTHENTICATED, origin="http://a.test"
    ) as storm:
        ok = await storm.connect(2, headers={"X-Run": "7"})
        refused = await storm.burst(2, 1, origin="http://refused.test")
    assert ok.succeeded == 2
    assert [r.headers["Origin"] for r in requests[:2]] == ["http://a.test"] * 2
    assert [r.headers["X-Run"] for r in requests[:2]] == ["7", "7"]
    assert refused.errors["auth"] == 2
    assert "does not depend on the credentials" in refused.error_examples["auth"]


@pytest.mark.asyncio(loop_scope="function")
async def test_bad_routes_fail_before_any_connection(
    recorder: tuple[Server, list[Request]],
) -> None:
    server, requests = recorder
    async with Storm(_url(server), TokenFactory(), UNAUTHENTICATED) as storm:
        with pytest.raises(ValueError, match="needs a value for room"):
            await storm.connect(2, path="/chat/{room}")
        with pytest.raises(ValueError, match="path_params= needs path="):
            await storm.connect(2, path_params={"room": "a"})
        with pytest.raises(ValueError, match="must be ws:// or wss://"):
            await storm.connect(2, url="http://127.0.0.1:1/")
    assert requests == []
