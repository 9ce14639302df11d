"""Why a connection ended, in words: who closed it, with which code and reason, and
websockets' own message when a protocol error or a size limit ended it.

Pure: `pytest_ws_resilience.client.ending.close_cause` reads the close frames received
and sent and the error that failed the connection off websockets' connection and its
protocol, and hands them here as plain values; the waits
(`pytest_ws_resilience.client.waiting`) and sends put `CloseCause.describe` in their
`WsConnectionClosedError`. Without it, a server that breaks the protocol (a frame over
the size limit, invalid UTF-8, a bad close code, a masked frame) shows only as "code
1006", since no valid close frame came back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pytest_ws_resilience.errors import WsConnectionClosedError
from pytest_ws_resilience.redaction import redact

__all__ = ["ABNORMAL_CLOSURE", "CloseCause", "CloseFrame", "ClosedBy", "closed_error"]

#: The code websockets reports when no close frame was received (RFC 6455, 7.1.5).
ABNORMAL_CLOSURE = 1006

#: Who ended a connection: the server's close frame came first, ours did, or neither
#: side sent one (the TCP connection was lost).
ClosedBy = Literal["server", "client", "network"]


@dataclass(slots=True)
class CloseFrame:
    """One close frame, received or sent.

    Args:
        code: the close code.
        name: the code and its meaning, as websockets words it ("1009 (message too big)").
        reason: the close reason ("" for none).

    Not frozen (read-only by convention): one is made for every connection, and a
    frozen dataclass pays a call of ``object.__setattr__`` for each field it sets.
    """

    code: int
    name: str
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}" if self.reason else self.name


@dataclass(slots=True)
class CloseCause:
    """How one connection ended.

    Args:
        received: the server's close frame, if a valid one came.
        sent: our close frame, if one went out (websockets sends one when it fails the
            connection for a protocol error: 1002, 1007, 1009...).
        received_first: the server's frame came before ours (ours answered it).
        error: websockets' own message of what failed the connection (its
            ``ProtocolError``, ``PayloadTooBig``, a decoding or network error), if any.

    Not frozen (read-only by convention): one is made for every connection, and a
    frozen dataclass pays a call of ``object.__setattr__`` for each field it sets.
    """

    received: CloseFrame | None
    sent: CloseFrame | None
    received_first: bool = False
    error: str | None = None

    @property
    def code(self) -> int:
        """The server's close code, or 1006 when none came (as websockets'
        ``close_code``, and `WsClient.close_code`)."""
        return self.received.code if self.received is not None else ABNORMAL_CLOSURE

    @property
    def closed_by(self) -> ClosedBy:
        received, sent = self.received, self.sent
        if received is not None and (sent is None or self.received_first):
            return "server"
        if sent is not None:
            return "client"
        return "network"

    @property
    def protocol_failure(self) -> bool:
        """We failed the connection: our close frame carries an error code (not 1000,
        1001) and nothing from the server came first."""
        sent = self.sent
        return self.closed_by == "client" and sent is not None and sent.code not in (1000, 1001)

    def describe(self) -> str:
        """One line: who closed, the codes and reasons, websockets' message.

        For example ``we sent 1009 (message too big): frame with 104857600 bytes
        exceeds limit of 5242880 bytes; no close frame came back``.
        """
        received, sent = self.received, self.sent
        by = self.closed_by
        if by == "server":
            assert received is not None
            text = f"the server sent {received}"
            if sent is not None:
                text += f"; we answered {sent.name}"
        elif by == "client":
            assert sent is not None
            text = f"we sent {sent}"
            text += (
                f"; the server answered {received}"
                if received is not None
                else "; no close frame came back"
            )
        else:
            text = "no close frame received or sent (the connection was lost)"
        error = self.error
        if error and not _mentions(text, error):
            text += f"; websockets: {error}"
        return text


def closed_error(
    head: str, cause: CloseCause | None, *, code: int | None, tail: str = ""
) -> WsConnectionClosedError:
    """The error of a wait or a send that met a closed connection, redacted.

    Args:
        head: what met it ("connection c1 to ws://... closed (code 1006) while waiting
            for ...").
        cause: how the connection ended, if known; its `CloseCause.describe` follows
            ``head`` and its parts become the error's fields.
        code: the close code when ``cause`` is unknown.
        tail: appended last (the recent frames).
    """
    text = head if cause is None else f"{head}: {cause.describe()}"
    if tail:
        text = f"{text}; {tail}"
    if cause is None:
        return WsConnectionClosedError(redact(text), code=code)
    received, sent = cause.received, cause.sent
    return WsConnectionClosedError(
        redact(text),
        code=cause.code,
        reason=received.reason if received is not None else "",
        closed_by=cause.closed_by,
        sent_code=sent.code if sent is not None else None,
        sent_reason=sent.reason if sent is not None else "",
        protocol_error=cause.error,
    )


def _mentions(text: str, error: str) -> bool:
    """The error's message is already in the text (websockets puts it in the reason of
    the close frame it sends, truncated to fit: compare the start)."""
    return error[:60] in text
