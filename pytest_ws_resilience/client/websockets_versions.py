"""What differs between the websockets releases the client supports (15.0 and later),
read once, here: the rest of the package is written for the newest.

What failed a connection: websockets keeps it on the connection, as ``connection_exc``
(set with ``set_connection_exc``) since 17.4, as ``recv_exc`` (``set_recv_exc``) before.
The client reads it to say why a connection ended, and sets it when it fails a
connection for a message it cannot take (1007, 1009).

The floor is pyproject.toml's; ``.ci/floor-check`` runs the client's tests against it.
(15.0 is where ``connect`` takes ``proxy=``, which the client passes as None: a test
talks to its server directly, whatever proxy the environment names.)
"""

from __future__ import annotations

from websockets.asyncio.client import ClientConnection

__all__ = ["connection_failure", "set_connection_failure"]

_RENAMED = hasattr(ClientConnection, "set_connection_exc")  # websockets 17.4


def connection_failure(conn: ClientConnection) -> BaseException | None:
    """What websockets recorded as failing ``conn`` (a network or decoding error)."""
    return conn.connection_exc if _RENAMED else conn.recv_exc  # type: ignore[attr-defined,unused-ignore]


def set_connection_failure(conn: ClientConnection, exc: BaseException) -> None:
    """Record ``exc`` as what failed ``conn``, as websockets does (the first one wins)."""
    if _RENAMED:
        conn.set_connection_exc(exc)
    else:
        conn.set_recv_exc(exc)  # type: ignore[attr-defined,unused-ignore]
