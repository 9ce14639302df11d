"""The embedded reference server: a real, production-like WebSocket agent backend.

It is what the plugin starts when no URL is configured, and what the project's tests,
examples and benchmarks talk to. Its protocol (message types, error codes and the
`AGENT_EVENTS` contract) is spelled once, in `vocabulary`. Run it alone with ``python -m
pytest_ws_resilience.testing`` or ``ws-resilience-server``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_ws_resilience.lazy import lazy_exports

__all__ = [
    "ACCEPT_INVALID_TOKENS",
    "AGENT_EVENTS",
    "DELIVER_AFTER_LEAVE",
    "DROP_EVENT",
    "DUPLICATE_EVENT",
    "DUPLICATE_REPLAY",
    "FAULTS",
    "JOIN_RACE",
    "KEEP_EXPIRED_SESSIONS",
    "LEAK",
    "LEAK_CONNECTIONS",
    "LOSE_HISTORY",
    "LOSE_MISSED_EVENTS",
    "REORDER_EVENTS",
    "ROOM_LEAK",
    "ROOM_RELABEL",
    "SLOW_ACCEPT",
    "EmbeddedServer",
    "ReferenceServer",
    "ServerConfig",
    "ServerStats",
    "parse_faults",
]

#: Where each public name is defined; its module is imported on first use.
_EXPORTS = {
    "DELIVER_AFTER_LEAVE": "pytest_ws_resilience.testing.faults",
    "DUPLICATE_REPLAY": "pytest_ws_resilience.testing.faults",
    "JOIN_RACE": "pytest_ws_resilience.testing.faults",
    "LOSE_MISSED_EVENTS": "pytest_ws_resilience.testing.faults",
    "ROOM_LEAK": "pytest_ws_resilience.testing.faults",
    "ROOM_RELABEL": "pytest_ws_resilience.testing.faults",
    "ACCEPT_INVALID_TOKENS": "pytest_ws_resilience.testing.faults",
    "AGENT_EVENTS": "pytest_ws_resilience.testing.vocabulary",
    "DROP_EVENT": "pytest_ws_resilience.testing.faults",
    "DUPLICATE_EVENT": "pytest_ws_resilience.testing.faults",
    "EmbeddedServer": "pytest_ws_resilience.testing.embedded",
    "FAULTS": "pytest_ws_resilience.testing.faults",
    "KEEP_EXPIRED_SESSIONS": "pytest_ws_resilience.testing.faults",
    "LEAK": "pytest_ws_resilience.testing.faults",
    "LEAK_CONNECTIONS": "pytest_ws_resilience.testing.faults",
    "LOSE_HISTORY": "pytest_ws_resilience.testing.faults",
    "REORDER_EVENTS": "pytest_ws_resilience.testing.faults",
    "ReferenceServer": "pytest_ws_resilience.testing.server",
    "SLOW_ACCEPT": "pytest_ws_resilience.testing.faults",
    "ServerConfig": "pytest_ws_resilience.testing.server_config",
    "ServerStats": "pytest_ws_resilience.testing.server",
    "parse_faults": "pytest_ws_resilience.testing.faults",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:
    from pytest_ws_resilience.testing.embedded import EmbeddedServer
    from pytest_ws_resilience.testing.faults import (
        ACCEPT_INVALID_TOKENS,
        DELIVER_AFTER_LEAVE,
        DROP_EVENT,
        DUPLICATE_EVENT,
        DUPLICATE_REPLAY,
        FAULTS,
        JOIN_RACE,
        KEEP_EXPIRED_SESSIONS,
        LEAK,
        LEAK_CONNECTIONS,
        LOSE_HISTORY,
        LOSE_MISSED_EVENTS,
        REORDER_EVENTS,
        ROOM_LEAK,
        ROOM_RELABEL,
        SLOW_ACCEPT,
        parse_faults,
    )
    from pytest_ws_resilience.testing.server import ReferenceServer, ServerStats
    from pytest_ws_resilience.testing.server_config import ServerConfig
    from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS
