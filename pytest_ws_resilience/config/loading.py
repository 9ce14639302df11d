"""Load `WsSettings` from the command line, ``WS_ENV``, ini and ``[tool.ws_resilience]``.

Pure logic: no pytest import, no sockets. The only I/O is `read_tool_config`, which
reads one TOML file. Everything else takes plain values, so every precedence rule and
every validation error is unit-tested without running pytest. The rules for single
values are in `pytest_ws_resilience.config.validation`.

Precedence, highest first, recorded per value as a source string:

- env selection: ``--ws-env`` > ``WS_ENV`` > ini ``ws_env`` > ``local``;
- each value: ``--ws-url`` / ``--ws-path`` > ``[tool.ws_resilience.envs.NAME]`` >
  ``[tool.ws_resilience]`` > built-in profile > built-in default;
- the server: ``--ws-server-cmd`` > ``--ws-app`` > a configured ``url`` > the
  configured ``app`` > the embedded reference server.

Settings are resolved once, here, with everything the run knows: the command line, and
what the plugin's process role adds (the run's secret, the directories an app imports
from, the URL of an app the xdist controller serves). Nothing patches them later.

Every problem raises `WsConfigError` with one line that names the key, the table and
the bad value (never a secret), so the plugin can turn it into a pytest usage error.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.profiles import (
    BUILTIN_DEFAULTS,
    BUILTIN_PROFILES,
    DEFAULT_ENV,
    derive_close_timeout,
    profile_source,
)
from pytest_ws_resilience.config.services import ServiceSpec, parse_services
from pytest_ws_resilience.config.settings import (
    ConnectionOptions,
    KeySettings,
    ServerChoice,
    ServiceSettings,
    WsSettings,
)
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue
from pytest_ws_resilience.config.validation import (
    ENV_VAR,
    SETTING_KEYS,
    TOOL_TABLE,
    TOP_LEVEL_KEYS,
    bad_value,
    require_services,
    show_value,
    table_name,
    validate_app,
    validate_app_env,
    validate_lifespan,
    validate_path,
    validate_server_cmd,
    validate_settings_table,
    validate_url,
)
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.redaction import register_secret

__all__ = ["CommandLine", "load_settings", "read_tool_config"]


@dataclass(frozen=True)
class CommandLine:
    """The plugin's command-line options as given (None / False: not given)."""

    env: str | None = None
    url: str | None = None
    path: str | None = None
    app: str | None = None
    app_subprocess: bool = False
    app_share: bool = False
    app_lifespan: str | None = None
    server_cmd: str | None = None
    require_services: bool = False


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


# -- tables -------------------------------------------------------------------------------


