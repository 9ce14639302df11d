"""Connection options (headers, Origin, subprotocols, User-Agent, compression) on every
handshake, unauthenticated servers, and what a refusal that does not depend on the
credentials says. Real servers on loopback; pure rules tested without I/O."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from pytest_ws_resilience.client.auth_methods import (
    ConnectRequest,
    build_connect_request,
    describe_auth,
    header_secrets,
    is_secret_header,
)
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.fallback import refusal_hint
from pytest_ws_resilience.client.handshake import connect_arguments
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import (
    ConnectionOptions,
    KeySettings,
    ServerChoice,
    WsSettings,
)
from pytest_ws_resilience.errors import Attempt, WsAuthError
from pytest_ws_resilience.redaction import redact

ORIGIN = "http://app.example.test"
UNAUTHENTICATED = WsSettings(auth_methods=("none",), greeting=None)


@dataclass
class PlainServer:
    """A plain websockets echo server that checks Origin (403 otherwise), like Django
    Channels' ``AllowedHostsOriginValidator``, and records each request's headers."""

    server: Server
    seen: list[Headers] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}"


@pytest_asyncio.fixture(loop_scope="function")
async def plain() -> AsyncIterator[PlainServer]:
    holder: list[PlainServer] = []

    def check(connection: ServerConnection, request: Request) -> Response | None:
        holder[0].seen.append(request.headers)
        if request.headers.get("Origin") != ORIGIN:
            return connection.respond(403, "origin not allowed\n")
        return None

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(echo, "127.0.0.1", 0, process_request=check, subprotocols=None) as server:
        holder.append(PlainServer(server))
        yield holder[0]


# -- pure rules ------------------------------------------------------------------------------


def test_connect_arguments_carry_the_options_and_keep_the_credential_header() -> None:
    request = build_connect_request("header", "ws://h/", "tok")
    options = ConnectionOptions(
        headers=(("Authorization", "Basic configured"), ("X-Team", "a")),
        origin=ORIGIN,
        subprotocols=("chat",),
        user_agent="tests/1",
        compression=False,
    )
    kwargs = connect_arguments(request, options, {"additional_headers": {"X-More": "1"}})
    assert kwargs["additional_headers"] == [
        ("Authorization", "Bearer tok"),
        ("X-Team", "a"),
        ("X-More", "1"),
    ]
    assert kwargs["origin"] == ORIGIN
    assert kwargs["subprotocols"] == ["chat"]
    assert kwargs["user_agent_header"] == "tests/1"
    assert kwargs["compression"] is None


def test_explicit_websockets_options_beat_the_configured_ones() -> None:
    request = build_connect_request("subprotocol", "ws://h/", "tok")
    kwargs = connect_arguments(
        request,
        ConnectionOptions(origin=ORIGIN, subprotocols=("chat",)),
        {"origin": "http://other.test", "subprotocols": ["extra"], "compression": "deflate"},
    )
    assert kwargs["origin"] == "http://other.test"
    assert kwargs["subprotocols"] == ["jwt-auth", "jwt.tok", "chat", "extra"]
    assert kwargs["compression"] == "deflate"
    plain = connect_arguments(
        build_connect_request("none", "ws://h/", None), ConnectionOptions(), {}
    )
    assert plain["additional_headers"] is None
    assert plain["subprotocols"] is None
    assert plain["compression"] == "deflate"
    assert "origin" not in plain


def test_credential_headers_are_recognised_and_their_values_found() -> None:
    assert is_secret_header("Authorization")
    assert is_secret_header("X-Api-Key")
    assert is_secret_header("x-auth-token")
    assert not is_secret_header("X-Team")
    secrets = header_secrets(
        [("Authorization", "Bearer abc123def"), ("Cookie", "sid=s3ss10n; theme=dark"), ("X-A", "b")]
    )
    assert secrets == [
        "Bearer abc123def",
        "abc123def",
        "sid=s3ss10n; theme=dark",
        "s3ss10n",
        "dark",
    ]
    request = ConnectRequest("ws://h/", (("X-Api-Key", "k3y-value"),), (), "none")
    assert "k3y-value" not in repr(request)


def test_a_refusal_with_and_without_a_token_does_not_depend_on_the_credentials() -> None:
    attempts = [Attempt("subprotocol", "HTTP 403", 403), Attempt("none", "HTTP 403", 403)]
    hint = refusal_hint(attempts, "ws://h:1/ws/chat/")
    assert "does not depend on the credentials" in hint
    assert "with and without a token" in hint
    assert "Origin" in hint and "/ws/chat/" in hint and "policy" in hint
    assert "secret" not in hint
    only_none = refusal_hint([Attempt("none", "HTTP 403", 403)], "ws://h:1/")
    assert "without any token" in only_none and "does not depend" in only_none
    every_way = refusal_hint(
        [Attempt(m, "HTTP 403", 403) for m in ("subprotocol", "query", "header", "cookie")],
        "ws://h:1/",
    )
    assert "whichever way the token was presented" in every_way


def test_a_401_to_every_token_still_points_at_the_token() -> None:
    attempts = [Attempt(m, "HTTP 401", 401) for m in ("subprotocol", "query")]
    hint = refusal_hint(attempts, "ws://h/")
    assert "check the token's secret or key" in hint
    assert 'auth_methods = ["none"]' in hint
    mixed = [Attempt("subprotocol", "HTTP 401", 401), Attempt("none", "HTTP 403", 403)]
    assert "check the token's secret" in refusal_hint(mixed, "ws://h/")


def test_the_run_s_auth_is_described_in_one_phrase() -> None:
    assert describe_auth(UNAUTHENTICATED).startswith("none")
    configured = WsSettings(keys=KeySettings(secret="s" * 32, secret_env="JWT_SECRET"))
    assert describe_auth(configured) == (
        "HS256 secret from $JWT_SECRET; methods subprotocol, query, header, cookie"
    )
    assert "given to the server the plugin starts" in describe_auth(WsSettings())
    external = describe_auth(WsSettings(server=ServerChoice(url="ws://127.0.0.1:9/")))
    assert external.startswith("no key configured") and 'auth_methods = ["none"]' in external


# -- real handshakes -------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="function")
async def test_the_settings_origin_and_headers_ride_on_every_handshake(plain: PlainServer) -> None:
    settings = WsSettings(
        auth_methods=("none",),
        greeting=None,
        connection=ConnectionOptions(
            headers=(("X-Team", "a"), ("X-Api-Key", "k3y-s3cret")),
            origin=ORIGIN,
            user_agent="ws-tests/1",
        ),
    )
    async with WsClient(plain.url, user=TokenFactory().user(), settings=settings) as client:
        await client.send_json({"type": "echo", "n": 1})
        assert (await client.expect("echo"))["n"] == 1
        assert client.auth_method == "none"
    headers = plain.seen[-1]
    assert headers["Origin"] == ORIGIN
    assert headers["X-Team"] == "a"
    assert headers["User-Agent"] == "ws-tests/1"
    # The user's token was never sent: unauthenticated means no credential at all.
    assert "Authorization" not in headers
    assert "Sec-WebSocket-Protocol" not in headers
    # The credential-like header's value is registered: redacted wherever it shows up.
    assert "k3y-s3cret" not in redact("header X-Api-Key: k3y-s3cret")


@pytest.mark.asyncio(loop_scope="function")
async def test_a_client_s_own_options_replace_the_configured_ones(plain: PlainServer) -> None:
    settings = WsSettings(
        auth_methods=("none",), greeting=None, connection=ConnectionOptions(origin="http://bad")
    )
    async with WsClient(
        plain.url, settings=settings, origin=ORIGIN, headers={"X-Room": "7"}, compression=False
    ) as client:
        assert client.connection is not None
        assert client.connection.protocol.extensions == []
    assert plain.seen[-1]["X-Room"] == "7"
    assert "permessage-deflate" not in plain.seen[-1].get("Sec-WebSocket-Extensions", "")


@pytest.mark.asyncio(loop_scope="function")
async def test_a_refused_tokenless_handshake_says_the_credentials_are_not_the_cause(
    plain: PlainServer,
) -> None:
    client = WsClient(plain.url, user=TokenFactory().user(), settings=UNAUTHENTICATED)
    with pytest.raises(WsAuthError) as info:
        await client.connect()
    message = str(info.value)
    assert "none: HTTP 403" in message
    assert "does not depend on the credentials" in message
    assert "Origin" in message
    assert "check the token's secret" not in message
    await client.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_every_token_method_refused_alike_is_not_blamed_on_the_token(
    plain: PlainServer,
) -> None:
    client = WsClient(plain.url, user=TokenFactory().user(), settings=WsSettings(greeting=None))
    with pytest.raises(WsAuthError) as info:
        await client.connect()
    message = str(info.value)
    assert "subprotocol: HTTP 403, query: HTTP 403, header: HTTP 403, cookie: HTTP 403" in message
    assert "does not depend on the credentials" in message
    await client.close()
