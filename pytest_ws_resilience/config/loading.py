"""Load `WsSettings` from the command line, ``WS_ENV``, ini and ``[tool.ws_resilience]``.

Pure logic: no pytest import, no sockets. The only I/O is `read_tool_config`, which
reads one TOML file. Everything else takes plain mappings, so every precedence rule and
every validation error is unit-tested without running pytest.

Precedence, highest first, recorded per value as a source string:

- env selection: ``--ws-env`` > ``WS_ENV`` > ini ``ws_env`` > ``local``;
- each value: ``--ws-url`` / ``--ws-path`` > ``[tool.ws_resilience.envs.NAME]`` >
  ``[tool.ws_resilience]`` > built-in profile > built-in default.

Every problem raises `WsConfigError` with one line that names the key, the table and
the bad value (never a secret), so the plugin can turn it into a pytest usage error.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.profiles import (
    BUILTIN_DEFAULTS,
    BUILTIN_PROFILES,
    DEFAULT_ENV,
    derive_close_timeout,
    profile_source,
)
from pytest_ws_resilience.config.settings import AUTH_METHODS, WsSettings
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.redaction import register_secret

if TYPE_CHECKING:
    from pytest_ws_resilience.servers.spec import ServiceSpec

__all__ = [
    "APP_KEYS",
    "ENV_VAR",
    "EXTRA_TOP_LEVEL_KEYS",
    "SETTING_KEYS",
    "TOOL_TABLE",
    "load_settings",
    "read_tool_config",
    "unknown_key_error",
    "validate_app",
    "validate_server_cmd",
    "validate_url",
]

#: The environment variable that selects the env when ``--ws-env`` is not given.
ENV_VAR = "WS_ENV"
TOOL_TABLE = "tool.ws_resilience"

_TIMEOUT_KEYS = ("recv_timeout", "close_timeout", "connect_timeout", "agent_timeout")
_SECONDS_KEYS = (*_TIMEOUT_KEYS, "backoff_base", "backoff_cap")
_STRING_KEYS = ("jwt_audience", "jwt_issuer", "auth_query_param", "auth_cookie", "auth_subprotocol")
_ENV_NAME_KEYS = ("jwt_secret_env", "jwt_public_key_env", "jwt_private_key_env")

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
)
#: Top-level keys also kept as given in ``WsSettings.extra``; ``services`` may also be a
#: table of service definitions, kept there too.
EXTRA_TOP_LEVEL_KEYS = ("app",)
#: Top-level-only keys of the ASGI-app feature (``app`` is one of them, and also kept in
#: ``extra``): the app is served for every env that has no ``url``.
APP_KEYS = ("app", "app_subprocess", "app_share")
_TOP_LEVEL_KEYS = (*SETTING_KEYS, "envs", *EXTRA_TOP_LEVEL_KEYS, "app_subprocess", "app_share")

# Secrets typed straight into the file, and the key that should name their variable.
_SECRET_KEYS = {
    "jwt_secret": "jwt_secret_env",
    "secret": "jwt_secret_env",
    "jwt_private_key": "jwt_private_key_env",
}
_ENV_VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHOWN_VALUE_MAX = 60


@dataclass(frozen=True)
class _Layer:
    """One place values come from: its header source and its label for errors."""

    source: str
    where: str
    values: Mapping[str, Any]


# -- reading the file ------------------------------------------------------------------


def read_tool_config(pyproject_path: Path | None) -> dict[str, Any]:
    """Return the ``[tool.ws_resilience]`` table of a ``pyproject.toml``.

    A missing file (or ``None``) gives ``{}``: the plugin works with no configuration.

    Raises:
        WsConfigError: the file is not valid TOML (the message names the file and line),
            cannot be read, or ``tool.ws_resilience`` is not a table.
    """
    if pyproject_path is None:
        return {}
    try:
        text = pyproject_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise WsConfigError(f"{pyproject_path}: cannot read: {reason}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # str(err) ends with "(at line N, column M)".
        raise WsConfigError(f"{pyproject_path}: invalid TOML: {err}") from None
    tool = document.get("tool", {})
    table = tool.get("ws_resilience", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise WsConfigError(f"{pyproject_path}: [{TOOL_TABLE}] must be a table")
    return table


# -- value validation (each returns the normalized value or raises) --------------------


def _show(value: Any) -> str:
    """A short repr of a bad value for an error message."""
    text = repr(value)
    if len(text) > _SHOWN_VALUE_MAX:
        text = text[: _SHOWN_VALUE_MAX - 3] + "..."
    return text


def _bad(where: str, key: str, value: Any, expected: str) -> WsConfigError:
    prefix = f"{where}: " if where else ""
    return WsConfigError(f"{prefix}{key} = {_show(value)} is invalid: expected {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds(where: str, key: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise _bad(where, key, value, "a number of seconds > 0")
    return float(value)


def _whole(where: str, key: str, value: Any, *, minimum: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _bad(where, key, value, what)
    return value


def _string(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, key, value, "a non-empty string")
    return value


def _string_list(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(where, key, value, "a list of non-empty strings")
    return tuple(value)


def validate_url(subject: str, value: Any) -> str:
    """Check a server URL: scheme ws or wss, a host, a valid port.

    Args:
        subject: how the value is named in the error, e.g. ``"--ws-url"`` or
            ``"pyproject.toml [tool.ws_resilience]: url"``.
    """
    if not isinstance(value, str):
        raise WsConfigError(
            f"{subject} = {_show(value)} is invalid: expected a ws:// or wss:// URL"
        )
    shown = f"{subject} = {_show(value)}"
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
    from pytest_ws_resilience.servers.asgi_app import parse_app_path  # phase-1 cycle break

    if isinstance(value, str):
        try:
            parse_app_path(value)
        except ValueError:
            pass
        else:
            return value.strip()
    raise WsConfigError(
        f"{subject} = {_show(value)} is invalid: expected 'module:attr' or "
        f"'module:factory()' (e.g. 'myapp.main:app')"
    )


def _path(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise _bad(where, key, value, "a path starting with '/'")
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
        raise _bad(where, key, value, f"at least one of {', '.join(AUTH_METHODS)}")
    for method in methods:
        if method not in AUTH_METHODS:
            raise WsConfigError(
                f"{where}: {key} = {_show(value)} has unknown method {method!r}; "
                f"known methods: {', '.join(AUTH_METHODS)}"
            )
    duplicates = sorted({m for m in methods if methods.count(m) > 1})
    if duplicates:
        raise WsConfigError(f"{where}: {key} = {_show(value)} lists {duplicates[0]!r} twice")
    return methods


_Validator = Callable[[str, str, Any], Any]


def _validator(key: str) -> _Validator:
    if key in _SECONDS_KEYS:
        return _seconds
    if key == "connect_retries":
        return lambda w, k, v: _whole(w, k, v, minimum=0, what="a whole number >= 0")
    if key == "max_message_size":
        return lambda w, k, v: _whole(w, k, v, minimum=1, what="a whole number of bytes > 0")
    if key == "url":
        return lambda w, k, v: validate_url(f"{w}: {k}", v)
    if key == "path":
        return _path
    if key == "auth_methods":
        return _auth_methods
    if key in _ENV_NAME_KEYS:
        return _env_var_name
    if key == "services":
        return _string_list
    return _string


# -- table validation -------------------------------------------------------------------


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


def _validate_settings_table(
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


def _table_name(env: str | None = None) -> str:
    if env is None:
        return f"[{TOOL_TABLE}]"
    return f"[{TOOL_TABLE}.envs.{env}]"


def _split_top_level(
    tool_config: Mapping[str, Any], origin: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate tolerated extras (``app``, the ``services`` table) from setting keys."""
    settings_part: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    where = f"{origin} {_table_name()}"
    for key, value in tool_config.items():
        if key in EXTRA_TOP_LEVEL_KEYS or (key == "services" and isinstance(value, dict)):
            extra[key] = value
        elif key == "services" and not isinstance(value, list):
            raise _bad(
                where, key, value, f"a list of service names or a [{TOOL_TABLE}.services] table"
            )
        else:
            settings_part[key] = value
    return settings_part, extra


