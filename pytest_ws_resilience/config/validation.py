"""Validation of configuration values and tables: every rule, and its one-line error.

Pure: plain values in, the normalized value out, or a `WsConfigError` with one line that
names the key, the table and the bad value (never a secret). The loader
(`pytest_ws_resilience.config.loading`) applies these rules layer by layer; the services
tables (`pytest_ws_resilience.config.services`) share the unknown-key rule.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pytest_ws_resilience.config.app_path import parse_app_path
from pytest_ws_resilience.config.bounds import (
    MAX_MESSAGE_BYTES,
    MAX_RETRIES,
    check_count,
    check_seconds,
)
from pytest_ws_resilience.config.settings import APP_LIFESPANS, AUTH_METHODS
from pytest_ws_resilience.errors import WsConfigError

__all__ = [
    "APP_KEYS",
    "ENV_VAR",
    "REQUIRE_ENV_VAR",
    "SETTING_KEYS",
    "TOOL_TABLE",
    "TOP_LEVEL_KEYS",
    "bad_value",
    "require_services",
    "show_value",
    "table_name",
    "unknown_key_error",
    "validate_app",
    "validate_app_env",
    "validate_lifespan",
    "validate_path",
    "validate_server_cmd",
    "validate_settings_table",
    "validate_url",
]

ENV_VAR = "WS_ENV"
TOOL_TABLE = "tool.ws_resilience"

_TIMEOUT_KEYS = ("recv_timeout", "close_timeout", "connect_timeout", "agent_timeout")
_SECONDS_KEYS = (*_TIMEOUT_KEYS, "backoff_base", "backoff_cap")
_STRING_KEYS = ("jwt_audience", "jwt_issuer", "auth_query_param", "auth_cookie", "auth_subprotocol")
_ENV_NAME_KEYS = ("jwt_secret_env", "jwt_public_key_env", "jwt_private_key_env")
#: What every handshake carries (`ConnectionOptions`).
_CONNECTION_KEYS = ("headers", "origin", "subprotocols", "user_agent", "compression")

#: The infrastructure's idle timeout and the clients' keepalive (`config.heartbeat`).
_HEARTBEAT_KEYS = ("idle_timeout", "heartbeat_interval")

#: Keys allowed at the top level (as defaults for every env) and in each env table.
SETTING_KEYS: tuple[str, ...] = (
    "url",
    "path",
    *_SECONDS_KEYS,
    "connect_retries",
    "max_message_size",
    "auth_methods",
    *_ENV_NAME_KEYS,
    *_STRING_KEYS,
    "services",
    "greeting",
    *_CONNECTION_KEYS,
    *_HEARTBEAT_KEYS,
)
#: Top-level-only keys of the ASGI-app feature: the app is served for every env that has
#: no ``url``.
APP_KEYS = ("app", "app_subprocess", "app_share", "app_lifespan", "app_env")
#: Keys of the top-level table: the settings (defaults of every env), the env tables, the
#: app keys; ``services`` may also be a table of service definitions there.
TOP_LEVEL_KEYS = (*SETTING_KEYS, "envs", *APP_KEYS)
#: The environment variable that does what ``--ws-require-services`` does (for CI).
REQUIRE_ENV_VAR = "WS_REQUIRE_SERVICES"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

# Secrets typed straight into the file, and the key that should name their variable.
_SECRET_KEYS = {
    "jwt_secret": "jwt_secret_env",
    "secret": "jwt_secret_env",
    "jwt_private_key": "jwt_private_key_env",
}
_ENV_VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Headers the handshake itself sets: configuring them would break the upgrade.
_HANDSHAKE_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)
_SHOWN_VALUE_MAX = 60


def show_value(value: Any) -> str:
    """A short repr of a bad value for an error message."""
    text = repr(value)
    if len(text) > _SHOWN_VALUE_MAX:
        text = text[: _SHOWN_VALUE_MAX - 3] + "..."
    return text


def bad_value(where: str, key: str, value: Any, expected: str) -> WsConfigError:
    prefix = f"{where}: " if where else ""
    return WsConfigError(f"{prefix}{key} = {show_value(value)} is invalid: expected {expected}")


def _bounded(where: str, check: Callable[[], Any]) -> Any:
    """Run one of `pytest_ws_resilience.config.bounds`' checks; its error, with the
    table's name, as a `WsConfigError`."""
    try:
        return check()
    except ValueError as err:
        prefix = f"{where}: " if where else ""
        raise WsConfigError(f"{prefix}{err}") from None


def _seconds(where: str, key: str, value: Any) -> float:
    return float(_bounded(where, lambda: check_seconds(key, value)))


def _whole(where: str, key: str, value: Any, *, minimum: int, maximum: int) -> int:
    return int(_bounded(where, lambda: check_count(key, value, minimum=minimum, maximum=maximum)))


