"""Receiving without a reader task: websockets hands each message to the client as it
parses it.

websockets' asyncio connection parses frames in its protocol callback (sans-I/O: the
protocol turns bytes into events, the connection's ``process_event`` gets each one) and
queues data frames for ``recv()``. A client that read them with a task of its own paid
for a second hop on every message (the queue, a future, a task step, a turn of the
loop): counted with cachegrind, such a relay task adds about 120,000 instructions to a
raw connection that connects, sends a ping, reads its pong and closes, and taking the
client's out saved it 91,000. `ReceivingConnection` takes each message where websockets
parses it instead, and hands it to the client's `Receiver` there and then: the event
log, the counters, the greeting, the observers and the waits see it in the same
callback.

What websockets' ``recv()`` did for a message is done here, as it does it: fragments are
joined (at most ``MAX_FRAGMENTS``, else 1009), text is decoded (invalid UTF-8 fails the
connection with 1007), and the end of the connection is told once (``connection_lost``).
Messages that came with the handshake response, before the client took the connection,
wait for `ReceivingConnection.attach`, in order.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from websockets.frames import CloseCode, Frame, Opcode

from pytest_ws_resilience.client.ending import FailFastConnection, close_cause
from pytest_ws_resilience.client.logs import client_logger
from pytest_ws_resilience.client.metrics import payload_size
from pytest_ws_resilience.client.websockets_versions import set_connection_failure

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.eventlog import EventLog
    from pytest_ws_resilience.client.metrics import ClientMetrics
    from pytest_ws_resilience.client.observers import Observers
    from pytest_ws_resilience.client.waiting import EventWaiter

__all__ = ["MAX_FRAGMENTS", "Receiver", "ReceivingConnection"]

#: The most frames of one message, as websockets' own limit (and its variable) says.
MAX_FRAGMENTS = int(os.environ.get("WEBSOCKETS_MAX_FRAGMENTS", "4096"))

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT


class Receiver:
    """What a client does with each message of one connection, and at its end.

    One per connection (the greeting is a connection's first message). Made by the
    client when a connection opens (`WsClient`), handed to `ReceivingConnection.attach`.
    """

    __slots__ = ("_client", "_first", "_log", "_metrics", "_on_first", "_waiter", "_watchers")

    def __init__(
        self,
        client: WsClient,
        log: EventLog,
        metrics: ClientMetrics,
        waiter: EventWaiter,
        watchers: Observers,
        on_first_frame: Callable[[Any], None],
    ) -> None:
        self._client = client
        self._log = log
        self._metrics = metrics
        self._waiter = waiter
        self._watchers = watchers
        self._on_first = on_first_frame
        self._first = True

    @property
    def name(self) -> str:
        """The client's name, for logs."""
        return self._client.name

    def received(self, message: str | bytes) -> None:
        """One whole message: logged, counted, read for the greeting (the first),
        shown to the observers, and every wait woken."""
        record = self._log.append(message)
        metrics = self._metrics
        metrics.received += 1
        metrics.bytes_received += payload_size(message)
        if self._first:
            self._first = False
            self._on_first(record.data)
        self._watchers.received(self._client, record)
        self._waiter.wake()

    def ended(self, conn: ReceivingConnection, error: BaseException | None) -> None:
        """The connection is over: how it ended goes to the counters, the observers and
        the waits (``error``: what failed the receiving, if it did)."""
        cause = close_cause(conn, error)
        self._metrics.closed(time.time(), cause.code, cause.closed_by)
        client = self._client
        self._watchers.closed(client, conn.close_code, conn.close_reason or "")
        self._waiter.end(conn.close_code, cause)
        client_logger.debug("%s: connection closed, code %s", client.name, conn.close_code)


class ReceivingConnection(FailFastConnection):
    """websockets' client connection that hands each message to its `Receiver` as it is
    parsed, and its end once, instead of queueing them for ``recv()``.

    ``recv()`` on it gets nothing: the client receives everything (as its reader task,
    before it, did).
    Control frames (ping, pong, close) go to websockets as ever.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receiver: Receiver | None = None
        #: Messages parsed before `attach` (those that came with the handshake).
        self._early: list[str | bytes] = []
        self._parts: list[bytes | bytearray | memoryview] = []
        self._text = False
        self._lost = False
        #: What failed the receiving (a decode error, or a bug in the receiver).
        self._error: BaseException | None = None

    @property
    def ended(self) -> bool:
        """websockets has seen the end of the TCP connection (and the receiver was told,
        if one was attached)."""
        return self._lost

    def attach(self, receiver: Receiver) -> None:
        """From now on, messages go to ``receiver``; those that came first go now, in
        order, and then the end, if the connection already ended."""
        self._receiver = receiver
        early, self._early = self._early, []
        for message in early:
            self._deliver(message)
        if self._lost:
            self._tell_end()

    def process_event(self, event: Any) -> None:
        # The first event is the handshake response (websockets' own); then frames.
        if self.response is not None:
            opcode = event.opcode
            if opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                self._frame(event)
                return
        super().process_event(event)

    def _frame(self, frame: Frame) -> None:
        """One data frame: a message when it is the last of its fragments."""
        if frame.opcode is _CONT:
            if len(self._parts) >= MAX_FRAGMENTS:
                self._fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments", None)
                return
            self._parts.append(frame.data)
        else:
            self._parts = [frame.data]
            self._text = frame.opcode is _TEXT
        if not frame.fin:
            return
        parts, self._parts = self._parts, []
        data = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
        if self._text:
            try:
                message: str | bytes = data.decode()
            except UnicodeDecodeError as exc:
                self._fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}", exc)
                return
        else:
            message = data
        if self._receiver is None:
            self._early.append(message)
        else:
            self._deliver(message)

    def _deliver(self, message: str | bytes) -> None:
        receiver = self._receiver
        assert receiver is not None
        if self._error is not None:
            return  # the receiving failed: the connection is being aborted
        try:
            receiver.received(message)
        except Exception as exc:  # a bug here must not vanish into asyncio's handler
            self._error = exc
            client_logger.exception(
                "%s: receiving failed; treating the connection as closed", receiver.name
            )
            self.transport.abort()

    def _fail(self, code: CloseCode, reason: str, exc: BaseException | None) -> None:
        """Fail the connection as websockets' ``recv()`` does on a message it cannot
        return: the close frame now, and the TCP connection aborted if the server has
        not closed it within the close timeout."""
        if exc is not None:
            set_connection_failure(self, exc)
        self.protocol.fail(code, reason)
        self.send_data()
        if self.close_timeout is not None:
            self.loop.call_later(self.close_timeout, self._abort_unless_lost)

    def _abort_unless_lost(self) -> None:
        if not self._lost:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._lost = True
        if self._receiver is not None:
            self._tell_end()

    def _tell_end(self) -> None:
        receiver, self._receiver = self._receiver, None  # no cycle outlives the end
        assert receiver is not None
        receiver.ended(self, self._error)
