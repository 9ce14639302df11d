"""The server a run talks to: the embedded reference server is waited for by the one
readiness rule too (a real handshake, not just a listening socket), and
``--ws-server-cmd`` is a service checked with an authenticated handshake."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.loading import CommandLine, load_settings
from pytest_ws_resilience.errors import WsTimeoutError
from pytest_ws_resilience.redaction import register_secret
from pytest_ws_resilience.servers.under_test import (
    SERVER_CMD_SECRET_ENV,
    EmbeddedTarget,
    open_server_under_test,
    server_cmd_spec,
    start_embedded_server,
    token_factory_for,
)
from pytest_ws_resilience.testing import ServerConfig


def _settings(**cli: Any) -> Any:
    return load_settings(cli=CommandLine(**cli), environ={}, tool_config={})


@pytest.fixture
def tokens() -> TokenFactory:
    secret = secrets.token_urlsafe(32)
    register_secret(secret)
    return TokenFactory(secret)


def test_the_embedded_server_is_up_once_it_answered_a_handshake(tokens: TokenFactory) -> None:
    server = open_server_under_test(_settings(), tokens)
    try:
        assert server.is_embedded and server.embedded is not None
        stats = server.embedded.stats
        # The probe carried no token: the server refused it (401), which proves it serves.
        assert stats.handshakes_attempted >= 1 and stats.handshakes_rejected >= 1
        assert stats.connections_opened == 0
        target = EmbeddedTarget(server.embedded)
        assert target.probe_url() == server.url and target.exit_reason() is None
    finally:
        server.close(timeout=2.0)
    assert target.probe_url() is None
    assert target.exit_reason() == "stopped before it answered a handshake"


def test_an_embedded_server_that_never_answers_a_handshake_is_not_up(
    tokens: TokenFactory,
) -> None:
    # Every handshake is held for 5 s (the slow_accept fault): the socket listens, and
    # that is not enough.
    config = ServerConfig(secret=tokens.secret, faults=frozenset({"slow_accept"}), slow_accept_s=5)
    with pytest.raises(WsTimeoutError) as info:
        start_embedded_server(config, timeout=1.5)
    first = str(info.value).splitlines()[0]
    assert first.startswith("embedded reference server did not answer a WebSocket handshake on ")
    assert "ws://127.0.0.1:" in first and "within 1.5 s" in first
    assert "last answer: no answer after" in first


def test_the_server_command_is_a_service_checked_with_a_token(tokens: TokenFactory) -> None:
    settings = _settings(server_cmd="myserver --port {port}", path="/ws")
    spec = server_cmd_spec(settings, tokens)
    assert (spec.health, spec.auth, spec.path) == ("websocket", True, "/ws")
    assert spec.backend == "process" and spec.command == ("myserver", "--port", "{port}")
    assert dict(spec.env or {}) == {SERVER_CMD_SECRET_ENV: tokens.secret}
    assert spec.startup_timeout >= 30


def test_the_token_factory_follows_the_configured_keys() -> None:
    factory = token_factory_for(_settings())
    assert factory.algorithm == "HS256" and factory.secret
