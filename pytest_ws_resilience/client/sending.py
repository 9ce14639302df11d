"""Writing to an open connection, bounded: one message, or a ping and its pong.

The asyncio half of `WsClient.send_json` / ``send_text`` / ``send_bytes`` /
``send_fragments`` and `WsClient.ping`, apart from the client's bookkeeping (size
limit, observers, counters): `joined_fragments` checks the parts of one fragmented
message and joins them, so the client counts and limits it as the one message it is;
a peer that stops reading fills the buffers, so a send that could block waits for room
at most the recv timeout; a connection that closed meanwhile is reported with its close
cause, as waits report it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pytest_ws_resilience.client.close_cause import closed_error
from pytest_ws_resilience.client.ending import close_cause
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import WsTimeoutError

__all__ = ["Fragments", "fits_in_buffer", "joined_fragments", "ping_bounded", "send_bounded"]

#: The parts of one message sent as several frames: all text or all binary.
Fragments = Sequence[str] | Sequence[bytes]

# Bytes a frame adds to its payload: header (2 + 8 + 4 mask), deflate's trailer, rounded.
_FRAME_OVERHEAD = 64


def joined_fragments(parts: Fragments) -> tuple[str | bytes, list[str] | list[bytes]]:
    """The message ``parts`` make together, and the parts as websockets sends them.

    All str: a text message; all bytes-like: a binary one (each part as bytes).

    Raises:
        TypeError: ``parts`` is a str or bytes itself, or mixes text and binary parts,
            or holds something else.
        ValueError: no parts (a message needs at least its first frame).
    """
    if isinstance(parts, str | bytes | bytearray | memoryview):
        raise TypeError(
            f"send_fragments takes a list of parts, not one {type(parts).__name__}; "
            "use send_text / send_bytes for a one-frame message"
        )
    given = list(parts)
    if not given:
        raise ValueError("send_fragments needs at least one part; got an empty list")
    if all(isinstance(part, str) for part in given):
        texts = [str(part) for part in given]
        return "".join(texts), texts
    if all(isinstance(part, bytes | bytearray | memoryview) for part in given):
        blobs = [bytes(part) for part in given]  # type: ignore[arg-type]
        return b"".join(blobs), blobs
    kinds = ", ".join(sorted({type(part).__name__ for part in given}))
    raise TypeError(
        f"send_fragments parts must be all str (a text message) or all bytes (binary), got {kinds}"
    )


def fits_in_buffer(conn: ClientConnection, size: int, frames: int = 1) -> bool:
    """Whether ``frames`` frames carrying ``size`` bytes fit in ``conn``'s write buffer
    below its high-water mark: websockets then writes them without waiting for the
    peer to read (its ``drain`` returns at once), so the write needs no timer."""
    transport = conn.transport
    # Deflate can grow incompressible data a little: allow 1/32 on top of framing.
    worst_case = size + (size >> 5) + _FRAME_OVERHEAD * frames
    return transport.get_write_buffer_size() + worst_case <= transport.get_write_buffer_limits()[1]


async def send_bounded(
    conn: ClientConnection,
    message: str | bytes | list[str] | list[bytes],
    size: int,
    *,
    bound: TimeoutValue,
    name: str,
    closed_head: Callable[[], str],
) -> None:
    """Send ``message`` (``size`` bytes on the wire) on ``conn`` within ``bound``.

    Args:
        message: one message, or the parts of one message (one frame each, then
            websockets' empty final frame: `joined_fragments`).
        closed_head: makes how the error begins when the connection is closed ("cannot
            send: connection c1 to ws://... is closed"); called only then, so a send
            does not pay for redacting the URL.

    Raises:
        WsConnectionClosedError: the connection closed (with its close cause).
        WsTimeoutError: no room in the buffers within ``bound`` (the peer stopped reading).
    """
    try:
        frames = 1 if isinstance(message, str | bytes) else len(message) + 1
        if fits_in_buffer(conn, size, frames):  # the send cannot block: no timer
            await conn.send(message)
        else:
            async with asyncio.timeout(bound.value):
                await conn.send(message)
    except ConnectionClosed as exc:
        cause = close_cause(conn, exc)
        raise closed_error(f"{closed_head()} (code {cause.code})", cause, code=cause.code) from None
    except TimeoutError:
        raise WsTimeoutError(
            f"{name}: send of {size} bytes did not complete within "
            f"recv_timeout={bound} (the peer stopped reading?)"
        ) from None


async def ping_bounded(
    conn: ClientConnection, *, bound: TimeoutValue, name: str, closed_head: Callable[[], str]
) -> float:
    """A WebSocket ping round trip on ``conn`` in seconds, bounded by ``bound``.

    Raises:
        WsConnectionClosedError: the connection closed (with its close cause).
        WsTimeoutError: no pong within ``bound``.
    """
    started = time.perf_counter()
    try:
        async with asyncio.timeout(bound.value):
            pong = await conn.ping()
            await pong
    except ConnectionClosed as exc:
        cause = close_cause(conn, exc)
        raise closed_error(f"{closed_head()} (code {cause.code})", cause, code=cause.code) from exc
    except TimeoutError:
        raise WsTimeoutError(f"{name}: no pong within recv_timeout={bound}") from None
    return time.perf_counter() - started