def _validate_env_tables(envs: Any, origin: str) -> dict[str, dict[str, Any]]:
    where = f"{origin} {_table_name()}"
    if not isinstance(envs, dict):
        raise _bad(where, "envs", envs, f"a table of envs ([{TOOL_TABLE}.envs.NAME])")
    tables: dict[str, dict[str, Any]] = {}
    for name, table in envs.items():
        if not isinstance(table, dict):
            raise WsConfigError(
                f"{where}: envs.{name} = {_show(table)} is invalid: expected a table "
                f"{_table_name(name)}"
            )
        tables[name] = _validate_settings_table(
            f"{origin} {_table_name(name)}", table, SETTING_KEYS
        )
    return tables


# -- env selection ----------------------------------------------------------------------


def _select_env(
    cli_env: str | None, environ: Mapping[str, str], ini_env: str | None, known: Sequence[str]
) -> tuple[str, str]:
    """Return (env, source) by precedence; an unknown name is an error listing the known."""
    env_var = environ.get(ENV_VAR, "").strip()
    if cli_env is not None:
        env, source = cli_env, "--ws-env"
    elif env_var:
        env, source = env_var, ENV_VAR
    elif ini_env:
        env, source = ini_env, "ini ws_env"
    else:
        env, source = DEFAULT_ENV, Source.DEFAULT
    if env not in known:
        close = difflib.get_close_matches(env, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise WsConfigError(
            f"unknown env {env!r} (from {source}){hint}; known envs: {', '.join(known)}"
        )
    return env, source


# -- loading ------------------------------------------------------------------------------


def _pick(layers: Sequence[_Layer], key: str) -> tuple[Any, _Layer]:
    """The value of ``key`` from the highest layer that sets it (layers lowest first)."""
    for layer in reversed(layers):
        if key in layer.values:
            return layer.values[key], layer
    raise KeyError(key)  # pragma: no cover - the defaults layer sets every needed key


def _read_secret(
    layers: Sequence[_Layer], key: str, environ: Mapping[str, str], *, pem: bool
) -> tuple[str | None, str | None]:
    """Resolve ``*_env`` to (variable name, its value); errors never show the value."""
    name, layer = _pick(layers, key)
    if name is None:
        return None, None
    value = environ.get(name)
    if value is None:
        raise WsConfigError(
            f"{layer.where}: {key} names {name} but that environment variable is not set"
        )
    if not value.strip():
        raise WsConfigError(
            f"{layer.where}: {key} names {name} but that environment variable is empty"
        )
    register_secret(value)
    if pem and "-----BEGIN" not in value:
        raise WsConfigError(
            f"{layer.where}: {key} names {name} but its value is not PEM text "
            f"(expected '-----BEGIN ...')"
        )
    return name, value


def _timeout(layers: Sequence[_Layer], key: str) -> TimeoutValue:
    value, layer = _pick(layers, key)
    return TimeoutValue(None if value is None else float(value), layer.source)


def _describe(value: TimeoutValue) -> str:
    return f"{value.value:g}s, {value.source}"


def load_settings(
    *,
    cli_env: str | None,
    cli_url: str | None,
    cli_path: str | None = None,
    cli_app: str | None = None,
    cli_app_subprocess: bool = False,
    cli_app_share: bool = False,
    ini_env: str | None = None,
    environ: Mapping[str, str],
    tool_config: Mapping[str, Any],
    tool_config_origin: str = "pyproject.toml",
) -> WsSettings:
    """Resolve the settings of one run, with the source of every value.

    Args:
        cli_env: ``--ws-env``, if given.
        cli_url: ``--ws-url``, if given (overrides every configured URL).
        cli_path: ``--ws-path``, if given.
        cli_app: ``--ws-app``, if given: serve this ASGI app (beats any configured
            ``url``; an error together with ``--ws-url``).
        cli_app_subprocess: ``--ws-app-subprocess`` was given.
        cli_app_share: ``--ws-app-share`` was given (one app for all xdist workers).
        ini_env: the pytest ini value ``ws_env`` (empty or None = unset).
        environ: the process environment (``WS_ENV`` and the secret variables).
        tool_config: the ``[tool.ws_resilience]`` table (see `read_tool_config`).
        tool_config_origin: how the file is named in error messages.

    Raises:
        WsConfigError: anything wrong, as one line naming the key, table and value.
    """
    origin = tool_config_origin
    top_raw, extra = _split_top_level(tool_config, origin)
    top = _validate_settings_table(f"{origin} {_table_name()}", top_raw, _TOP_LEVEL_KEYS)
    env_tables = _validate_env_tables(top_raw.get("envs", {}), origin)

    custom_envs = sorted(name for name in env_tables if name not in BUILTIN_PROFILES)
    env, env_source = _select_env(cli_env, environ, ini_env, [*BUILTIN_PROFILES, *custom_envs])

    layers = [_Layer(Source.DEFAULT, "built-in defaults", BUILTIN_DEFAULTS)]
    if env in BUILTIN_PROFILES:
        layers.append(_Layer(profile_source(env), f"profile {env}", BUILTIN_PROFILES[env]))
    layers.append(_Layer(f"pyproject {_table_name()}", f"{origin} {_table_name()}", top))
    if env in env_tables:
        layers.append(
            _Layer(f"pyproject {_table_name(env)}", f"{origin} {_table_name(env)}", env_tables[env])
        )
    if cli_url is not None:
        layers.append(_Layer("--ws-url", "--ws-url", {"url": validate_url("--ws-url", cli_url)}))
    if cli_path is not None:
        path_value = _path("", "--ws-path", cli_path)
        layers.append(_Layer("--ws-path", "--ws-path", {"path": path_value}))

    recv = _timeout(layers, "recv_timeout")
    # Profiles and defaults hold no close timeout: it is derived unless a user wrote one.
    if any("close_timeout" in layer.values for layer in layers):
        close = _timeout(layers, "close_timeout")
    else:
        close = derive_close_timeout(recv)
    connect = _timeout(layers, "connect_timeout")
    agent = _timeout(layers, "agent_timeout")
    if agent.value is not None and recv.value is not None and recv.value < agent.value:
        raise WsConfigError(
            f"recv_timeout ({_describe(recv)}) is shorter than agent_timeout "
            f"({_describe(agent)}): clients would give up before the agent finishes"
        )

    url, url_layer = _pick(layers, "url")
    app, app_source, app_subprocess = _resolve_app(
        tool_config, origin, cli_app=cli_app, cli_url=cli_url, cli_app_subprocess=cli_app_subprocess
    )
    if app is not None and cli_app is None and url is not None:
        app = None  # the configured app serves envs without a url; this env has one
    if app is not None:
        url, url_layer = None, _Layer(app_source, app_source, {})

    secret_env, secret = _read_secret(layers, "jwt_secret_env", environ, pem=False)
    private_env, private_key = _read_secret(layers, "jwt_private_key_env", environ, pem=True)
    public_env, public_key = _read_secret(layers, "jwt_public_key_env", environ, pem=True)
    if secret is not None and private_key is not None:
        raise WsConfigError(
            f"env {env!r} sets both jwt_secret_env ({secret_env}, HS256) and "
            f"jwt_private_key_env ({private_env}, RS256); choose one"
        )

    def value(key: str) -> Any:
        return _pick(layers, key)[0]

    return WsSettings(
        env=env,
        env_source=env_source,
        url=url,
        url_source=url_layer.source,
        path=value("path"),
        recv_timeout=recv,
        close_timeout=close,
        connect_timeout=connect,
        agent_timeout=agent,
        connect_retries=value("connect_retries"),
        backoff=Backoff(base=value("backoff_base"), cap=value("backoff_cap")),
        max_message_size=value("max_message_size"),
        auth_methods=value("auth_methods") or (),
        jwt_secret=secret,
        jwt_secret_env=secret_env,
        jwt_public_key=public_key,
        jwt_public_key_env=public_env,
        jwt_private_key=private_key,
        jwt_private_key_env=private_env,
        jwt_audience=value("jwt_audience"),
        jwt_issuer=value("jwt_issuer"),
        auth_query_param=value("auth_query_param"),
        auth_cookie=value("auth_cookie"),
        auth_subprotocol=value("auth_subprotocol"),
        services=value("services") or (),
        service_specs=_service_specs(extra.get("services"), origin),
        app=app,
        app_source=app_source if app is not None else Source.DEFAULT,
        app_subprocess=app_subprocess,
        app_share=app is not None and _flag(tool_config, origin, "app_share", cli_app_share),
        extra=extra,
    )


def _service_specs(table: Any, origin: str) -> dict[str, ServiceSpec]:
    """The ``[tool.ws_resilience.services.NAME]`` tables as `ServiceSpec` objects.

    Parsed here, at load time, so a bad table is a usage error before any test runs.
    """
    if not table:
        return {}
    # Imported here: the services package uses this module's key-error helper.
    from pytest_ws_resilience.servers.spec import parse_services

    return parse_services(table, origin=origin)


def validate_server_cmd(settings: WsSettings, command: str) -> WsSettings:
    """``--ws-server-cmd``: the settings with that command as the server under test.

    The command line beats a configured ``url`` or ``app`` (as ``--ws-url`` does); it
    cannot be combined with ``--ws-url`` or ``--ws-app``, which also name the server.

    Raises:
        WsConfigError: an empty command, one without ``{port}``, or a conflicting option.
    """
    subject = "--ws-server-cmd"
    for source in ("--ws-url", "--ws-app"):
        if source in (settings.url_source, settings.app_source):
            raise WsConfigError(
                f"{subject} and {source} both name the server under test; choose one"
            )
    if not command.strip():
        raise WsConfigError(
            f"{subject} is empty: expected a command such as 'myserver --port {{port}}'"
        )
    if "{port}" not in command:
        raise WsConfigError(
            f"{subject} = {_show(command)} has no {{port}} placeholder: the plugin picks a free "
            f"loopback port and must tell the server (e.g. 'myserver --port {{port}}')"
        )
    return settings.with_changes(
        server_cmd=command.strip(),
        url=None,
        url_source=subject,
        app=None,
        app_source=Source.DEFAULT,
    )


def _flag(top: Mapping[str, Any], origin: str, key: str, cli: bool) -> bool:
    """A top-level true/false key, or'ed with its command-line flag."""
    value = top.get(key, False)
    if not isinstance(value, bool):
        raise _bad(f"{origin} {_table_name()}", key, value, "true or false")
    return value or cli


def _resolve_app(
    top: Mapping[str, Any],
    origin: str,
    *,
    cli_app: str | None,
    cli_url: str | None,
    cli_app_subprocess: bool,
) -> tuple[str | None, str, bool]:
    """The app to serve, its source, and whether in a subprocess (``--ws-app`` first)."""
    where = f"{origin} {_table_name()}"
    subprocess = top.get("app_subprocess", False)
    if not isinstance(subprocess, bool):
        raise _bad(where, "app_subprocess", subprocess, "true or false")
    subprocess = subprocess or cli_app_subprocess
    if cli_app is not None:
        if cli_url is not None:
            raise WsConfigError("--ws-app and --ws-url both name the server under test; choose one")
        return validate_app("--ws-app", cli_app), "--ws-app", subprocess
    if "app" in top:
        return validate_app(f"{where}: app", top["app"]), f"pyproject {_table_name()}", subprocess
    return None, Source.DEFAULT, subprocess
