"""A finished client is freed by reference counting alone: nothing of it waits for the
garbage collector.

A client in a reference cycle (its connection holding a closure over the client, as
the fail-fast callback once did) keeps its connection, log, user and event loop alive
until a collection finds them: with one client per test, that made every test run the
collector about twice as often (``benchmarks/suite_overhead.py``). Checked with the
collector off, over real sockets to the reference server.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.testing import ReferenceServer


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.asyncio
@pytest.mark.usefixtures("collector_off")
async def test_a_closed_client_is_freed_without_the_collector(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    client = WsClient(server.url, user=tokens.user())
    await client.connect()
    await client.send_json({"type": "ping"})
    await client.expect(type="pong")
    await client.close()
    freed = weakref.ref(client)
    del client
    assert freed() is None, f"still referenced by {gc.get_referrers(freed())!r:.300}"


@pytest.mark.asyncio
@pytest.mark.usefixtures("collector_off")
async def test_a_client_the_server_closed_is_freed_without_the_collector(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    # The reference server closes a connection with 4001 when its token expires.
    client = WsClient(server.url, user=tokens.user(ttl=1))
    await client.connect()
    code = await client.expect_close(4001, within=5.0)
    await client.close()
    freed = weakref.ref(client)
    del client
    assert code == 4001
    assert freed() is None, f"still referenced by {gc.get_referrers(freed())!r:.300}"
