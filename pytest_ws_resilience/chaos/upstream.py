"""Where a `ChaosProxy` forwards to: its ``upstream`` argument, read and checked.

Pure (no sockets): the proxy reads it once, at construction, and each connection opens
its upstream socket from it (`chaos.connection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from pytest_ws_resilience.loopback import is_loopback_host

__all__ = ["Upstream", "parse_upstream"]


@dataclass(frozen=True)
class Upstream:
    """Where a proxy forwards to, from its ``upstream`` argument."""

    scheme: str  # "ws", "wss" or "tcp"
    host: str
    port: int
    target: str  # path and query, "" for tcp


def parse_upstream(upstream: str) -> Upstream:
    """Read a proxy's upstream: ``ws://``, ``wss://``, ``tcp://`` or ``host:port``, loopback.

    Raises:
        ValueError: another scheme, a host that is not loopback, or no port.
    """
    text = upstream if "://" in upstream else f"tcp://{upstream}"
    parts = urlsplit(text)
    scheme = parts.scheme
    if scheme not in ("ws", "wss", "tcp"):
        raise ValueError(f"chaos upstream must be ws://, wss:// or host:port, got {upstream!r}")
    host = parts.hostname or ""
    if not is_loopback_host(host):
        raise ValueError(f"chaos upstream must be a loopback address, got {host or upstream!r}")
    try:
        port = parts.port or {"ws": 80, "wss": 443}.get(scheme)
    except ValueError:
        port = None
    if not port:
        raise ValueError(f"chaos upstream needs a port, got {upstream!r}")
    target = ""
    if scheme != "tcp":
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Upstream(scheme, host, port, target)
