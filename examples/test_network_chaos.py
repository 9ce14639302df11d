"""Network chaos between client and server: the seed test plan's scenarios, for real.

Every client here connects through a `ChaosProxy` (``ws_chaos()``) in front of the
server under test. Random faults are seeded: a failing test prints the seed to replay
it with ``--ws-chaos-seed``.
"""

import time

import pytest

from pytest_ws_resilience.errors import WsConnectionClosedError

pytestmark = [pytest.mark.asyncio, pytest.mark.websocket_resilience]


async def round_trip(client, **fields) -> float:
    started = time.perf_counter()
    await client.send_json({"type": "ping", **fields})
    await client.expect(type="pong", **fields)
    return time.perf_counter() - started


@pytest.mark.parametrize("latency_ms", [10, 200, 2000])
async def test_high_latency_does_not_time_out(ws_chaos, ws_client_factory, latency_ms):
    proxy = await ws_chaos()
    proxy.add_toxic("latency", stream="both", latency=latency_ms // 2)
    # The handshake and every frame now take latency_ms per round trip; the local
    # profile's recv timeout (10 s) leaves room for it, a 2 s one would not.
    client = await ws_client_factory(url=proxy.url)

    elapsed = await round_trip(client, probe=1)

    assert elapsed >= latency_ms / 1000


async def test_jitter_varies_round_trips_but_keeps_order(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    proxy.add_toxic("latency", latency=40, jitter=30)
    client = await ws_client_factory(url=proxy.url)

    for n in range(10):
        await client.send_json({"type": "ping", "n": n})
    pongs = [await client.expect(type="pong") for _ in range(10)]

    assert [p["n"] for p in pongs] == list(range(10))  # TCP order survives jitter


async def test_ten_percent_message_loss_shows_as_seq_gaps(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    # Lose 10% of the server's messages, except the greeting and the final pong.
    proxy.add_message_fault(
        "drop", toxicity=0.1, select=lambda m: m.index > 1 and b"last" not in m.payload
    )
    client = await ws_client_factory(url=proxy.url)

    for n in range(200):
        await client.send_json({"type": "ping", "n": n})
    await client.send_json({"type": "ping", "last": True})
    await client.expect(type="pong", last=True)

    seqs = [e["seq"] for e in client.events if "seq" in e]
    missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
    dropped = [d for d in proxy.decisions if d.outcome == "dropped"]
    assert len(missing) == len(dropped) > 0  # every loss is seen, as a gap in seq


@pytest.mark.parametrize("kbps", [56, 256, 1024])
async def test_slow_links_still_deliver_a_large_message(ws_chaos, ws_client_factory, kbps):
    proxy = await ws_chaos()
    proxy.add_toxic("bandwidth", rate=kbps / 8)  # KB/s, as Toxiproxy
    client = await ws_client_factory(url=proxy.url)

    payload = "x" * 8_000
    elapsed = await round_trip(client, payload=payload)

    assert elapsed >= len(payload) / (kbps / 8 * 1000) * 0.8


async def test_connection_dropped_mid_receive(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    proxy.add_message_fault("cut_after", count=3)  # connection_established + 2 events
    client = await ws_client_factory(url=proxy.url)

    await client.send_json({"type": "user_message", "text": "a long answer please"})
    with pytest.raises(WsConnectionClosedError):
        await client.expect(type="agent_completed")
    assert client.close_code == 1006  # dropped: no close frame


async def test_connection_dropped_mid_send(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    client = await ws_client_factory(url=proxy.url)
    proxy.add_message_fault("abort", direction="upstream", select=lambda m: b"doomed" in m.payload)

    await client.send_json({"type": "user_message", "text": "doomed message"})
    with pytest.raises(WsConnectionClosedError):
        await client.expect(type="agent_started")


async def test_recovery_after_a_drop_within_five_seconds(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    client = await ws_client_factory(url=proxy.url)
    await client.send_json({"type": "user_message", "text": "remember me", "thread_id": "t-1"})
    await client.expect(type="agent_completed")

    async with proxy.outage():  # every live connection is cut, new ones refused
        with pytest.raises(WsConnectionClosedError):
            await client.expect(type="never", timeout=2)

    started = time.perf_counter()
    await client.reconnect()
    await client.send_json({"type": "get_history", "thread_id": "t-1"})
    history = await client.expect(type="history")
    assert time.perf_counter() - started < 5
    assert any("remember me" in m["text"] for m in history["messages"])


async def test_a_3g_network(ws_chaos, ws_client_factory):
    proxy = await ws_chaos(preset="3g")
    client = await ws_client_factory(url=proxy.url)

    await client.send_json({"type": "user_message", "text": "on the train"})
    await client.expect(type="agent_completed")
    assert [t.kind for t in proxy.toxics].count("latency") == 2
