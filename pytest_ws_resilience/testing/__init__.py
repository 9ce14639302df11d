"""The embedded reference server: a real, production-like WebSocket agent backend.

It is what the plugin starts when no URL is configured, and what the project's tests,
examples and benchmarks talk to. Run it alone with ``python -m
pytest_ws_resilience.testing`` or ``ws-resilience-server``.
"""

from pytest_ws_resilience.testing.embedded import EmbeddedServer
from pytest_ws_resilience.testing.faults import (
    ACCEPT_INVALID_TOKENS,
    DROP_EVENT,
    DUPLICATE_EVENT,
    FAULTS,
    LEAK,
    LOSE_HISTORY,
    REORDER_EVENTS,
    SLOW_ACCEPT,
    parse_faults,
)
from pytest_ws_resilience.testing.server import ReferenceServer, ServerStats
from pytest_ws_resilience.testing.server_config import ServerConfig

__all__ = [
    "ACCEPT_INVALID_TOKENS",
    "DROP_EVENT",
    "DUPLICATE_EVENT",
    "FAULTS",
    "LEAK",
    "LOSE_HISTORY",
    "REORDER_EVENTS",
    "SLOW_ACCEPT",
    "EmbeddedServer",
    "ReferenceServer",
    "ServerConfig",
    "ServerStats",
    "parse_faults",
]
