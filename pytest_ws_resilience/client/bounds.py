"""The bounds of one client's waits, each with its source: connect, close, recv.

Pure, no I/O. The precedence is `pytest_ws_resilience.config.timeouts.resolve_timeout`'s
(explicit > server-negotiated > configured); this module applies it to one client.
Connect and close are fixed when the client is made (settings are immutable). The recv
bound is the only one that moves: a greeting may negotiate it, and a reconnect forgets
that until the new connection's greeting. A wait's own ``timeout`` beats them all.
"""

from __future__ import annotations

from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue, resolve_timeout

__all__ = ["ClientBounds", "handshakes_bound"]


class ClientBounds:
    """The resolved timeouts of one `WsClient`.

    Args:
        settings: the configured values (and the agent timeout, reported as is).
        recv: explicit recv timeout, seconds (beats a negotiated one).
        close: explicit close timeout, seconds.
        connect: explicit connect timeout, seconds.
    """

    __slots__ = ("_configured_recv", "_explicit_recv", "agent", "close", "connect", "recv")

    def __init__(
        self,
        settings: WsSettings,
        *,
        recv: float | None = None,
        close: float | None = None,
        connect: float | None = None,
    ) -> None:
        self._configured_recv = settings.recv_timeout
        self._explicit_recv = recv
        #: Bound of one opening handshake.
        self.connect = resolve_timeout(
            settings.connect_timeout, explicit=connect, name="connect_timeout"
        )
        #: Bound of ``close()``.
        self.close = resolve_timeout(settings.close_timeout, explicit=close, name="close_timeout")
        #: How long an agent run may take; None when not configured.
        self.agent = settings.agent_timeout
        #: Bound of waits and sends. Read on every wait: resolved once per change.
        self.recv = resolve_timeout(settings.recv_timeout, explicit=recv, name="recv_timeout")

    def negotiate(self, recv_timeout: float | None) -> None:
        """The server asked for ``recv_timeout`` seconds (None: forget what it asked)."""
        self.recv = resolve_timeout(
            self._configured_recv, explicit=self._explicit_recv, negotiated=recv_timeout
        )

    def for_wait(self, timeout: float | None) -> TimeoutValue:
        """The bound of one wait: its own ``timeout``, else the recv bound.

        Raises:
            ValueError: a ``timeout`` that is not a finite number of seconds in bounds.
        """
        return resolve_timeout(self.recv, explicit=timeout)

    def as_dict(self) -> dict[str, TimeoutValue | None]:
        """Every bound by its setting's name (the agent timeout None when not set)."""
        return {
            "recv_timeout": self.recv,
            "close_timeout": self.close,
            "connect_timeout": self.connect,
            "agent_timeout": self.agent,
        }


def handshakes_bound(methods: int, retries: int, settings: WsSettings) -> float:
    """The most one ``connect()`` may take: every handshake it may try (each of
    ``methods`` auth methods, each with ``retries`` retries), each bounded by the connect
    timeout, and the backoff pauses between them. Callers add their own slack."""
    pauses = sum(settings.backoff.delays(retries)) * methods
    return methods * (retries + 1) * settings.connect_timeout.value + pauses
