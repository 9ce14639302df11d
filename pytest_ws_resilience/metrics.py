"""Per-client counters: what a connection cost and carried.

Plain data updated in place by `WsClient`; the reporting layer reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_ws_resilience.errors import Attempt

__all__ = ["ClientMetrics"]


@dataclass
class ClientMetrics:
    """Counters of one `WsClient`.

    Attributes:
        handshake_s: duration of the last successful opening handshake (TCP + HTTP upgrade).
        auth_method: the method that got the last connection accepted.
        retries: backoff retries ever made (network errors and 5xx), over all connects.
        attempts: every attempt of the most recent ``connect()``, the successful one last.
        sent / received: messages out / in.
        bytes_sent / bytes_received: payload bytes out / in (UTF-8 size for text).
        ping_rtt_s: the last WebSocket ping round trip.
        reconnects: successful `WsClient.reconnect` calls.
        connects: connections opened (first connect and reconnects).
    """

    handshake_s: float | None = None
    auth_method: str | None = None
    retries: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    sent: int = 0
    received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    ping_rtt_s: float | None = None
    reconnects: int = 0
    connects: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (attempts as strings), for reports."""
        data = asdict(self)
        data["attempts"] = [str(a) for a in self.attempts]
        return data
