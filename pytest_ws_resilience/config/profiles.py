"""Built-in environment profiles and built-in defaults (pure data, no I/O).

A profile is the lowest layer a user can see by name: ``--ws-env=staging`` with no
``pyproject.toml`` at all already gives staging's timeouts. Everything a profile does not
set falls back to `BUILTIN_DEFAULTS`. `pytest_ws_resilience.config.loading` layers the user's
``[tool.ws_resilience]`` tables and the command line on top of both.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pytest_ws_resilience.config.settings import DEFAULT_GREETING, DEFAULT_MAX_MESSAGE_SIZE
from pytest_ws_resilience.config.timeouts import TimeoutValue

__all__ = [
    "BUILTIN_DEFAULTS",
    "BUILTIN_PROFILES",
    "CLOSE_TIMEOUT_MARGIN",
    "DEFAULT_ENV",
    "DERIVED_CLOSE_SOURCE",
    "derive_close_timeout",
    "profile_source",
]

DEFAULT_ENV = "local"

#: Seconds added to the recv timeout to get the close timeout, so that a client waiting
#: for a reply always outlives it by a little and can still close cleanly.
CLOSE_TIMEOUT_MARGIN = 2.0

#: Source recorded for a close timeout computed from a user-configured recv timeout.
DERIVED_CLOSE_SOURCE = f"derived: recv_timeout + {CLOSE_TIMEOUT_MARGIN:g}"

#: Per-env receive timeouts (seconds). Close timeouts are derived: recv + 2.
#: Staging is slow on purpose (cold starts, shared agents); production is watched.
BUILTIN_PROFILES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "local": MappingProxyType({"recv_timeout": 10.0}),
        "staging": MappingProxyType({"recv_timeout": 300.0}),
        "production": MappingProxyType({"recv_timeout": 120.0}),
    }
)

#: Values used when neither a profile nor the user's config sets a key. The recv
#: timeout default (local's) only matters for user-defined envs that omit it.
BUILTIN_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "recv_timeout": 10.0,
        "connect_timeout": 10.0,
        "agent_timeout": None,
        "connect_retries": 3,
        "backoff_base": 1.0,
        "backoff_cap": 8.0,
        "max_message_size": DEFAULT_MAX_MESSAGE_SIZE,
        "path": "/",
        "url": None,
        "auth_query_param": "token",
        "auth_cookie": "access_token",
        "auth_subprotocol": "jwt-auth",
        # None: not set (no auth configured; the default auth chain; no services).
        "auth_methods": None,
        "jwt_secret_env": None,
        "jwt_public_key_env": None,
        "jwt_private_key_env": None,
        "jwt_audience": None,
        "jwt_issuer": None,
        "services": None,
        "greeting": DEFAULT_GREETING,
        # What every handshake carries besides the credential (ConnectionOptions).
        "headers": (),
        "origin": None,
        "subprotocols": (),
        "user_agent": None,
        "compression": True,
        # None: unknown (no start-up check) / not set (websockets' keepalive default).
        "idle_timeout": None,
        "heartbeat_interval": None,
    }
)


def profile_source(env: str) -> str:
    """The source string recorded for a value taken from a built-in profile."""
    return f"profile {env}"


def derive_close_timeout(recv: TimeoutValue) -> TimeoutValue:
    """The close timeout implied by a recv timeout: recv + `CLOSE_TIMEOUT_MARGIN`.

    A recv timeout from a profile or the built-in defaults keeps its source (the
    profile table states "staging: 300 / 302"); one the user configured is marked as
    derived, so the header shows that nobody wrote the close value down.
    """
    source = recv.source
    if not (source.startswith("profile ") or source == "default"):
        source = DERIVED_CLOSE_SOURCE
    return TimeoutValue(recv.value + CLOSE_TIMEOUT_MARGIN, source)
