"""What the load tests share: a token factory and a reference server trusting it, in the
test's loop (a module overrides ``server`` when it needs another configuration)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    """A reference server on a free loopback port, without keepalive pings."""
    async with ReferenceServer(ServerConfig(secret=tokens.secret, ping_interval=None)) as srv:
        yield srv
