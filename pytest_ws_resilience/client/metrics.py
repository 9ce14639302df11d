"""Per-client counters: what a connection cost and carried.

Plain data updated in place by `WsClient`; the reporting layer reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_ws_resilience.errors import Attempt

__all__ = ["MAX_SPANS", "ClientMetrics", "ConnectionSpan", "Counters", "payload_size"]

#: Connection spans kept per client: a client reconnecting in a loop keeps its first
#: ones (``connects`` still counts them all), so memory stays bounded.
MAX_SPANS = 1000


def payload_size(message: str | bytes) -> int:
    """The bytes a message counts for: its UTF-8 size for text (what goes on the wire,
    and what the max message size limits)."""
    if isinstance(message, str):
        # Most frames are ASCII JSON: skip the encode copy when it cannot change the size.
        return len(message) if message.isascii() else len(message.encode())
    return len(message)


@dataclass
class ConnectionSpan:
    """One connection a client opened: when (wall clock, for timelines across xdist
    workers on one machine), how long its handshake took, when it closed, with which
    code (the server's; 1006 when none came) and who closed it ("server", "client",
    "network": `pytest_ws_resilience.client.close_cause.ClosedBy`)."""

    opened_at: float
    handshake_s: float
    auth_method: str | None
    closed_at: float | None = None
    close_code: int | None = None
    closed_by: str | None = None


@dataclass(frozen=True)
class Counters:
    """The message counters of a client at one moment: a test that picks up a pooled
    client counts only what it added since (see `ClientMetrics.counters`)."""

    sent: int = 0
    received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.sent + other.sent,
            self.received + other.received,
            self.bytes_sent + other.bytes_sent,
            self.bytes_received + other.bytes_received,
            self.retries + other.retries,
        )

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.sent - other.sent,
            self.received - other.received,
            self.bytes_sent - other.bytes_sent,
            self.bytes_received - other.bytes_received,
            self.retries - other.retries,
        )


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
        spans: the connections opened, in order (the first `MAX_SPANS`).
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
    spans: list[ConnectionSpan] = field(default_factory=list)

    def opened(self, at: float, handshake_s: float, auth_method: str | None) -> None:
        """A connection opened at wall time ``at``."""
        self.handshake_s = handshake_s
        self.auth_method = auth_method
        self.connects += 1
        if len(self.spans) < MAX_SPANS:
            self.spans.append(ConnectionSpan(at, handshake_s, auth_method))

    def closed(self, at: float, code: int | None = None, by: str | None = None) -> None:
        """The latest connection ended at wall time ``at``, with close ``code``, closed
        ``by`` (each kept if already set)."""
        if not self.spans:
            return
        span = self.spans[-1]
        if span.closed_at is None:
            span.closed_at = at
        if span.close_code is None and code is not None:
            span.close_code = code
            span.closed_by = by

    def counters(self) -> Counters:
        """A snapshot of the message counters."""
        return Counters(
            self.sent, self.received, self.bytes_sent, self.bytes_received, self.retries
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (attempts as strings), for reports."""
        data = asdict(self)
        data["attempts"] = [str(a) for a in self.attempts]
        return data
