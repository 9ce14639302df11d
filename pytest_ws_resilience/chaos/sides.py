"""The asyncio protocols of a proxied connection's two sockets.

Each socket's protocol feeds what it reads to the lane it is the source of and passes
its flow control (pause/resume writing) to the lane that writes into it; the lanes and
the connection are in `chaos.connection`. `ClientSide` is what the proxy's listener makes
per accepted socket: it asks the proxy for a connection (`ConnectionOwner`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.connection import ConnectionOwner, ProxyConnection
    from pytest_ws_resilience.chaos.connection import _Lane as Lane

__all__ = ["ClientSide", "Side"]


class Side(asyncio.Protocol):
    """The protocol of one socket: its reads feed ``source_of``, its flow control
    pauses the lane that writes into it."""

    def __init__(self, conn: ProxyConnection, source_of: Lane, dest_of: Lane) -> None:
        self.conn = conn
        self.source_of = source_of
        self.dest_of = dest_of

    def data_received(self, data: bytes) -> None:
        self.source_of.count(len(data))
        self.source_of.data_received(data)

    def eof_received(self) -> bool:
        self.source_of.eof_received()
        return True  # keep the socket open: half-close, the other way may still talk

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.conn.closed:
            self.conn._shutdown("abort")  # only errors get here before we close

    def pause_writing(self) -> None:
        self.dest_of.pause_writing()

    def resume_writing(self) -> None:
        self.dest_of.resume_writing()


class ClientSide(Side):
    """The protocol of an accepted socket: creates the connection and opens its upstream.

    The proxy's listener makes one per accepted socket.
    """

    def __init__(self, proxy: ConnectionOwner) -> None:
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        conn = self.proxy._accepted_connection(transport)
        super().__init__(conn, conn._lanes["upstream"], conn._lanes["downstream"])

    def connection_lost(self, exc: Exception | None) -> None:
        if hasattr(self, "conn"):
            super().connection_lost(exc)
