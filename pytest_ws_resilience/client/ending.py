"""How a client's connection ends, on the asyncio side: the connection class that says
at once when websockets fails the connection, and the `CloseCause` read off websockets.

When a server breaks the protocol (a frame over the size limit, invalid UTF-8, a bad
close frame, a masked frame, a reserved opcode), websockets sends its close frame (1002,
1007, 1009) and then, as RFC 6455 asks of a client, waits up to the close timeout for
the server to close TCP. Until then the connection is not lost, so a client whose
waits learned of the end only from ``connection_lost`` would time out first, naming what it waited
for instead of what happened. `FailFastConnection` tells the client as soon as the
protocol has failed; `close_cause` turns websockets' close frames and error into the
plain `CloseCause` the errors print. `await_close` waits for the end itself
(``WsClient.expect_close``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from pytest_ws_resilience.client.close_cause import CloseCause, CloseFrame
from pytest_ws_resilience.client.close_codes import expected_close
from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.client.matching import recent_events
from pytest_ws_resilience.client.waiting import EventWaiter
from pytest_ws_resilience.client.websockets_versions import connection_failure
from pytest_ws_resilience.config.timeouts import TimeoutValue, resolve_timeout
from pytest_ws_resilience.errors import WsConnectionClosedError

__all__ = ["FailFastConnection", "await_close", "close_cause", "failed"]


class FailFastConnection(ClientConnection):
    """websockets' client connection, calling `on_failure` once with the `CloseCause`,
    as soon as websockets failed the connection (before the closing handshake ends and
    the TCP connection is lost).

    websockets fails a connection in its parser (a frame over the limit, a bad close
    frame, a masked frame, a reserved opcode) or in ``recv()`` (invalid UTF-8, too many
    fragments), and either way then writes its close frame: `send_data` is the one place
    both pass through.
    """

    #: Set by the client once it holds the connection; called at most once.
    on_failure: Callable[[CloseCause], None] | None = None

    def send_data(self) -> None:
        # websockets calls this for every chunk it reads and every frame it writes: the
        # base class named (no super() object), and a look further only once a close
        # frame went out or the parser failed.
        ClientConnection.send_data(self)
        protocol = self.protocol
        if (
            protocol.close_sent is not None or protocol.parser_exc is not None
        ) and self.on_failure is not None:
            self.tell_failure()

    def tell_failure(self) -> None:
        """Call `on_failure` if the connection failed and nobody was told yet."""
        callback = self.on_failure
        if callback is not None and failed(self):
            self.on_failure = None
            callback(close_cause(self))


def failed(conn: ClientConnection) -> bool:
    """websockets failed ``conn``: its parser raised, or it sent a close frame with an
    error code (not 1000 or 1001) before receiving the server's."""
    protocol = conn.protocol
    sent = protocol.close_sent
    return protocol.parser_exc is not None or (
        sent is not None and sent.code not in (1000, 1001) and protocol.close_rcvd is None
    )


# A close code in words, as websockets puts them ("1000 (OK)"), worded once per code:
# every connection's end reads one or two of them.
_CODE_NAMES: dict[int, str] = {}


def _frame(close: Close | None) -> CloseFrame | None:
    if close is None:
        return None
    code = close.code
    name = _CODE_NAMES.get(code)
    if name is None:
        name = _CODE_NAMES[code] = str(Close(code, ""))
    return CloseFrame(code, name, close.reason)


def close_cause(conn: ClientConnection, error: BaseException | None = None) -> CloseCause:
    """How ``conn`` ended (or is ending): its close frames, and the error that failed it.

    Args:
        conn: the connection.
        error: what failed the receiving (a ``ConnectionClosed`` whose ``__cause__``
            is the protocol or network error, or any other exception), if known.
    """
    protocol = conn.protocol
    failure: BaseException | None = protocol.parser_exc or connection_failure(conn)
    if failure is None and error is not None:
        failure = error.__cause__ or (None if _is_closed(error) else error)
    return CloseCause(
        received=_frame(protocol.close_rcvd),
        sent=_frame(protocol.close_sent),
        received_first=bool(protocol.close_rcvd_then_sent),
        error=_message(failure),
    )


def _is_closed(error: BaseException) -> bool:
    return isinstance(error, ConnectionClosed)


def _message(error: BaseException | None) -> str | None:
    if error is None:
        return None
    text = str(error) or type(error).__name__
    cause = error.__cause__  # e.g. "invalid opcode" from "3 is not a valid Opcode"
    return f"{text} ({cause})" if cause is not None and str(cause) else text


async def await_close(
    waiter: EventWaiter,
    log: EventLog,
    code: int | Collection[int] | None,
    within: float | None,
    recv: TimeoutValue,
    label: str,
) -> int:
    """``WsClient.expect_close``: wait (bounded) until the connection ``waiter`` follows
    (its frames in ``log``) has ended, and return its close code, checked against
    ``code`` (one code, a collection of them, None: any). A connection already ended,
    by either side, is judged at once. The code is the server's, 1006 when none came
    (the connection was lost).

    The wait is the waiter's own (woken by the receiver's messages and the end, and by one
    shared watchdog at the deadline: ``within`` seconds, else ``recv``, the client's
    recv timeout), looking for no frame: the end is what it waits for, and the frames
    it passes stay unconsumed for later ``expect`` calls.

    Raises:
        ValueError: a ``code`` that is not a close code (1000-4999) or a collection of
            them, or a ``within`` that is not a number of seconds in bounds.
        WsTimeoutError: still open after the bound (`ExpectedClose.still_open`: ``still
            open after 2.0 s (explicit); expected close 4001``).
        WsConnectionClosedError: closed with a code not expected: both codes, who
            closed and the reason, redacted (`ExpectedClose.mismatch`).
        WsResilienceError: the client never connected.
    """
    expected = expected_close(code)
    bound = resolve_timeout(recv, explicit=within, name="expect_close(within=)")
    if not waiter.ended:
        deadline = asyncio.get_running_loop().time() + bound.value
        try:
            await waiter.watch(_no_frame, deadline, expected.describe, consume=False)
        except WsConnectionClosedError:
            pass  # the end: judged below from the waiter's cause, not this wording
        else:
            raise expected.still_open(label, _seconds(bound), recent_events(log))
    return expected.judge(label, waiter.close_code, waiter.cause)


def _seconds(bound: TimeoutValue) -> str:
    """``2.0 s (explicit)``, ``0.25 s (profile local)``."""
    value = bound.value
    text = f"{value:.1f}" if value == round(value, 1) else f"{value:g}"
    return f"{text} s ({bound.source})"


def _no_frame(record: LogRecord) -> bool:
    return False
