"""What a client learns from the server's greeting: a connection id and a recv timeout.

Pure, no I/O. Many servers open with a frame that names the connection and may say how
long the client should wait for answers (SPEC section 3: a negotiated recv timeout beats
the configured one). Which frame that is, is configuration (``settings.greeting``, the
frame's ``type``), never a name this package hard-codes: the client knows no protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Greeting", "read_greeting"]


@dataclass(slots=True)
class Greeting:
    """What the greeting announced.

    Attributes:
        connection_id: the server's name for this connection (None when not given).
        recv_timeout: the recv timeout the server asks for, seconds (None when it asks
            for none, or for something that is not a positive number).

    Not frozen (read-only by convention): one is made for every connection, and a
    frozen dataclass pays a call of ``object.__setattr__`` for each field it sets.
    """

    connection_id: Any
    recv_timeout: float | None


def read_greeting(data: Any, greeting_type: str | None) -> Greeting | None:
    """The `Greeting` in ``data`` (a parsed frame), or None when it is not one.

    Args:
        data: the parsed JSON of the connection's first frame (None if not JSON).
        greeting_type: the ``type`` a greeting has; None: expect no greeting.
    """
    if greeting_type is None or not isinstance(data, dict) or data.get("type") != greeting_type:
        return None
    recv_timeout = data.get("recv_timeout")
    if not (isinstance(recv_timeout, (int, float)) and recv_timeout > 0):
        recv_timeout = None
    return Greeting(
        data.get("connection_id"), None if recv_timeout is None else float(recv_timeout)
    )
