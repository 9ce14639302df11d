"""Frame faults: does the server read WebSocket frames the way RFC 6455 says?

A proxy that knows frames (``ws_chaos()``) rebuilds chosen messages on their way: split
into continuation frames with pings between them, broken on purpose (invalid UTF-8, a
reserved bit, an unknown opcode, an unmasked client frame), or grown past the server's
size limit. A well-behaved server assembles the fragments, answers the pings, closes a
broken connection with the right code (1007, 1002, 1009) and goes on serving everyone
else. The embedded reference server does; run these against yours with ``--ws-url``.
"""

import pytest

from pytest_ws_resilience.errors import WsConnectionClosedError

pytestmark = [pytest.mark.asyncio, pytest.mark.websocket_resilience]


async def test_invalid_utf8_is_closed_with_1007_and_the_server_survives(
    ws_chaos, ws_client_factory
):
    proxy = await ws_chaos()
    # The client's first message goes out as text that is not UTF-8.
    proxy.add_message_fault(
        "corrupt", direction="upstream", select=1, how="invalid_utf8", expect_fire=True
    )
    client = await ws_client_factory(url=proxy.url)

    await client.send_json({"type": "ping", "n": 1})
    with pytest.raises(WsConnectionClosedError) as closed:
        await client.expect(type="pong")
    assert closed.value.closed_by == "server"
    assert client.close_code == 1007  # the server's own close frame, relayed as it was

    fresh = await ws_client_factory()  # straight to the server: it still serves
    await fresh.send_json({"type": "ping", "n": 2})
    assert (await fresh.expect(type="pong"))["n"] == 2


async def test_a_message_in_three_frames_with_pings_between_is_answered(
    ws_chaos, ws_client_factory
):
    proxy = await ws_chaos()
    proxy.add_message_fault(
        "fragment", direction="upstream", parts=3, ping=True, name="split", expect_fire=True
    )
    client = await ws_client_factory(url=proxy.url)

    await client.send_json({"type": "ping", "n": 1, "text": "é" * 40})
    assert (await client.expect(type="pong"))["text"] == "é" * 40
    answered = [d for d in proxy.decisions if d.outcome == "pong answered"]
    assert len(answered) == 2  # both pings between the fragments got their pong


async def test_a_message_past_the_size_limit_is_closed_with_1009(
    ws_chaos, ws_client_factory, ws_settings
):
    proxy = await ws_chaos()
    proxy.add_message_fault(
        "oversize", direction="upstream", select=1, limit=ws_settings.max_message_size
    )
    client = await ws_client_factory(url=proxy.url)

    await client.send_json({"type": "ping", "n": 1})
    with pytest.raises(WsConnectionClosedError):
        await client.expect(type="pong")
    assert client.close_code == 1009


async def test_the_client_sends_one_message_as_several_frames(ws_client_factory):
    client = await ws_client_factory()

    await client.send_fragments(['{"type": "ping", ', '"n": 7', "}"])
    assert (await client.expect(type="pong"))["n"] == 7
    assert client.metrics.sent == 1  # one message, however many frames
