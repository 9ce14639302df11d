"""A WebSocket server with a real bug of the frame-fault class: it ignores FIN.

Its frame parser is written by hand on raw asyncio streams, as a quick service might
be, and it treats every data frame as a whole message: the first fragment of a
fragmented message (``{"type": "pi``) goes straight to ``json.loads``, which raises,
and the handler dies with the connection (no close frame: the client sees 1006). With
one frame per message, which is what every ordinary client sends, it works: only a
fragmented message finds the bug. It answers ``{"type": "ping", ...}`` with
``{"type": "pong", ...}`` (the other fields echoed), as the reference server does, and
answers WebSocket pings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["WholeFrameServer", "whole_frame_server"]

HOST = "127.0.0.1"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Bound of every read and of stopping the server.
TIMEOUT_S = 5.0


@dataclass
class WholeFrameServer:
    """The running server: its URL, and the errors that killed its connections."""

    url: str = ""
    errors: list[str] = field(default_factory=list)
    connections: int = 0


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, unmasked payload) of the next frame. The bug: FIN is never looked at."""
    head1, head2 = await reader.readexactly(2)
    length = head2 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if head2 & 0x80 else b"\x00" * 4
    data = await reader.readexactly(length)
    return head1 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    key = b""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def _serve(
    server: WholeFrameServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    server.connections += 1
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await _handshake(reader, writer)
        while True:
            opcode, payload = await _read_frame(reader)
            if opcode == 0x8:  # close: answer it and stop
                writer.write(_frame(0x8, payload[:2]))
                await writer.drain()
                break
            if opcode == 0x9:  # ping
                writer.write(_frame(0xA, payload))
            elif opcode in (0x0, 0x1, 0x2):  # every data frame taken as a whole message
                message = json.loads(payload)
                if message.get("type") == "ping":
                    writer.write(_frame(0x1, json.dumps({**message, "type": "pong"}).encode()))
            await writer.drain()
        writer.close()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.transport.abort()
    except Exception as exc:  # the bug: the handler dies, and its connection with it
        server.errors.append(f"{type(exc).__name__}: {exc}")
        writer.transport.abort()


@contextlib.asynccontextmanager
async def whole_frame_server() -> AsyncIterator[WholeFrameServer]:
    """Listen on a free loopback port until the block ends (stopping is bounded)."""
    state = WholeFrameServer()
    listener = await asyncio.start_server(
        lambda r, w: _serve(state, r, w), HOST, 0, reuse_address=True
    )
    port = listener.sockets[0].getsockname()[1]
    state.url = f"ws://{HOST}:{port}/"
    try:
        yield state
    finally:
        listener.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TIMEOUT_S):
                await listener.wait_closed()
