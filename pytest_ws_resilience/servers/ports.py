"""A free loopback port for a service that does not fix its own."""

from __future__ import annotations

import socket

from pytest_ws_resilience.config.services import LOOPBACK_HOST

__all__ = ["free_loopback_port"]


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it; the service binds it
    moments later, so a clash is possible but rare, and shows as a failed start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK_HOST, 0))
        port: int = sock.getsockname()[1]
        return port
