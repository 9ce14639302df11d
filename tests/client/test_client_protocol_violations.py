"""A server that breaks the protocol: the client's waits and sends say what happened.

Each case is a real misbehaving server on loopback: an asyncio socket server that
answers the opening handshake by hand, then writes raw frames (serialised with
websockets' sans-I/O `Frame`, or raw bytes where `Frame` refuses to build them). A
pending ``expect``, a later ``expect`` and a later ``send`` must each raise
`WsConnectionClosedError` naming who closed, the close code and websockets' own message
(issue 17, item 5), never "closed (code 1006)" alone and never a timeout naming what
the wait looked for.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.errors import WsConnectionClosedError

OP_CLOSE, OP_CONT, OP_TEXT = Opcode.CLOSE, Opcode.CONT, Opcode.TEXT

#: Bound on how soon a wait must end once the server misbehaved (the client's own
#: timeouts below are far longer, so a wait that sat them out cannot pass).
PROMPT_S = 5.0
LONG_S = 60.0
MIB = 1024 * 1024
LIMIT = 5 * MIB  # the client's max_message_size in these tests
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: Opcode, data: bytes, *, fin: bool = True, mask: bool = False) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=mask)


def close_frame(payload: bytes) -> bytes:
    # Frame.serialize checks nothing about a close payload: any bytes go out as given.
    return frame(OP_CLOSE, payload)


async def huge_frame(writer: asyncio.StreamWriter) -> None:
    """A 100 MB binary frame: its header, then the first MiB of payload."""
    writer.write(bytes([0x82, 127]) + struct.pack("!Q", 100 * MIB) + b"\0" * MIB)


async def many_fragments(writer: asyncio.StreamWriter) -> None:
    """100 fragments of 1 MiB each, one text message (until the client stops reading)."""
    chunk = b"a" * MIB
    writer.write(frame(OP_TEXT, chunk, fin=False))
    for number in range(1, 100):
        if writer.is_closing():
            return
        writer.write(frame(OP_CONT, chunk, fin=number == 99))
        try:
            await writer.drain()
        except ConnectionError:
            return


def writes(data: bytes) -> Callable[[asyncio.StreamWriter], object]:
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(data)

    return write


@dataclass(frozen=True)
class Case:
    sent_code: int
    message: str  # websockets' own words, as the error must show them
    misbehave: Callable[[asyncio.StreamWriter], object]
    also: str = ""  # more of websockets' words (the error's own cause)


CASES = {
    "100 MB frame": Case(
        1009,
        "we sent 1009 (message too big): frame with 104857600 bytes exceeds limit of 5242880 bytes",
        huge_frame,
    ),
    "100 x 1 MiB fragments": Case(
        1009, "we sent 1009 (message too big): frame with", many_fragments
    ),
    "invalid UTF-8": Case(
        1007,
        "we sent 1007 (invalid frame payload data): invalid start byte at position 0",
        writes(frame(OP_TEXT, b"\xff\xfe ok")),
    ),
    "close code 999": Case(
        1002,
        "we sent 1002 (protocol error): invalid status code",
        writes(close_frame(struct.pack("!H", 999) + b"bye")),
    ),
    "close code 1005": Case(
        1002,
        "we sent 1002 (protocol error): invalid status code",
        writes(close_frame(struct.pack("!H", 1005))),
    ),
    "1-byte close payload": Case(
        1002,
        "we sent 1002 (protocol error): close frame too short",
        writes(close_frame(b"\x03")),
    ),
    "masked server frame": Case(
        1002,
        "we sent 1002 (protocol error): incorrect masking",
        writes(frame(OP_TEXT, b"hello", mask=True)),
    ),
    "reserved opcode": Case(
        1002,
        "we sent 1002 (protocol error): invalid opcode",
        writes(bytes([0x83, 0x00])),  # FIN + opcode 3: Frame cannot even build it
        also="3 is not a valid Opcode",
    ),
}


@dataclass
class MisbehavingServer:
    """Handshakes by hand; on the client's first frame, misbehaves; then either closes
    TCP when the client's close frame comes (``hang=False``) or never does."""

    misbehave: Callable[[asyncio.StreamWriter], object]
    hang: bool
    url: str = ""
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    #: The handlers, cancelled at the end: one that hangs would outlive the test's loop.
    handlers: list[asyncio.Task[Any]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if (task := asyncio.current_task()) is not None:
            self.handlers.append(task)
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID.encode()).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            writer.write(frame(OP_TEXT, b'{"type": "connection_established"}'))
            await reader.read(1)  # the client's first frame: the cue
            await self.misbehave(writer)  # type: ignore[misc]
            await writer.drain()
            if self.hang:
                await asyncio.Event().wait()  # until the test ends
            while await reader.read(65536):  # the client's close frame, then its EOF
                break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def misbehaving(case: Case, *, hang: bool) -> AsyncIterator[MisbehavingServer]:
    server = MisbehavingServer(case.misbehave, hang)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"ws://127.0.0.1:{port}/"
    try:
        yield server
    finally:
        for writer in server.writers:
            writer.transport.abort()
        listener.close()
        for task in server.handlers:
            task.cancel()
        if server.handlers:
            await asyncio.wait(server.handlers, timeout=LONG_S)


