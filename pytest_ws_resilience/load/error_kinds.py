"""Why a storm connection failed, as one of a few kinds a threshold can count.

Pure: maps an exception (the library's typed errors, or a raw OS / websockets error)
to a kind. The kinds follow what a load tool user asks first: did the server refuse,
reset, time out, reject the credentials, or close on us?

- ``closed``: the server closed the connection with a WebSocket close frame, or closed
  it during the opening handshake (websockets cannot tell a TCP reset from an EOF
  there);
- ``reset``: an open connection was dropped without a close frame (close code 1006:
  a TCP reset or abort), or the OS reported a reset;
- ``contract``: a scenario's run broke its event contract (`ContractViolationError`:
  events missing, out of order, late, or the terminal event never came).
"""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed, InvalidStatus

from pytest_ws_resilience.client.fallback import (
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    HANDSHAKE_CUT_SHORT,
    TIMED_OUT,
)
from pytest_ws_resilience.errors import (
    ContractViolationError,
    WsAuthError,
    WsConnectError,
    WsConnectionClosedError,
)

__all__ = ["ERROR_KINDS", "error_kind"]

#: Every kind, in the order reports list them.
ERROR_KINDS: tuple[str, ...] = (
    "timeout",
    "refused",
    "reset",
    "auth",
    "closed",
    "contract",
    "other",
)

# Close code of a connection that ended without a close frame (RFC 6455, 7.1.5).
_ABNORMAL_CLOSURE = 1006

# `WsClient` records each attempt's outcome as a short phrase (the phrases of
# `pytest_ws_resilience.client.fallback`); a connect error is of the kind of its last attempt.
_OUTCOME_KINDS: tuple[tuple[str, str], ...] = (
    (CONNECTION_REFUSED, "refused"),
    (CONNECTION_RESET, "reset"),
    (HANDSHAKE_CUT_SHORT, "closed"),
    (TIMED_OUT, "timeout"),
)


def error_kind(exc: BaseException) -> str:
    """The kind of ``exc``: one of `ERROR_KINDS`."""
    if isinstance(exc, WsAuthError):
        return "auth"
    if isinstance(exc, ContractViolationError):
        return "contract"
    if isinstance(exc, TimeoutError):  # WsTimeoutError included
        return "timeout"
    if isinstance(exc, WsConnectionClosedError):
        return "reset" if exc.code in (None, _ABNORMAL_CLOSURE) else "closed"
    if isinstance(exc, ConnectionClosed):
        return "closed" if exc.rcvd is not None else "reset"
    if isinstance(exc, EOFError):
        return "closed"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
        return "auth"
    if isinstance(exc, WsConnectError) and exc.attempts:
        outcome = exc.attempts[-1].outcome
        for phrase, kind in _OUTCOME_KINDS:
            if phrase in outcome:
                return kind
    return "other"