def _split_services_table(
    tool_config: Mapping[str, Any], origin: str
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The top-level table without a ``services`` table, and that table (or ``{}``).

    ``services`` is either the list of services every test needs (a setting) or the
    table of service definitions.
    """
    top: dict[str, Any] = {}
    services: Mapping[str, Any] = {}
    for key, value in tool_config.items():
        if key == "services" and isinstance(value, dict):
            services = value
        elif key == "services" and not isinstance(value, list):
            raise bad_value(
                f"{origin} {table_name()}",
                key,
                value,
                f"a list of service names or a [{TOOL_TABLE}.services] table",
            )
        else:
            top[key] = value
    return top, services


def _validate_env_tables(envs: Any, origin: str) -> dict[str, dict[str, Any]]:
    where = f"{origin} {table_name()}"
    if not isinstance(envs, dict):
        raise bad_value(where, "envs", envs, f"a table of envs ([{TOOL_TABLE}.envs.NAME])")
    tables: dict[str, dict[str, Any]] = {}
    for name, table in envs.items():
        if not isinstance(table, dict):
            raise WsConfigError(
                f"{where}: envs.{name} = {show_value(table)} is invalid: expected a table "
                f"{table_name(name)}"
            )
        tables[name] = validate_settings_table(f"{origin} {table_name(name)}", table, SETTING_KEYS)
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
    return TimeoutValue(float(value), layer.source)


def _describe(value: TimeoutValue) -> str:
    return f"{value.value:g}s, {value.source}"


def load_settings(
    *,
    cli: CommandLine = CommandLine(),
    ini_env: str | None = None,
    environ: Mapping[str, str],
    tool_config: Mapping[str, Any],
    tool_config_origin: str = "pyproject.toml",
    app_dirs: Sequence[str] = (),
    run_secret: str | None = None,
    shared_app_url: str | None = None,
    project_dir: str | None = None,
) -> WsSettings:
    """Resolve the settings of one run, with the source of every value.

    Args:
        cli: the command-line options.
        ini_env: the pytest ini value ``ws_env`` (empty or None = unset).
        environ: the process environment (``WS_ENV``, ``WS_REQUIRE_SERVICES`` and the
            secret variables).
        tool_config: the ``[tool.ws_resilience]`` table (see `read_tool_config`).
        tool_config_origin: how the file is named in error messages.
        app_dirs: where an app is imported from (rootdir and invocation directory).
        run_secret: the run's HS256 secret, used when no key is configured.
        project_dir: the project's directory (pytest's rootdir), where local commands
            run.
        shared_app_url: on an xdist worker of a ``app_share`` run, the URL of the app
            the controller serves (the worker talks to it instead of serving one).

    Raises:
        WsConfigError: anything wrong, as one line naming the key, table and value.
    """
    origin = tool_config_origin
    top_raw, services_table = _split_services_table(tool_config, origin)
    top = validate_settings_table(f"{origin} {table_name()}", top_raw, TOP_LEVEL_KEYS)
    env_tables = _validate_env_tables(top_raw.get("envs", {}), origin)

    custom_envs = sorted(name for name in env_tables if name not in BUILTIN_PROFILES)
    known_envs = (*BUILTIN_PROFILES, *custom_envs)
    env, env_source = _select_env(cli.env, environ, ini_env, known_envs)

    layers = [_Layer(Source.DEFAULT, "built-in defaults", BUILTIN_DEFAULTS)]
    if env in BUILTIN_PROFILES:
        layers.append(_Layer(profile_source(env), f"profile {env}", BUILTIN_PROFILES[env]))
    layers.append(_Layer(f"pyproject {table_name()}", f"{origin} {table_name()}", top))
    if env in env_tables:
        layers.append(
            _Layer(f"pyproject {table_name(env)}", f"{origin} {table_name(env)}", env_tables[env])
        )
    if cli.url is not None:
        layers.append(_Layer("--ws-url", "--ws-url", {"url": validate_url("--ws-url", cli.url)}))
    if cli.path is not None:
        path_value = validate_path("", "--ws-path", cli.path)
        layers.append(_Layer("--ws-path", "--ws-path", {"path": path_value}))

    recv = _timeout(layers, "recv_timeout")
    # Profiles and defaults hold no close timeout: it is derived unless a user wrote one.
    if any("close_timeout" in layer.values for layer in layers):
        close = _timeout(layers, "close_timeout")
    else:
        close = derive_close_timeout(recv)
    connect = _timeout(layers, "connect_timeout")
    agent_value, agent_layer = _pick(layers, "agent_timeout")
    agent = None if agent_value is None else TimeoutValue(float(agent_value), agent_layer.source)
    if agent is not None and recv.value < agent.value:
        raise WsConfigError(
            f"recv_timeout ({_describe(recv)}) is shorter than agent_timeout "
            f"({_describe(agent)}): clients would give up before the agent finishes"
        )

    server = _server_choice(layers, tool_config, origin, cli, app_dirs, shared_app_url)
    keys = _keys(layers, env, environ, run_secret)
    required, required_source = require_services(cli.require_services, environ)

    def value(key: str) -> Any:
        return _pick(layers, key)[0]

    return WsSettings(
        env=env,
        env_source=env_source,
        known_envs=known_envs,
        recv_timeout=recv,
        close_timeout=close,
        connect_timeout=connect,
        agent_timeout=agent,
        connect_retries=value("connect_retries"),
        backoff=Backoff(base=value("backoff_base"), cap=value("backoff_cap")),
        max_message_size=value("max_message_size"),
        auth_methods=value("auth_methods") or (),
        auth_query_param=value("auth_query_param"),
        auth_cookie=value("auth_cookie"),
        auth_subprotocol=value("auth_subprotocol"),
        greeting=value("greeting"),
        connection=ConnectionOptions(
            headers=value("headers"),
            origin=value("origin"),
            subprotocols=tuple(value("subprotocols")),
            user_agent=value("user_agent"),
            compression=value("compression"),
        ),
        keys=keys,
        server=server,
        services=ServiceSettings(
            needed=value("services") or (),
            specs=_service_specs(services_table, origin),
            required=required,
            required_source=required_source,
        ),
        project_dir=project_dir,
        idle_timeout=value("idle_timeout"),
        heartbeat_interval=value("heartbeat_interval"),
    )


def _keys(
    layers: Sequence[_Layer], env: str, environ: Mapping[str, str], run_secret: str | None
) -> KeySettings:
    secret_env, secret = _read_secret(layers, "jwt_secret_env", environ, pem=False)
    private_env, private_key = _read_secret(layers, "jwt_private_key_env", environ, pem=True)
    public_env, public_key = _read_secret(layers, "jwt_public_key_env", environ, pem=True)
    if secret is not None and private_key is not None:
        raise WsConfigError(
            f"env {env!r} sets both jwt_secret_env ({secret_env}, HS256) and "
            f"jwt_private_key_env ({private_env}, RS256); choose one"
        )
    configured = secret is not None or private_key is not None
    if run_secret is not None and not configured:
        register_secret(run_secret)
    return KeySettings(
        secret=secret,
        secret_env=secret_env,
        public_key=public_key,
        public_key_env=public_env,
        private_key=private_key,
        private_key_env=private_env,
        audience=_pick(layers, "jwt_audience")[0],
        issuer=_pick(layers, "jwt_issuer")[0],
        run_secret=None if configured else run_secret,
    )


def _server_choice(
    layers: Sequence[_Layer],
    top: Mapping[str, Any],
    origin: str,
    cli: CommandLine,
    app_dirs: Sequence[str],
    shared_app_url: str | None,
) -> ServerChoice:
    """Which server the run talks to, by the precedence in the module docstring."""
    url, url_layer = _pick(layers, "url")
    url_source = url_layer.source
    app, app_source, app_subprocess = _resolve_app(top, origin, cli)
    if app is not None and cli.app is None and url is not None:
        app = None  # the configured app serves envs without a url; this env has one
    if app is not None:
        url, url_source = None, app_source
    command = None
    if cli.server_cmd is not None:
        command = validate_server_cmd(cli.server_cmd, cli_url=cli.url, cli_app=cli.app)
        url, url_source, app = None, "--ws-server-cmd", None
    # Checked whether or not an app is served: a bad value is an error in every env.
    share = _flag(top, origin, "app_share", cli) and app is not None
    lifespan, lifespan_source = _lifespan(top, origin, cli)
    app_env = validate_app_env(f"{origin} {table_name()}: app_env", top.get("app_env", {}))
    if shared_app_url is not None and app is not None:
        # A worker of an app_share run: the controller serves the app for everyone.
        url, url_source, app = shared_app_url, f"app {app} shared by the xdist controller", None
    return ServerChoice(
        url=url,
        url_source=url_source,
        path=_pick(layers, "path")[0],
        app=app,
        app_source=app_source if app is not None or share else Source.DEFAULT,
        app_subprocess=app_subprocess,
        app_share=share,
        app_dirs=tuple(app_dirs) if app is not None else (),
        app_lifespan=lifespan,
        app_lifespan_source=lifespan_source,
        app_env=app_env,
        command=command,
    )


def _lifespan(top: Mapping[str, Any], origin: str, cli: CommandLine) -> tuple[str, str]:
    """How the app's lifespan runs, and where that came from (``--ws-app-lifespan`` >
    ``app_lifespan`` > "auto")."""
    if cli.app_lifespan is not None:
        return validate_lifespan("--ws-app-lifespan", cli.app_lifespan), "--ws-app-lifespan"
    if "app_lifespan" in top:
        where = f"{origin} {table_name()}: app_lifespan"
        return validate_lifespan(where, top["app_lifespan"]), f"pyproject {table_name()}"
    return "auto", Source.DEFAULT


def _service_specs(table: Mapping[str, Any], origin: str) -> dict[str, ServiceSpec]:
    """The ``[tool.ws_resilience.services.NAME]`` tables as `ServiceSpec` objects.

    Parsed here, at load time, so a bad table is a usage error before any test runs.
    """
    return parse_services(table, origin=origin) if table else {}


def _flag(top: Mapping[str, Any], origin: str, key: str, cli: CommandLine) -> bool:
    """A top-level true/false key of the app, or'ed with its command-line flag.

    Raises:
        WsConfigError: not true or false; or true in a file that configures no app
            (``app``), when no ``--ws-app`` names one either: the key would do nothing.
    """
    value = top.get(key, False)
    where = f"{origin} {table_name()}"
    if not isinstance(value, bool):
        raise bad_value(where, key, value, "true or false")
    if value and "app" not in top and cli.app is None:
        raise WsConfigError(
            f'{where}: {key} = true needs an app to serve: set app = "module:attr" '
            f"(or pass --ws-app)"
        )
    return value or bool(getattr(cli, key))


def _resolve_app(
    top: Mapping[str, Any], origin: str, cli: CommandLine
) -> tuple[str | None, str, bool]:
    """The app to serve, its source, and whether in a subprocess (``--ws-app`` first)."""
    where = f"{origin} {table_name()}"
    subprocess = _flag(top, origin, "app_subprocess", cli)
    if cli.app is not None:
        if cli.url is not None:
            raise WsConfigError("--ws-app and --ws-url both name the server under test; choose one")
        return validate_app("--ws-app", cli.app), "--ws-app", subprocess
    if "app" in top:
        return validate_app(f"{where}: app", top["app"]), f"pyproject {table_name()}", subprocess
    return None, Source.DEFAULT, subprocess