def client_for(url: str) -> WsClient:
    # Long timeouts: a wait that sat out the closing handshake or the recv timeout
    # would blow the PROMPT_S bound.
    return WsClient(
        url, auth="none", max_message_size=LIMIT, recv_timeout=LONG_S, close_timeout=LONG_S
    )


def assert_names_the_cause(err: WsConnectionClosedError, case: Case) -> None:
    text = str(err)
    assert case.message in text, text
    assert case.also in text, text
    assert err.closed_by == "client" and err.sent_code == case.sent_code, text
    assert (err.protocol_error and err.protocol_error in text) or case.message in text
    assert err.code == 1006  # no valid close frame came from the server


@pytest.mark.parametrize("hang", [True, False], ids=["server-keeps-tcp", "server-closes-tcp"])
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.asyncio
async def test_a_protocol_violation_ends_waits_and_sends_with_its_cause(
    name: str, hang: bool
) -> None:
    case = CASES[name]
    async with misbehaving(case, hang=hang) as server:
        client = await client_for(server.url).connect()
        try:
            await client.expect("connection_established", timeout=PROMPT_S)
            pending = asyncio.create_task(client.expect("never_sent"))
            await asyncio.sleep(0)  # the wait is pending before the server misbehaves
            await client.send_text("go")
            with pytest.raises(WsConnectionClosedError) as info:
                async with asyncio.timeout(PROMPT_S):
                    await pending
            assert_names_the_cause(info.value, case)
            assert "while waiting for" in str(info.value)
            assert not client.connected
            with pytest.raises(WsConnectionClosedError) as later:
                await client.expect("connection_established", timeout=PROMPT_S)
            assert_names_the_cause(later.value, case)
            with pytest.raises(WsConnectionClosedError) as sending:
                await client.send_json({"type": "ping"})
            assert_names_the_cause(sending.value, case)
            assert str(sending.value).startswith("cannot send: connection ")
        finally:
            for writer in server.writers:
                writer.transport.abort()  # the hanging server lets go: close is quick
            await client.close()


@pytest.mark.asyncio
async def test_a_server_close_names_the_server_its_code_and_reason() -> None:
    case = Case(4001, "", writes(close_frame(struct.pack("!H", 4001) + b"room closed")))
    async with misbehaving(case, hang=False) as server:
        client = await client_for(server.url).connect()
        try:
            await client.send_text("go")
            with pytest.raises(WsConnectionClosedError) as info:
                await client.expect("never_sent", timeout=PROMPT_S)
        finally:
            await client.close()
    err = info.value
    assert "the server sent 4001 (private use): room closed" in str(err)
    assert (err.code, err.reason, err.closed_by) == (4001, "room closed", "server")
    assert err.protocol_error is None
