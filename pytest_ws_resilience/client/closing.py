"""Closing, bounded: one connection (`WsClient.close`), and many clients at once (what
every owner of several clients, the fixtures, the pool, storms, does at its end),
each written once; and starting a closing handshake without waiting (`start_closing`),
so the peer answers while the caller does other work."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from websockets.frames import CloseCode

from pytest_ws_resilience.client.logs import client_logger
from pytest_ws_resilience.client.sending import fits_in_buffer

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.receiving import ReceivingConnection

__all__ = ["close_clients", "close_connection", "start_closing"]

#: The largest close frame payload: a code and a reason of 123 bytes (RFC 6455, 5.5).
_MAX_CLOSE_PAYLOAD = 125


async def close_connection(conn: ReceivingConnection, *, bound: float, name: str) -> None:
    """Close ``conn`` within ``bound`` seconds (else abort it); never raises for a
    connection that is already dead. Its receiver is told of the end before this
    returns: websockets' close returns once the TCP connection is lost, and an aborted
    transport reports the loss on the loop's next turn, which this waits for."""
    try:
        if _bounded_by_websockets(conn, bound):
            await conn.close()
        else:
            async with asyncio.timeout(bound):
                await conn.close()
    except TimeoutError:
        client_logger.debug("%s: close timed out after %ss, aborting", name, bound)
        conn.transport.abort()
    except Exception as exc:  # a dead socket must not fail the caller's teardown
        client_logger.debug("%s: error while closing: %s", name, exc)
        conn.transport.abort()
    if not conn.ended:
        await asyncio.sleep(0)


def _bounded_by_websockets(conn: ClientConnection, bound: float) -> bool:
    """Whether websockets' own close of ``conn`` ends within ``bound`` seconds: it waits
    for the closing handshake at most the connection's close timeout, then aborts, and
    only its write of the close frame could wait longer, when the buffer is full."""
    timeout = conn.close_timeout
    return timeout is not None and timeout <= bound and fits_in_buffer(conn, _MAX_CLOSE_PAYLOAD)


def start_closing(clients: Sequence[WsClient]) -> None:
    """Write a normal close frame (1000) on each client's open connection, now, without
    waiting: the peer's close frame and the end of the TCP connection can arrive while
    the caller does other work, and the client's `close` (always still called) then
    finds the handshake done or under way, and ends it bounded as ever.

    Synchronous, so it runs outside the event loop too: websockets' sans-I/O protocol
    makes the frame and the transport writes it at once. Skipped for a connection that
    is not open, and for one whose write buffer has no room for the frame (then the
    write could not go out at once: `close` writes it, under its timer).
    """
    for client in clients:
        conn = client.connection
        if client.connected and conn is not None and fits_in_buffer(conn, _MAX_CLOSE_PAYLOAD):
            conn.protocol.send_close(CloseCode.NORMAL_CLOSURE)
            conn.send_data()


async def close_clients(clients: Sequence[WsClient], bound: float) -> None:
    """Close ``clients`` at once; never raises, never hangs.

    Each close is bounded by its client's close timeout; with several clients, the
    whole is bounded by ``bound`` seconds too, a last line of defence: closes still
    running then are cancelled (and given a second to unwind). A connection still open
    after that is aborted, so no socket outlives the call.
    """
    if len(clients) == 1:  # the usual case (``ws_client``): no task to make and wait for
        # No timer of its own: `WsClient.close` is bounded (its close timeout, then at
        # most a second for its reader, then a cancel given a second).
        try:
            await clients[0].close()
        except Exception as exc:
            client_logger.debug("closing a client failed: %s", exc)
    elif clients:
        tasks = [asyncio.ensure_future(c.close()) for c in clients]
        _, pending = await asyncio.wait(tasks, timeout=bound)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                client_logger.debug("closing a client failed: %s", task.exception())
    for client in clients:
        conn = client.connection
        if conn is not None and not client.closed:
            conn.transport.abort()
