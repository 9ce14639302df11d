"""One storm connection's exchange: messages sent back to back, their replies matched
as frames arrive (in any order) and timed. The asyncio side of `Storm`'s measurements.

The server's greeting (a frame of type ``settings.greeting``) is never a reply, nor the
first message after a send: it is sent at open whatever the client says, and is often
read only after the first send, so counting it would time a round trip that never
happened (and pass a storm against a server that answers nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.client.greeting import read_greeting
from pytest_ws_resilience.client.matching import matches
from pytest_ws_resilience.errors import WsConnectionClosedError, WsTimeoutError

__all__ = ["Exchange", "send_message"]


async def send_message(client: WsClient, message: Any) -> None:
    """Send ``message`` as text, bytes or JSON, by its type."""
    if isinstance(message, str):
        await client.send_text(message)
    elif isinstance(message, (bytes, bytearray, memoryview)):
        await client.send_bytes(bytes(message))
    else:
        await client.send_json(message)


class Exchange:
    """Messages sent on one client and their replies, timed by a receive hook.

    Replies are matched by a receive hook as frames arrive, in any order, so a server
    answering out of order is not mistaken for one losing messages.

    Args:
        greeting: the ``type`` of the server's greeting (``settings.greeting``): such a
            frame is never taken for a reply. None: the server sends none.
    """

    def __init__(self, greeting: str | None = None) -> None:
        self._greeting = greeting
        self.pending: list[tuple[Mapping[str, Any] | None, float]] = []
        self.round_trips_s: list[float] = []
        self.first_sent_at: float | None = None
        self.first_frame_at: float | None = None
        self.sent = 0
        self._all_sent = False
        self._done = asyncio.Event()

    def on_frame(self, record: LogRecord) -> None:
        at = record.received_at
        if self.first_sent_at is None:
            return
        if self._greeting is not None and read_greeting(record.data, self._greeting) is not None:
            return  # sent at open, whatever was asked: not an answer
        if self.first_frame_at is None and at >= self.first_sent_at:
            self.first_frame_at = at
        for position, (wanted, sent_at) in enumerate(self.pending):
            if wanted is None or (record.data is not None and matches(record.data, wanted)):
                self.round_trips_s.append(at - sent_at)
                del self.pending[position]
                break
        if self._all_sent and not self.pending:
            self._done.set()

    async def send_all(
        self, client: WsClient, messages: Sequence[Any], replies: Sequence[Mapping[str, Any] | None]
    ) -> None:
        """Write every message back to back; each reply is awaited from its send on."""
        for message, wanted in zip(messages, replies, strict=True):
            sent_at = time.monotonic()  # before the write: a reply cannot precede it
            if self.first_sent_at is None:
                self.first_sent_at = sent_at
            self.pending.append((wanted, sent_at))
            await send_message(client, message)
            self.sent += 1
        self._all_sent = True
        if not self.pending:
            self._done.set()

    async def wait(self, client: WsClient, bound: float) -> None:
        """Return once every reply came.

        Raises:
            WsTimeoutError: replies still missing after ``bound`` seconds.
            WsConnectionClosedError: the connection closed with replies missing.
        """
        conn = client.connection
        if self._done.is_set() or conn is None:
            return
        done = asyncio.ensure_future(self._done.wait())
        closed = asyncio.ensure_future(conn.wait_closed())
        try:
            await asyncio.wait({done, closed}, timeout=bound, return_when="FIRST_COMPLETED")
        finally:
            done.cancel()
            closed.cancel()
        if self._done.is_set():
            return
        missing = (
            f"{len(self.pending)} of {self.sent} replies missing"
            if len(self.pending) < self.sent
            else f"no reply to {self.sent} message(s) (the greeting is not a reply)"
        )
        if closed.done() and not closed.cancelled():
            # Every frame that came before the close was handed over as websockets
            # parsed it (`pytest_ws_resilience.client.receiving`): none is left to wait
            # for.
            raise WsConnectionClosedError(
                f"{client.name}: connection closed (code {conn.close_code}), {missing}",
                code=conn.close_code,
            )
        raise WsTimeoutError(f"{client.name}: {missing} after recv_timeout={bound:g}s")
