"""Dropping a client whose event loop is not the running one, without awaiting.

A `WsClient` belongs to the loop it connected in: its transport (which hands it every
message) lives there, and awaiting its close from another loop would hang or fail. So a pool
that meets such a client (an acquire in a new test loop, a synchronous teardown) ends
it from the outside: the socket is shut down at once, so the peer sees the end now,
and the transport is aborted through its own loop when that loop can still run. This
never raises and never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient

__all__ = ["abandon"]

_logger = logging.getLogger("pytest_ws_resilience.pool")


def abandon(client: WsClient, loop: asyncio.AbstractEventLoop) -> None:
    """Best-effort close of ``client``, which belongs to ``loop``; never awaits.

    The socket is shut down at once (the peer sees the end now), then the transport is
    aborted through its own loop if that loop can still run callbacks. A closed loop
    is never touched: the socket is released directly (`_release_socket`).
    """
    conn = client.connection
    if conn is None:
        return
    transport = conn.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    if loop.is_closed():
        _release_socket(transport)
        return
    try:
        if loop.is_running():  # running elsewhere (another thread): ask it to abort
            loop.call_soon_threadsafe(transport.abort)
        else:  # idle loop: unregister now; the loop runs the rest if it ever runs again
            transport.abort()
    except Exception as exc:  # best effort only: dropping the client must never fail
        _logger.debug("could not abort %r: %s", client, exc)


def _release_socket(transport: asyncio.BaseTransport) -> None:
    """Close the socket of a transport whose event loop is closed.

    Such a transport can never run its own close (that needs its loop), so its file
    descriptor would stay open until garbage collection, which then warns "unclosed
    transport". asyncio's selector transports keep the socket in ``_sock`` and skip the
    warning once it is None, as after a normal close: do that. Other transports (e.g.
    uvloop's) are left to the collector; their peer already saw the shutdown.
    """
    raw = getattr(transport, "_sock", None)
    if isinstance(raw, socket.socket):
        raw.close()
        with contextlib.suppress(AttributeError):
            transport._sock = None  # type: ignore[attr-defined]
