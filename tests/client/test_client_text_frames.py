"""Waiting beyond JSON over real loopback sockets: a text protocol ("hello" ->
"answer", ``JOIN:room``), a JSON protocol without a ``type`` field (``action``) and
binary frames, against a real websockets server. ``expect_text``, ``expect_bytes``,
``expect(predicate)``, key functions for sequences and contracts, and timeouts that
speak the protocol's terms. What counts as a match is unit-tested in
``test_client_matching.py``."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator

import pytest
from json_depth import decoder_depth_limit, nested_lists
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.errors import ContractViolationError, WsTimeoutError

pytestmark = pytest.mark.asyncio

#: A wait that must fail: short, since the server has already answered everything.
MISS_S = 0.3
FAKE_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


async def _answer(connection: ServerConnection, message: str | bytes) -> None:
    """The protocol: bytes echo reversed; text commands; JSON objects by ``action``."""
    if isinstance(message, bytes):
        await connection.send(message[::-1])
    elif message == "hello":
        await connection.send("answer")
    elif message.startswith("JOIN:"):
        room = message.removeprefix("JOIN:")
        for text in (f"JOINED:{room}", f"MSG:{room}:welcome", f"LEFT:{room}"):
            await connection.send(text)
    elif message.startswith("{"):
        request = json.loads(message)
        await connection.send(json.dumps({"action": "ack", "of": request.get("action")}))
        await connection.send(json.dumps({"action": "done", "of": request.get("action")}))
    else:  # anything else is echoed, as text
        await connection.send(message)


@contextlib.asynccontextmanager
async def text_server() -> AsyncIterator[str]:
    async def handler(connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                await _answer(connection, message)

    server = await serve(handler, "127.0.0.1", 0, close_timeout=0.5)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def connected() -> AsyncIterator[WsClient]:
    async with text_server() as url, WsClient(url, recv_timeout=5) as client:
        yield client


async def test_expect_text_takes_the_exact_text_and_returns_it() -> None:
    async with connected() as client:
        await client.send_text("hello")
        assert await client.expect_text("answer") == "answer"


async def test_expect_text_searches_a_regex_and_accepts_a_predicate() -> None:
    async with connected() as client:
        await client.send_text("JOIN:lobby")
        assert await client.expect_text(re.compile(r"^MSG:(\w+):")) == "MSG:lobby:welcome"
        await client.send_text("JOIN:kitchen")
        found = await client.expect_text(lambda t: t.startswith("LEFT:") and "kitchen" in t)
        assert found == "LEFT:kitchen"


async def test_expect_text_skips_and_consumes_frames_before_the_match() -> None:
    async with connected() as client:
        await client.send_text("JOIN:lobby")
        await client.expect_text("LEFT:lobby")
        with pytest.raises(WsTimeoutError):  # JOINED came before: consumed, not matched
            await client.expect_text("JOINED:lobby", timeout=MISS_S)


async def test_expect_bytes_takes_exact_bytes_or_a_predicate() -> None:
    async with connected() as client:
        await client.send_bytes(b"\x01\x02\x03")
        assert await client.expect_bytes(b"\x03\x02\x01") == b"\x03\x02\x01"
        await client.send_bytes(b"abc")
        assert await client.expect_bytes(lambda b: b.endswith(b"a")) == b"cba"


async def test_a_text_frame_never_matches_expect_bytes_nor_bytes_expect_text() -> None:
    async with connected() as client:
        await client.send_text("cba")
        with pytest.raises(WsTimeoutError, match="binary frame equal to b'cba'"):
            await client.expect_bytes(b"cba", timeout=MISS_S)
        await client.send_bytes(b"olleh")
        with pytest.raises(WsTimeoutError, match="text frame equal to 'hello'"):
            await client.expect_text("hello", timeout=MISS_S)


async def test_expect_with_a_predicate_matches_any_frame() -> None:
    async with connected() as client:
        await client.send_text("hello")
        assert await client.expect(lambda f: f == "answer") == "answer"
        await client.send_json({"action": "join"})
        done = await client.expect(lambda f: f["action"] == "done")  # text frames: no match
        assert done == {"action": "done", "of": "join"}
        await client.send_bytes(b"ab")
        assert await client.expect(lambda f: isinstance(f, bytes)) == b"ba"


async def test_expect_with_a_predicate_and_fields_needs_both() -> None:
    async with connected() as client:
        await client.send_json({"action": "join"})
        found = await client.expect(lambda f: f.get("of") == "join", action="done")
        assert found["action"] == "done"


async def test_expect_by_type_and_fields_still_works_and_ignores_text() -> None:
    async with connected() as client:
        await client.send_text("hello")
        await client.send_json({"action": "join"})
        assert await client.expect(action="ack") == {"action": "ack", "of": "join"}


async def test_text_frames_are_logged_and_events_stay_json_only() -> None:
    async with connected() as client:
        await client.send_text("hello")
        await client.expect_text("answer")
        await client.send_json({"action": "join"})
        await client.expect(action="done")
        assert client.events == [{"action": "ack", "of": "join"}, {"action": "done", "of": "join"}]
        assert client.log.records[0].raw == "answer"
        assert client.log.frames[0] == "answer"
        assert client.log.records[0].is_text and client.log.records[0].data is None


async def test_a_text_timeout_names_the_wait_and_the_frames_that_came() -> None:
    async with connected() as client:
        await client.send_text("hello")
        await client.send_text(f"my token is {FAKE_JWT}")
        with pytest.raises(WsTimeoutError) as caught:
            await client.expect_text("bye", timeout=MISS_S)
    message = str(caught.value)
    assert "no text frame equal to 'bye' within recv_timeout=" in message
    assert "last 2 of 2: answer | my token is " in message
    assert FAKE_JWT not in message
    assert "None" not in message


async def test_expect_sequence_with_a_key_names_text_events() -> None:
    async with connected() as client:
        await client.send_text("JOIN:lobby")
        frames = await client.expect_sequence(
            ["JOINED", "LEFT"], key=lambda t: t.split(":")[0], timeout=5
        )
        assert frames == ["JOINED:lobby", "LEFT:lobby"]


async def test_a_sequence_timeout_speaks_the_key_s_names_never_none() -> None:
    async with connected() as client:
        await client.send_json({"action": "join"})
        with pytest.raises(WsTimeoutError) as caught:
            await client.expect_sequence(
                ["ack", "kicked"], key=lambda f: f.get("action"), timeout=MISS_S
            )
    message = str(caught.value)
    assert "sequence step 2/2 event 'kicked' (named by <lambda>) not seen" in message
    assert "matched before it: [ack]" in message
    assert "last 2 of 2: ack | done" in message
    assert "None" not in message


async def test_a_sequence_of_field_mappings_without_type_names_frames_by_text() -> None:
    async with connected() as client:
        await client.send_json({"action": "join"})
        with pytest.raises(WsTimeoutError) as caught:
            await client.expect_sequence([{"action": "ack"}, {"action": "nope"}], timeout=MISS_S)
    message = str(caught.value)
    assert 'matched before it: [{"action": "ack", "of": "join"}]' in message
    assert "[None]" not in message


async def test_a_contract_with_a_key_checks_a_text_protocol() -> None:
    contract = EventContract(["JOINED", "MSG", "LEFT"], key=lambda t: t.split(":")[0])
    async with connected() as client:
        await client.send_text("JOIN:lobby")
        result = await client.expect_contract(contract, timeout=5)
        assert [e.event for e in result.observed] == [
            "JOINED:lobby",
            "MSG:lobby:welcome",
            "LEFT:lobby",
        ]


async def test_a_broken_text_contract_says_which_event_in_the_protocol_s_names() -> None:
    contract = EventContract(["JOINED", "KICKED", "LEFT"], key=lambda t: t.split(":")[0])
    async with connected() as client:
        await client.send_text("JOIN:lobby")
        with pytest.raises(ContractViolationError) as caught:
            await client.expect_contract(contract, timeout=5)
    assert "KICKED    (missing)" in str(caught.value)
    assert "not seen before the terminal LEFT" in str(caught.value)


async def test_a_bad_match_is_a_type_error_before_any_wait() -> None:
    async with connected() as client:
        with pytest.raises(TypeError, match="expect_text\\(\\) takes a str"):
            await client.expect_text(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="use expect_text for text frames"):
            await client.expect_bytes("abc")  # type: ignore[arg-type]


async def test_json_nested_past_the_decoder_is_kept_as_text_and_the_connection_stays() -> None:
    # Valid JSON deeper than this Python's json.loads goes: the receiver raised
    # RecursionError, and the test saw a lost connection (1006) the server never caused.
    deep = nested_lists(2 * decoder_depth_limit())
    async with connected() as client:
        await client.send_text(deep)
        assert await client.expect_text(deep) == deep
        await client.send_text("hello")
        assert await client.expect_text("answer") == "answer"
        assert not client.closed
        [record] = [r for r in client.log.records if r.raw == deep]
        assert record.data is None
