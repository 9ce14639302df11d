"""Heartbeats against idle timeouts: the "connection drops every 2 minutes" bug, caught.

A load balancer in front of a WebSocket server (Cloud Run, a GCP or AWS load balancer)
drops a connection that carried no byte either way for its idle timeout. A client's
keepalive pings, and the server's pongs, are bytes: a heartbeat shorter than the idle
timeout keeps a quiet connection alive, a slower one loses it. Here the load balancer
is a `ChaosProxy` with an ``idle_timeout`` toxic, scaled down to a few hundred
milliseconds so that the example runs in about a second; the same idle period is
survived by an aligned heartbeat and not by a misaligned one.

In a real suite, give the profile the two numbers (``idle_timeout``, the
infrastructure's; ``heartbeat_interval``, the client's): every client then pings at that
interval, and the plugin warns at start-up when it would not beat the timeout.
"""

import asyncio

import pytest

from pytest_ws_resilience.errors import WsConnectionClosedError

pytestmark = [pytest.mark.asyncio, pytest.mark.websocket_resilience]

#: The load balancer's idle timeout, scaled down (Cloud Run's default is minutes).
IDLE_TIMEOUT_S = 0.4
#: How long both clients stay quiet: three times the idle timeout.
IDLE_PERIOD_S = 1.2


async def test_a_heartbeat_slower_than_the_idle_timeout_is_cut(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    proxy.add_toxic("idle_timeout", timeout=IDLE_TIMEOUT_S * 1000)  # ms, as Toxiproxy
    # The bug: a keepalive every 0.8 s behind a 0.4 s idle timeout.
    client = await ws_client_factory(url=proxy.url, ping_interval=2 * IDLE_TIMEOUT_S)

    await asyncio.sleep(IDLE_PERIOD_S)  # the user reads, thinks, types: no traffic

    with pytest.raises(WsConnectionClosedError):
        await client.ping()  # the keepalive check after a long idle
    assert client.close_code == 1006  # dropped without a close frame, as a load balancer does


async def test_a_heartbeat_under_the_idle_timeout_survives_the_same_idle(
    ws_chaos, ws_client_factory
):
    proxy = await ws_chaos()
    proxy.add_toxic("idle_timeout", timeout=IDLE_TIMEOUT_S * 1000)
    # The fix: ping well under the idle timeout (at most 80% of it; a quarter here, so
    # that a busy CI machine's stalls do not make the example flaky).
    client = await ws_client_factory(url=proxy.url, ping_interval=IDLE_TIMEOUT_S / 4)

    await asyncio.sleep(IDLE_PERIOD_S)

    await client.ping()  # still open: the pings kept the connection alive
    assert client.connected
    await client.send_json({"type": "ping", "n": 1})
    assert (await client.expect(type="pong"))["n"] == 1
