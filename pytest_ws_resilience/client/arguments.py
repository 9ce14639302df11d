"""The checks of `WsClient`'s arguments, made when it is built rather than when it connects.

A wrong keyword used to surface as websockets' ``TypeError`` at the first connect, a
string user as ``AttributeError: 'str' object has no attribute 'id'``, and a NaN retry
bound as a hang. Each is refused here, when the client is made, with one line naming
the argument. The numeric bounds are `pytest_ws_resilience.config.bounds`'; the names
``**connect_options`` may hold are read from websockets' own ``connect`` signature (and
the event loop's ``create_connection``, which websockets passes the rest to), so a new
websockets option works without a change here.

The keepalive is the settings' too: `heartbeat_options` turns ``heartbeat_interval``
into websockets' ``ping_interval`` and ``ping_timeout``, under the test's own.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import sys
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

from pytest_ws_resilience.config.bounds import (
    MAX_MESSAGE_BYTES,
    MAX_RETRIES,
    check_count,
    check_seconds,
    shown,
)
from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    from pytest_ws_resilience.client.tokens import TestUser

__all__ = ["check_client_arguments", "connect_option_names", "heartbeat_options"]

#: websockets options `WsClient` sets itself, and the argument to use instead.
_OWN_OPTIONS: Mapping[str, str] = {
    "uri": "the client's url",
    "open_timeout": "connect_timeout=",
    "max_size": "max_message_size=",
    "proxy": "nothing: clients connect directly (loopback only)",
    "logger": "nothing: the client logs through its own redacting logger",
    "user_agent_header": "user_agent=",
    "create_connection": "nothing: the client receives through its own connection class",
}
#: websockets options that are seconds (None switches them off).
_SECONDS_OPTIONS = ("ping_interval", "ping_timeout")
#: `WsClient`'s own keywords that share a name with websockets' (never in
#: ``**connect_options``, so not listed as websockets options).
_CLIENT_ARGUMENTS = ("close_timeout", "compression", "origin", "subprotocols")
#: The most frames one client's event log keeps.
_LOG_SIZE_MAX = 1_000_000


def _keywords(function: Any) -> set[str]:
    return {
        parameter.name
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        or (
            parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            and parameter.default is not inspect.Parameter.empty
        )
    }


@cache
def connect_option_names() -> tuple[frozenset[str], frozenset[str]]:
    """The keywords ``websockets.asyncio.client.connect`` takes (besides those `WsClient`
    sets itself or has an argument for), and those of the event loop's
    ``create_connection``, which websockets passes its other keywords to."""
    own = set(_OWN_OPTIONS) | set(_CLIENT_ARGUMENTS)
    return frozenset(_keywords(connect) - own), frozenset(
        _keywords(asyncio.BaseEventLoop.create_connection) - own
    )


def _check_connect_options(options: Mapping[str, Any]) -> None:
    websockets_names, socket_names = connect_option_names()
    for name, value in options.items():
        if name in _OWN_OPTIONS:
            raise ValueError(f"WsClient: {name}= is set by the client; use {_OWN_OPTIONS[name]}")
        if name not in websockets_names and name not in socket_names:
            known = sorted(websockets_names | socket_names)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"WsClient got an unknown option {name!r}{hint}: keywords besides its own go "
                f"to websockets' connect(), which takes {', '.join(sorted(websockets_names))} "
                f"(and create_connection()'s socket options)"
            )
        if name in _SECONDS_OPTIONS and value is not None:
            check_seconds(name, value)


def heartbeat_options(
    heartbeat_interval: float | Literal[False] | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """``options`` with websockets' keepalive taken from the settings' heartbeat.

    A test that passes ``ping_interval=`` keeps it (and its ``ping_timeout``, or
    websockets' default); otherwise the client pings every ``heartbeat_interval``
    seconds and gives up on a pong after as long (unless ``ping_timeout=`` is given):
    the heartbeat the production client is configured with, so a test sees what an
    idle timeout in front of the server does to it. ``False``: no pings. ``None`` (not
    configured): websockets' defaults, as before the setting existed.
    """
    merged = dict(options)
    if heartbeat_interval is None or "ping_interval" in merged:
        return merged
    if heartbeat_interval is False:
        merged["ping_interval"] = None
    else:
        merged["ping_interval"] = heartbeat_interval
        merged.setdefault("ping_timeout", heartbeat_interval)
    return merged


def check_client_arguments(
    *,
    url: str,
    user: TestUser | None,
    token: str | None,
    max_message_size: int | None,
    connect_retries: int | None,
    log_size: int,
    connect_options: Mapping[str, Any],
) -> None:
    """Check what `WsClient` was given, before it keeps any of it.

    The timeouts are checked where they are resolved
    (`pytest_ws_resilience.config.timeouts.resolve_timeout`).

    Raises:
        ValueError: one line naming the first bad argument.
    """
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"WsClient url must be ws:// or wss://, got {redact(str(url))!r}")
    if user is not None:
        # Not imported: minting tokens (pyjwt, cryptography) is not a client's business,
        # and a TestUser exists only once its module was imported.
        tokens = sys.modules.get("pytest_ws_resilience.client.tokens")
        if tokens is None or not isinstance(user, tokens.TestUser):
            raise ValueError(
                f"WsClient user must be a TestUser (e.g. ws_user_factory()), got "
                f"{shown(user)}; to connect with a token of your own, pass token="
            )
    if token is not None and not isinstance(token, str):
        raise ValueError(f"WsClient token must be a string, got {type(token).__name__}")
    if max_message_size is not None:
        check_count("max_message_size", max_message_size, minimum=1, maximum=MAX_MESSAGE_BYTES)
    if connect_retries is not None:
        check_count("connect_retries", connect_retries, maximum=MAX_RETRIES)
    check_count("log_size", log_size, minimum=1, maximum=_LOG_SIZE_MAX)
    if connect_options:
        _check_connect_options(connect_options)
