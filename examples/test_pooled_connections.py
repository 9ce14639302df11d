"""Pooled connections: a healthy connection of the same user is reused, never another's."""

import pytest


@pytest.mark.asyncio
@pytest.mark.performance
async def test_a_released_connection_is_reused_for_the_same_user(ws_pool, ws_user_factory):
    alice, bob = ws_user_factory(), ws_user_factory()
    hits_before = ws_pool.stats.hits  # the pool and its stats are the session's

    first = await ws_pool.acquire(alice)
    await ws_pool.release(first)
    again = await ws_pool.acquire(alice)
    other = await ws_pool.acquire(bob)

    assert again is first  # reused: no new handshake
    assert other is not first  # never handed to another user
    assert ws_pool.stats.hits == hits_before + 1
    # Across tests too, with `ws_loop_scope = session` (see docs/pool.md).
