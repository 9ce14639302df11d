"""The plugin's fixtures: settings, server, tokens, users and real clients.

Thin glue over the library: every fixture delegates to a library object and adds only
lifetime management. Session-scoped pieces are synchronous (the embedded server runs in
its own thread with its own loop, as pytest-httpserver does), so they work with any
event-loop scope. Client fixtures are async and live in the test's function-scoped loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, Protocol

import pytest
import pytest_asyncio

from pytest_ws_resilience.client import WsClient
from pytest_ws_resilience.server_under_test import (
    ServerUnderTest,
    open_server_under_test,
    token_factory_for,
)
from pytest_ws_resilience.settings import WsSettings
from pytest_ws_resilience.stash import SETTINGS_KEY
from pytest_ws_resilience.tokens import TestUser, TokenFactory

__all__ = [
    "ws_client",
    "ws_client_factory",
    "ws_server",
    "ws_settings",
    "ws_tokens",
    "ws_user",
    "ws_user_factory",
]

#: The event-loop scope of the client fixtures (pytest-asyncio strict mode needs it named).
CLIENT_LOOP_SCOPE: Final = "function"


class UserFactory(Protocol):
    def __call__(self, **claims: Any) -> TestUser: ...


class ClientFactory(Protocol):
    def __call__(
        self,
        user: TestUser | None = None,
        *,
        token: str | None = None,
        url: str | None = None,
        auth: str | Sequence[str] | None = None,
        max_message_size: int | None = None,
        connect: bool = True,
        **options: Any,
    ) -> Awaitable[WsClient]: ...


@pytest.fixture(scope="session")
def ws_settings(pytestconfig: pytest.Config) -> WsSettings:
    """The run's resolved settings (env, URL, timeouts with their sources, auth)."""
    return pytestconfig.stash.get(SETTINGS_KEY, None) or WsSettings()


@pytest.fixture(scope="session")
def ws_tokens(ws_settings: WsSettings) -> TokenFactory:
    """The `TokenFactory` configured for the env: its tokens are accepted by `ws_server`."""
    return token_factory_for(ws_settings)


@pytest.fixture(scope="session")
def ws_server(ws_settings: WsSettings, ws_tokens: TokenFactory) -> Iterator[ServerUnderTest]:
    """The server under test: the configured URL, else the embedded reference server.

    The embedded server starts once per session on a free loopback port and stops
    (bounded) when the session ends.
    """
    server = open_server_under_test(ws_settings, ws_tokens)
    try:
        yield server
    finally:
        server.close(timeout=ws_settings.close_timeout.value or 5.0)


@pytest.fixture
def ws_user_factory(ws_tokens: TokenFactory) -> UserFactory:
    """``ws_user_factory(**claims) -> TestUser``: a fresh user with a valid token."""

    def make_user(**claims: Any) -> TestUser:
        return ws_tokens.user(**claims)

    return make_user


@pytest.fixture
def ws_user(ws_user_factory: UserFactory) -> TestUser:
    """A fresh `TestUser` for this test."""
    return ws_user_factory()


@pytest_asyncio.fixture(loop_scope=CLIENT_LOOP_SCOPE)
async def ws_client_factory(
    ws_server: ServerUnderTest,
    ws_settings: WsSettings,
    ws_user_factory: UserFactory,
) -> AsyncIterator[ClientFactory]:
    """``await ws_client_factory(user=None, *, token=None, url=None, auth=None, ...)``.

    Each call returns a `WsClient` (connected unless ``connect=False``) for ``user`` (a
    fresh one when None). Every client made here is closed at teardown, concurrently and
    bounded by the close timeout.
    """
    clients: list[WsClient] = []

    async def make_client(
        user: TestUser | None = None,
        *,
        token: str | None = None,
        url: str | None = None,
        auth: str | Sequence[str] | None = None,
        max_message_size: int | None = None,
        connect: bool = True,
        **options: Any,
    ) -> WsClient:
        client = WsClient(
            url or ws_server.url,
            user=user if user is not None else ws_user_factory(),
            token=token,
            auth=auth,
            settings=ws_settings,
            max_message_size=max_message_size,
            **options,
        )
        clients.append(client)
        if connect:
            await client.connect()
        return client

    try:
        yield make_client
    finally:
        await _close_all(clients, ws_settings)


@pytest_asyncio.fixture(loop_scope=CLIENT_LOOP_SCOPE)
async def ws_client(
    ws_client_factory: Callable[..., Awaitable[WsClient]], ws_user: TestUser
) -> WsClient:
    """A connected `WsClient` for `ws_user` (closed at teardown by the factory)."""
    return await ws_client_factory(ws_user)


async def _close_all(clients: Sequence[WsClient], settings: WsSettings) -> None:
    """Close every client at once; each close is bounded, and so is the whole."""
    if not clients:
        return
    bound = (settings.close_timeout.value or 5.0) + 1.0
    try:
        async with asyncio.timeout(bound):
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    except TimeoutError:  # close() is bounded itself; this is a last line of defence
        pass