def _string(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_value(where, key, value, "a non-empty string")
    return value


def _string_list(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad_value(where, key, value, "a list of non-empty strings")
    return tuple(value)


def validate_url(subject: str, value: Any) -> str:
    """Check a server URL: scheme ws or wss, a host, a valid port.

    Args:
        subject: how the value is named in the error, e.g. ``"--ws-url"`` or
            ``"pyproject.toml [tool.ws_resilience]: url"``.
    """
    if not isinstance(value, str):
        raise WsConfigError(
            f"{subject} = {show_value(value)} is invalid: expected a ws:// or wss:// URL"
        )
    shown = f"{subject} = {show_value(value)}"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise WsConfigError(f"{shown} is not a valid URL: bad port or host") from None
    if parts.scheme not in ("ws", "wss"):
        raise WsConfigError(f"{shown} is not a WebSocket URL: the scheme must be ws or wss")
    if not parts.hostname:
        raise WsConfigError(f"{shown} is not a valid URL: it has no host")
    if port == 0:
        raise WsConfigError(f"{shown} is not a valid URL: port 0 is not a server port")
    return value


def validate_app(subject: str, value: Any) -> str:
    """Check an app import path: ``module:attr`` or ``module:factory()``.

    Args:
        subject: how the value is named in the error, e.g. ``"--ws-app"``.
    """
    if isinstance(value, str):
        try:
            parse_app_path(value)
        except ValueError:
            pass
        else:
            return value.strip()
    raise WsConfigError(
        f"{subject} = {show_value(value)} is invalid: expected 'module:attr' or "
        f"'module:factory()' (e.g. 'myapp.main:app')"
    )


def validate_path(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise bad_value(where, key, value, "a path starting with '/'")
    return value


def _env_var_name(where: str, key: str, value: Any) -> str:
    # The value is not shown: someone may have pasted the secret itself here.
    if not isinstance(value, str) or not _ENV_VAR_NAME_RE.fullmatch(value):
        raise WsConfigError(
            f"{where}: {key} must be the name of an environment variable (letters, digits, "
            f"underscores), not the secret itself"
        )
    return value


def _auth_methods(where: str, key: str, value: Any) -> tuple[str, ...]:
    methods = _string_list(where, key, value)
    if not methods:
        raise bad_value(where, key, value, f"at least one of {', '.join(AUTH_METHODS)}")
    for method in methods:
        if method not in AUTH_METHODS:
            raise WsConfigError(
                f"{where}: {key} = {show_value(value)} has unknown method {method!r}; "
                f"known methods: {', '.join(AUTH_METHODS)}"
            )
    duplicates = sorted({m for m in methods if methods.count(m) > 1})
    if duplicates:
        raise WsConfigError(f"{where}: {key} = {show_value(value)} lists {duplicates[0]!r} twice")
    return methods


def _headers(where: str, key: str, value: Any) -> tuple[tuple[str, str], ...]:
    # Values are never shown: a header may carry an API key.
    if not isinstance(value, Mapping):
        raise bad_value(
            where, key, "...", 'a table of header names to values, e.g. {"X-Api-Key" = "..."}'
        )
    headers = []
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
            raise WsConfigError(f"{where}: {key} has an invalid header name {show_value(name)}")
        lowered = name.lower()
        if lowered in _HANDSHAKE_HEADERS:
            raise WsConfigError(
                f"{where}: {key} sets {name!r}, which the WebSocket handshake sets itself"
                + ("; use subprotocols = [...]" if lowered == "sec-websocket-protocol" else "")
            )
        if lowered == "origin":
            raise WsConfigError(f"{where}: {key} sets 'Origin'; use origin = \"...\" instead")
        if lowered == "user-agent":
            raise WsConfigError(
                f"{where}: {key} sets 'User-Agent'; use user_agent = \"...\" instead"
            )
        if not isinstance(header_value, str) or "\n" in header_value or "\r" in header_value:
            raise WsConfigError(
                f"{where}: {key}.{name} is invalid: expected a one-line string value"
            )
        headers.append((name, header_value))
    return tuple(headers)


def _origin(where: str, key: str, value: Any) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if (
            parts.scheme in ("http", "https", "ws", "wss")
            and parts.netloc
            and not parts.path.strip("/")
        ):
            return value
    raise bad_value(
        where, key, value, "an origin such as 'http://localhost:8000' (scheme and host)"
    )


def _boolean(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_value(where, key, value, "true or false")
    return value


def _greeting(where: str, key: str, value: Any) -> str | None:
    """The greeting frame's ``type``, or false when the server sends no greeting."""
    if value is False:
        return None
    if isinstance(value, str) and value.strip():
        return value
    raise bad_value(where, key, value, "the greeting frame's type, or false for none")


def _heartbeat(where: str, key: str, value: Any) -> float | bool:
    """``idle_timeout``: seconds; ``heartbeat_interval``: seconds, or false for no pings."""
    if value is False and key == "heartbeat_interval":
        return False
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        off = ", or false for no keepalive pings" if key == "heartbeat_interval" else ""
        raise bad_value(where, key, value, f"a positive number of seconds{off}")
    return _seconds(where, key, value)


def validate_lifespan(subject: str, value: Any) -> str:
    """``app_lifespan`` / ``--ws-app-lifespan``: one of `APP_LIFESPANS`."""
    if value not in APP_LIFESPANS:
        raise WsConfigError(
            f"{subject} = {show_value(value)} is invalid: expected one of "
            f"{', '.join(APP_LIFESPANS)} (off for apps without lifespan support, such as "
            f"Django Channels' ProtocolTypeRouter)"
        )
    return str(value)


def validate_app_env(subject: str, value: Any) -> tuple[tuple[str, str], ...]:
    """``app_env``: a table of environment variable names to string values."""
    if not isinstance(value, Mapping):
        raise WsConfigError(
            f"{subject} is invalid: expected a table of variables, e.g. "
            f'{{DJANGO_SETTINGS_MODULE = "mysite.settings"}}'
        )
    pairs = []
    for name, var_value in value.items():
        if not isinstance(name, str) or not _ENV_VAR_NAME_RE.fullmatch(name):
            raise WsConfigError(f"{subject} has an invalid variable name {show_value(name)}")
        if not isinstance(var_value, str):
            raise WsConfigError(f"{subject}.{name} is invalid: expected a string value")
        pairs.append((name, var_value))
    return tuple(pairs)


_Validator = Callable[[str, str, Any], Any]


def _validator(key: str) -> _Validator:
    if key in _SECONDS_KEYS:
        return _seconds
    if key == "connect_retries":
        return lambda w, k, v: _whole(w, k, v, minimum=0, maximum=MAX_RETRIES)
    if key == "max_message_size":
        return lambda w, k, v: _whole(w, k, v, minimum=1, maximum=MAX_MESSAGE_BYTES)
    if key == "url":
        return lambda w, k, v: validate_url(f"{w}: {k}", v)
    if key == "path":
        return validate_path
    if key == "auth_methods":
        return _auth_methods
    if key in _ENV_NAME_KEYS:
        return _env_var_name
    if key in ("services", "subprotocols"):
        return _string_list
    if key == "headers":
        return _headers
    if key == "origin":
        return _origin
    if key == "compression":
        return _boolean
    if key == "greeting":
        return _greeting
    if key in _HEARTBEAT_KEYS:
        return _heartbeat
    return _string


def unknown_key_error(where: str, key: str, allowed: Sequence[str]) -> WsConfigError:
    if key in _SECRET_KEYS:
        env_key = _SECRET_KEYS[key]
        return WsConfigError(
            f"{where}: {key} must not be set in the file: secrets must come from an "
            f'environment variable named by {env_key} (e.g. {env_key} = "WS_JWT_SECRET")'
        )
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return WsConfigError(f"{where}: unknown key {key!r} (did you mean {close[0]!r}?)")
    return WsConfigError(f"{where}: unknown key {key!r}; known keys: {', '.join(allowed)}")


def validate_settings_table(
    where: str, table: Mapping[str, Any], allowed: Sequence[str]
) -> dict[str, Any]:
    """Check every key and value of one table; return the normalized setting values."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in allowed:
            raise unknown_key_error(where, key, allowed)
        if key in SETTING_KEYS:
            values[key] = _validator(key)(where, key, value)
    return values


def table_name(env: str | None = None) -> str:
    if env is None:
        return f"[{TOOL_TABLE}]"
    return f"[{TOOL_TABLE}.envs.{env}]"


def validate_server_cmd(command: str, *, cli_url: str | None, cli_app: str | None) -> str:
    """``--ws-server-cmd``: the command, stripped, once it can work.

    The command line beats a configured ``url`` or ``app`` (as ``--ws-url`` does); it
    cannot be combined with ``--ws-url`` or ``--ws-app``, which also name the server.

    Raises:
        WsConfigError: an empty command, one without ``{port}``, or a conflicting option.
    """
    subject = "--ws-server-cmd"
    for source, given in (("--ws-url", cli_url), ("--ws-app", cli_app)):
        if given is not None:
            raise WsConfigError(
                f"{subject} and {source} both name the server under test; choose one"
            )
    if not command.strip():
        raise WsConfigError(
            f"{subject} is empty: expected a command such as 'myserver --port {{port}}'"
        )
    if "{port}" not in command:
        raise WsConfigError(
            f"{subject} = {show_value(command)} has no {{port}} placeholder: the plugin picks "
            f"a free loopback port and must tell the server (e.g. 'myserver --port {{port}}')"
        )
    return command.strip()


def require_services(option: bool, environ: Mapping[str, str]) -> tuple[bool, str]:
    """Whether unavailable services fail tests, and why: ``--ws-require-services``, or
    ``WS_REQUIRE_SERVICES`` (the source is empty when they only skip).

    Raises:
        WsConfigError: the variable holds something that is neither true nor false (a
            typo must not silently turn the CI guard off).
    """
    if option:
        return True, "--ws-require-services"
    raw = environ.get(REQUIRE_ENV_VAR, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True, REQUIRE_ENV_VAR
    if value in _FALSE:
        return False, ""
    raise WsConfigError(
        f"{REQUIRE_ENV_VAR}={raw!r} is invalid: expected 1/true/yes/on or 0/false/no/off"
    )
