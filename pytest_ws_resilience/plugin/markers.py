"""The plugin's markers: their help lines and the pure rules behind ``ws_env``.

Kept apart from `pytest_ws_resilience.plugin` so the skip rule and the argument check
are plain functions, tested without running pytest.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ws_resilience.isolation.nothing_checked import isolation_nothing_checked
from pytest_ws_resilience.isolation.options import IsolationOptions, read_isolation_options

__all__ = [
    "CATEGORY_MARKERS",
    "MARKERS",
    "marker_names",
    "security_marker_options",
    "security_nothing_checked",
    "security_skip_reason",
    "ws_env_names",
    "ws_env_skip_reason",
]

#: Markers that only classify tests, for selection with ``-m``.
CATEGORY_MARKERS = (
    "websocket_unit",
    "websocket_integration",
    "websocket_resilience",
    "reconnection",
    "performance",
)

#: Marker name -> the line registered with pytest (signature and help, as shown by
#: ``pytest --markers``). Registering them lets ``--strict-markers`` pass.
MARKERS: Mapping[str, str] = {
    "concurrent_safe": (
        "concurrent_safe: the test may run in parallel with other tests under pytest-xdist; "
        "tests using WebSocket connections without it are serialized"
    ),
    "websocket_security": (
        "websocket_security(taint=True, identity=True, allow=[...], allow_patterns=[...], "
        "markers={...}, taint_min_length=8, untainted_keys=[...]): turn the isolation "
        "detector on and strict, with these options (all optional); skipped when no "
        "authentication is configured"
    ),
    "ws_env": (
        "ws_env(*names): run only under the named environments (--ws-env / WS_ENV); "
        "skipped elsewhere"
    ),
    "ws_services": (
        "ws_services(*names): needs the named services healthy; skipped when they are not "
        "(failed under --ws-require-services)"
    ),
    "websocket_unit": "websocket_unit: category: WebSocket unit test (select with -m)",
    "websocket_integration": (
        "websocket_integration: category: test against a real WebSocket server (select with -m)"
    ),
    "websocket_resilience": (
        "websocket_resilience: category: network faults, chaos and recovery (select with -m)"
    ),
    "reconnection": "reconnection: category: reconnect and session recovery (select with -m)",
    "performance": "performance: category: load, latency and throughput (select with -m)",
}


def marker_names(
    args: Sequence[object], *, marker: str, kind: str, example: str, test: str = "test"
) -> tuple[str, ...]:
    """Validate a marker whose arguments are names (``ws_env``, ``ws_services``).

    Args:
        args: the marker's positional arguments.
        marker: the marker's name; kind: what a name names ("env", "service");
        example: an example argument, for the message.
        test: the test's name, for the message.

    Returns:
        The names, without repeats, in order.

    Raises:
        ValueError: no names, or one that is not a non-empty string. The message is one
            line, meant for a collection error.
    """
    if not args:
        raise ValueError(
            f"{test}: the {marker} marker needs at least one {kind} name, "
            f'e.g. @pytest.mark.{marker}("{example}")'
        )
    names: list[str] = []
    for arg in args:
        if not isinstance(arg, str) or not arg.strip():
            raise ValueError(
                f"{test}: {marker} marker arguments must be {kind} names (strings), got {arg!r}"
            )
        if arg not in names:
            names.append(arg)
    return tuple(names)


def ws_env_names(
    args: Sequence[object], *, test: str = "test", known: Sequence[str] = ()
) -> tuple[str, ...]:
    """The env names of a ``ws_env`` marker (see `marker_names`).

    Args:
        known: the envs the configuration knows (`WsSettings.known_envs`); empty: any
            name is taken.

    Raises:
        ValueError: as `marker_names`; or a name that is not among ``known`` (such a
            test would be skipped in every env, never run), with the known envs and,
            for a near miss such as ``"LOCAL"``, the name meant.
    """
    names = marker_names(args, marker="ws_env", kind="env", example="staging", test=test)
    for name in names:
        if known and name not in known:
            lowered = {env.lower(): env for env in known}
            close = [lowered[name.lower()]] if name.lower() in lowered else []
            close = close or difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{test}: ws_env marker names unknown env {name!r}{hint}; known envs: "
                f"{', '.join(known)} (add [tool.ws_resilience.envs.{name}] to define it)"
            )
    return names


def ws_env_skip_reason(names: Sequence[str], env: str) -> str | None:
    """Why a test marked ``ws_env(*names)`` is skipped under ``env``; None = it runs."""
    if env in names:
        return None
    return f"runs only under --ws-env {', '.join(names)} (current: {env})"


def security_skip_reason(
    *, server_kind: str, auth_configured: bool, unauthenticated: bool = False
) -> str | None:
    """Why a ``websocket_security`` test cannot run, or None when it can.

    Isolation checks need users the server tells apart. The embedded reference server
    authenticates with the run's own secret; any other server (``--ws-url``,
    ``--ws-app``, ``--ws-server-cmd``: the plugin cannot know what it checks) needs
    either a configured key, or the declaration that it checks no credential
    (``auth_methods = ["none"]``: users keep their ids, canaries and taint markers,
    their tokens are just never sent).

    Args:
        server_kind: `ServerChoice.kind` ("embedded", "url", "app", "command").
        auth_configured: a key is configured (`KeySettings.configured`).
        unauthenticated: the settings say the server checks no credential.
    """
    if unauthenticated or auth_configured or server_kind == "embedded":
        return None
    return (
        "websocket_security needs authentication: set jwt_secret_env (HS256) or "
        "jwt_private_key_env (RS256) in [tool.ws_resilience] for this env, or declare "
        'auth_methods = ["none"] if the server checks no credential'
    )


def security_marker_options(
    marks: Sequence[tuple[Sequence[object], Mapping[str, Any]]], *, test: str = "test"
) -> IsolationOptions:
    """The isolation options of a test's ``websocket_security`` markers.

    Args:
        marks: ``(args, kwargs)`` of each marker, farthest first (module, class,
            function): a closer marker's option wins.
        test: the test's name, for the message.

    Raises:
        ValueError: a positional argument, an unknown option or a bad value; one line
            naming the argument, meant for a collection error.
    """
    merged: dict[str, Any] = {}
    for args, kwargs in marks:
        if args:
            raise ValueError(
                f"{test}: websocket_security takes options by name only, got {args[0]!r}; "
                f"e.g. @pytest.mark.websocket_security(taint=False)"
            )
        merged.update(kwargs)
    try:
        return read_isolation_options(merged)
    except ValueError as err:
        raise ValueError(f"{test}: websocket_security marker: {err}") from None


def security_nothing_checked(
    test: str,
    *,
    checks: int,
    clients: int,
    connected: int,
    nothing_to_look_for: str | None = None,
) -> str | None:
    """The line of a test whose isolation detector verified nothing, or None.

    The rule is `pytest_ws_resilience.isolation.guard.isolation_nothing_checked` (one
    place); this names the test. Under ``websocket_security`` the guard fails the test
    with it; a test that asked for ``ws_isolation`` alone gets a `WsIsolationWarning`.

    Args:
        test: the test's name.
        checks: frames the detector scanned.
        clients: clients the test used through the plugin's fixtures.
        connected: how many of them had a connection accepted.
        nothing_to_look_for: the detector's reason it holds no usable marker, if any.

    Returns:
        None when something was checked, or when every client the test tried was
        refused at the handshake (an authentication test: no frame could come, by
        design); else the line.
    """
    finding = isolation_nothing_checked(
        checks=checks,
        clients=clients,
        connected=connected,
        nothing_to_look_for=nothing_to_look_for,
    )
    return None if finding is None else f"{test}: {finding}"
