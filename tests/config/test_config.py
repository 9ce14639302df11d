"""Unit tests of configuration loading: pure functions, plain mappings, no pytest run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.loading import CommandLine, load_settings, read_tool_config
from pytest_ws_resilience.config.profiles import (
    BUILTIN_DEFAULTS,
    BUILTIN_PROFILES,
    DERIVED_CLOSE_SOURCE,
    derive_close_timeout,
)
from pytest_ws_resilience.config.settings import DEFAULT_MAX_MESSAGE_SIZE, WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.redaction import redact

TOP = "pyproject [tool.ws_resilience]"
FAKE_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n-----END PRIVATE KEY-----"
)


def env_table(name: str) -> str:
    return f"pyproject [tool.ws_resilience.envs.{name}]"


def load(
    tool: dict[str, Any] | None = None,
    *,
    cli_env: str | None = None,
    cli_url: str | None = None,
    cli_path: str | None = None,
    ini_env: str | None = None,
    environ: dict[str, str] | None = None,
) -> WsSettings:
    return load_settings(
        cli=CommandLine(env=cli_env, url=cli_url, path=cli_path),
        ini_env=ini_env,
        environ=environ or {},
        tool_config=tool or {},
    )


def config_error(tool: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """Load, expect a WsConfigError, check it is one line, return its message."""
    with pytest.raises(WsConfigError) as excinfo:
        load(tool, **kwargs)
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


# -- env selection -------------------------------------------------------------------


def test_env_defaults_to_local_with_default_source() -> None:
    settings = load()
    assert (settings.env, settings.env_source) == ("local", "default")


def test_ini_ws_env_beats_the_default() -> None:
    settings = load(ini_env="staging")
    assert (settings.env, settings.env_source) == ("staging", "ini ws_env")


def test_ws_env_variable_beats_ini() -> None:
    settings = load(ini_env="staging", environ={"WS_ENV": "production"})
    assert (settings.env, settings.env_source) == ("production", "WS_ENV")


def test_cli_ws_env_beats_the_variable_and_ini() -> None:
    settings = load(cli_env="staging", ini_env="local", environ={"WS_ENV": "production"})
    assert (settings.env, settings.env_source) == ("staging", "--ws-env")


def test_empty_ws_env_variable_is_ignored() -> None:
    settings = load(ini_env="staging", environ={"WS_ENV": ""})
    assert (settings.env, settings.env_source) == ("staging", "ini ws_env")


def test_unknown_env_from_cli_lists_known_envs() -> None:
    message = config_error(cli_env="nope")
    assert "unknown env 'nope' (from --ws-env)" in message
    assert "known envs: local, staging, production" in message


def test_unknown_env_from_variable_names_the_variable_and_suggests() -> None:
    message = config_error(environ={"WS_ENV": "stagin"})
    assert "unknown env 'stagin' (from WS_ENV)" in message
    assert "did you mean 'staging'?" in message


def test_env_defined_in_pyproject_is_selectable_and_listed() -> None:
    tool = {"envs": {"qa": {"url": "wss://qa.example.com/ws"}}}
    settings = load(tool, cli_env="qa")
    assert settings.env == "qa"
    assert settings.server.url == "wss://qa.example.com/ws"
    assert settings.server.url_source == env_table("qa")
    assert "known envs: local, staging, production, qa" in config_error(tool, cli_env="dev")


# -- built-in profiles and defaults ---------------------------------------------------


@pytest.mark.parametrize(
    ("env", "recv", "close"),
    [("local", 10, 12), ("staging", 300, 302), ("production", 120, 122)],
)
def test_builtin_profile_timeouts_and_sources(env: str, recv: float, close: float) -> None:
    settings = load(cli_env=env)
    assert settings.recv_timeout == TimeoutValue(recv, f"profile {env}")
    assert settings.close_timeout == TimeoutValue(close, f"profile {env}")


def test_builtin_profiles_table_is_the_spec_table() -> None:
    assert {name: p["recv_timeout"] for name, p in BUILTIN_PROFILES.items()} == {
        "local": 10,
        "staging": 300,
        "production": 120,
    }


def test_builtin_defaults_for_other_keys() -> None:
    settings = load()
    assert settings.connect_timeout == TimeoutValue(10, "default")
    assert settings.agent_timeout is None  # not configured: nothing is checked
    assert settings.connect_retries == 3
    assert settings.backoff == Backoff(base=1.0, factor=2.0, cap=8.0)
    assert settings.max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 5 * 1024 * 1024
    assert (settings.server.url, settings.server.url_source, settings.server.path) == (
        None,
        "default",
        "/",
    )
    assert settings.auth_methods == ()
    assert (settings.auth_query_param, settings.auth_cookie, settings.auth_subprotocol) == (
        "token",
        "access_token",
        "jwt-auth",
    )
    assert settings.keys.secret is None and settings.keys.private_key is None
    assert settings.server.kind == "embedded"
    assert settings.services.specs == {} and not settings.services.required


def test_no_configuration_matches_the_dataclass_defaults() -> None:
    """The library default `WsSettings()` and an unconfigured plugin run agree."""
    assert load() == WsSettings()


def test_derive_close_timeout_keeps_profile_source_marks_user_values() -> None:
    assert derive_close_timeout(TimeoutValue(300, "profile staging")) == TimeoutValue(
        302, "profile staging"
    )
    assert derive_close_timeout(TimeoutValue(60, TOP)) == TimeoutValue(62, DERIVED_CLOSE_SOURCE)
    assert DERIVED_CLOSE_SOURCE == "derived: recv_timeout + 2"


# -- per-value precedence --------------------------------------------------------------


def test_top_level_recv_overrides_profile_and_close_is_derived() -> None:
    settings = load({"recv_timeout": 60}, cli_env="staging")
    assert settings.recv_timeout == TimeoutValue(60, TOP)
    assert settings.close_timeout == TimeoutValue(62, "derived: recv_timeout + 2")


def test_env_table_overrides_top_level() -> None:
    tool = {"recv_timeout": 60, "envs": {"staging": {"recv_timeout": 90}}}
    assert load(tool, cli_env="staging").recv_timeout == TimeoutValue(90, env_table("staging"))
    # Another env's table does not apply.
    assert load(tool, cli_env="production").recv_timeout == TimeoutValue(60, TOP)


def test_explicit_close_timeout_is_kept_even_below_recv() -> None:
    tool = {"close_timeout": 5, "envs": {"staging": {"recv_timeout": 90}}}
    settings = load(tool, cli_env="staging")
    assert settings.recv_timeout == TimeoutValue(90, env_table("staging"))
    assert settings.close_timeout == TimeoutValue(5, TOP)


def test_user_env_without_timeouts_uses_builtin_defaults() -> None:
    settings = load({"envs": {"qa": {}}}, cli_env="qa")
    assert settings.recv_timeout == TimeoutValue(10, "default")
    assert settings.close_timeout == TimeoutValue(12, "default")


def test_builtin_env_can_be_overridden_in_pyproject() -> None:
    tool = {"envs": {"production": {"recv_timeout": 30, "connect_retries": 0}}}
    settings = load(tool, cli_env="production")
    assert settings.recv_timeout == TimeoutValue(30, env_table("production"))
    assert settings.close_timeout == TimeoutValue(32, DERIVED_CLOSE_SOURCE)
    assert settings.connect_retries == 0


def test_url_precedence_cli_over_env_table_over_top_level() -> None:
    tool = {"url": "ws://127.0.0.1:9001/ws", "envs": {"staging": {"url": "wss://s.example.com/"}}}
    assert (load(tool).server.url, load(tool).server.url_source) == ("ws://127.0.0.1:9001/ws", TOP)
    staging = load(tool, cli_env="staging")
    assert (staging.server.url, staging.server.url_source) == (
        "wss://s.example.com/",
        env_table("staging"),
    )
    cli = load(tool, cli_env="staging", cli_url="ws://127.0.0.1:9002/")
    assert (cli.server.url, cli.server.url_source) == ("ws://127.0.0.1:9002/", "--ws-url")


def test_path_precedence_cli_over_config() -> None:
    tool = {"path": "/ws", "envs": {"staging": {"path": "/agent"}}}
    assert load(tool).server.path == "/ws"
    assert load(tool, cli_env="staging").server.path == "/agent"
    assert load(tool, cli_env="staging", cli_path="/v2/ws").server.path == "/v2/ws"


def test_every_setting_key_is_read_and_normalized() -> None:
    tool = {
        "connect_timeout": 3,
        "agent_timeout": 4.5,
        "connect_retries": 5,
        "backoff_base": 0.5,
        "backoff_cap": 4,
        "max_message_size": 1024,
        "auth_methods": ["header", "query"],
        "jwt_audience": "api",
        "jwt_issuer": "https://issuer.example.com",
        "auth_query_param": "access_token",
        "auth_cookie": "session",
        "auth_subprotocol": "bearer",
        "services": ["agent", "redis"],
    }
    settings = load(tool)
    assert settings.connect_timeout == TimeoutValue(3.0, TOP)
    assert settings.agent_timeout == TimeoutValue(4.5, TOP)
    assert settings.connect_retries == 5
    assert settings.backoff == Backoff(base=0.5, cap=4.0)
    assert settings.max_message_size == 1024
    assert settings.auth_methods == ("header", "query")
    assert settings.effective_auth_methods == ("header", "query")
    assert (settings.keys.audience, settings.keys.issuer) == ("api", "https://issuer.example.com")
    assert (settings.auth_query_param, settings.auth_cookie, settings.auth_subprotocol) == (
        "access_token",
        "session",
        "bearer",
    )
    assert settings.services.needed == ("agent", "redis")


def test_app_key_and_services_table_are_not_settings_of_an_env() -> None:
    services = {"agent": {"image": "example/agent:1", "port": 8000}}
    settings = load({"app": "myapp.main:app", "services": services})
    assert (settings.server.app, settings.server.kind) == ("myapp.main:app", "app")
    assert list(settings.services.specs) == ["agent"]
    assert settings.services.specs["agent"].image == "example/agent:1"
    assert settings.services.needed == ()


# -- secrets ---------------------------------------------------------------------------


def test_jwt_secret_is_read_from_the_named_variable_and_redacted() -> None:
    secret = "hs256-secret-from-the-environment-4f1c"
    settings = load({"jwt_secret_env": "APP_JWT_SECRET"}, environ={"APP_JWT_SECRET": secret})
    assert settings.keys.secret == secret
    assert settings.keys.secret_env == "APP_JWT_SECRET"
    assert settings.keys.configured
    assert secret not in repr(settings)
    assert secret not in redact(f"config uses {secret}")


def test_rs256_keys_are_read_from_their_variables() -> None:
    tool = {"jwt_private_key_env": "PRIV_PEM", "jwt_public_key_env": "PUB_PEM"}
    public = FAKE_PEM.replace("PRIVATE", "PUBLIC")
    settings = load(tool, environ={"PRIV_PEM": FAKE_PEM, "PUB_PEM": public})
    assert (settings.keys.private_key, settings.keys.public_key) == (FAKE_PEM, public)
    assert (settings.keys.private_key_env, settings.keys.public_key_env) == ("PRIV_PEM", "PUB_PEM")
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw" not in repr(settings)


def test_secret_variable_only_needed_for_the_selected_env() -> None:
    tool = {"envs": {"staging": {"jwt_secret_env": "STAGING_SECRET"}}}
    assert load(tool).keys.secret is None  # local: fine without the staging variable
    message = config_error(tool, cli_env="staging")
    assert message == (
        "pyproject.toml [tool.ws_resilience.envs.staging]: jwt_secret_env names "
        "STAGING_SECRET but that environment variable is not set"
    )


def test_empty_secret_variable_is_an_error() -> None:
    message = config_error({"jwt_secret_env": "APP_SECRET"}, environ={"APP_SECRET": " "})
    assert "jwt_secret_env names APP_SECRET but that environment variable is empty" in message


@pytest.mark.parametrize("key", ["jwt_private_key_env", "jwt_public_key_env"])
def test_key_variable_not_set_or_not_pem(key: str) -> None:
    assert f"{key} names KEY_VAR but that environment variable is not set" in config_error(
        {key: "KEY_VAR"}
    )
    not_pem = "this-is-not-a-pem-but-still-secret-93ab"
    message = config_error({key: "KEY_VAR"}, environ={"KEY_VAR": not_pem})
    assert f"{key} names KEY_VAR but its value is not PEM text" in message
    assert not_pem not in message


def test_secret_and_private_key_together_is_an_error() -> None:
    tool = {"jwt_secret_env": "S", "jwt_private_key_env": "P"}
    message = config_error(tool, environ={"S": "some-shared-secret-value", "P": FAKE_PEM})
    assert "sets both jwt_secret_env" in message and "choose one" in message
    assert "some-shared-secret-value" not in message


@pytest.mark.parametrize(
    ("key", "env_key"),
    [
        ("jwt_secret", "jwt_secret_env"),
        ("secret", "jwt_secret_env"),
        ("jwt_private_key", "jwt_private_key_env"),
    ],
)
def test_secret_written_in_the_file_is_refused_without_echoing_it(key: str, env_key: str) -> None:
    value = "pasted-secret-value-should-never-print"
    cases: list[tuple[dict[str, Any], str]] = [
        ({key: value}, "[tool.ws_resilience]"),
        ({"envs": {"staging": {key: value}}}, "[tool.ws_resilience.envs.staging]"),
    ]
    for tool, table in cases:
        message = config_error(tool)
        assert f"pyproject.toml {table}: {key} must not be set in the file" in message
        assert f"environment variable named by {env_key}" in message
        assert value not in message


def test_secret_pasted_into_an_env_key_is_refused_without_echoing_it() -> None:
    value = "s3cr3t value with spaces!"
    message = config_error({"jwt_secret_env": value})
    assert "jwt_secret_env must be the name of an environment variable" in message
    assert value not in message


# -- validation errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        (
            {"recv_timeout": "soon"},
            "recv_timeout = 'soon' is invalid: expected a number of seconds",
        ),
        ({"recv_timeout": True}, "recv_timeout = True is invalid"),
        ({"recv_timeout": 0}, "recv_timeout = 0 is invalid"),
        ({"close_timeout": -1}, "close_timeout = -1 is invalid"),
        ({"connect_timeout": math.inf}, "connect_timeout = inf is invalid"),
        ({"agent_timeout": math.nan}, "agent_timeout = nan is invalid"),
        ({"backoff_base": "1s"}, "backoff_base = '1s' is invalid"),
        ({"backoff_cap": 0}, "backoff_cap = 0 is invalid"),
        (
            {"connect_retries": 1.5},
            "connect_retries = 1.5 is invalid: expected a whole number from 0 to 100",
        ),
        ({"connect_retries": -1}, "connect_retries = -1 is invalid"),
        ({"connect_retries": False}, "connect_retries = False is invalid"),
        (
            {"max_message_size": 0},
            "max_message_size = 0 is invalid: expected a whole number from 1 to",
        ),
        ({"max_message_size": "5MiB"}, "max_message_size = '5MiB' is invalid"),
        ({"auth_methods": "query"}, "auth_methods = 'query' is invalid: expected a list"),
        ({"auth_methods": []}, "auth_methods = [] is invalid: expected at least one of"),
        ({"auth_methods": ["query", "smoke"]}, "has unknown method 'smoke'; known methods:"),
        ({"auth_methods": ["query", "query"]}, "lists 'query' twice"),
        ({"services": "redis"}, "services = 'redis' is invalid: expected a list of service names"),
        ({"services": [1]}, "services = [1] is invalid: expected a list of non-empty strings"),
        ({"jwt_audience": 5}, "jwt_audience = 5 is invalid: expected a non-empty string"),
        ({"auth_cookie": ""}, "auth_cookie = '' is invalid: expected a non-empty string"),
        ({"path": "ws"}, "path = 'ws' is invalid: expected a path starting with '/'"),
        ({"url": "http://example.com/ws"}, "url = 'http://example.com/ws' is not a WebSocket URL"),
        ({"url": "ws:///ws"}, "url = 'ws:///ws' is not a valid URL: it has no host"),
        ({"url": "ws://example.com:99999/"}, "is not a valid URL: bad port"),
        ({"url": "ws://example.com:0/"}, "port 0"),
        ({"url": 8080}, "url = 8080 is invalid: expected a ws:// or wss:// URL"),
        ({"envs": 3}, "envs = 3 is invalid: expected a table of envs"),
        ({"envs": {"qa": 3}}, "envs.qa = 3 is invalid: expected a table"),
    ],
)
def test_invalid_value_names_key_table_and_value(tool: dict[str, Any], expected: str) -> None:
    message = config_error(tool)
    assert message.startswith("pyproject.toml [tool.ws_resilience]: ")
    assert expected in message


def test_invalid_value_in_env_table_names_that_table_even_for_another_env() -> None:
    message = config_error({"envs": {"staging": {"recv_timeout": "soon"}}}, cli_env="local")
    assert message == (
        "pyproject.toml [tool.ws_resilience.envs.staging]: recv_timeout = 'soon' is invalid: "
        "expected a number of seconds from 1 ms to 1 day"
    )


def test_unknown_key_suggests_the_closest_known_key() -> None:
    assert config_error({"recv_timout": 3}) == (
        "pyproject.toml [tool.ws_resilience]: unknown key 'recv_timout' "
        "(did you mean 'recv_timeout'?)"
    )
    message = config_error({"envs": {"staging": {"conect_timeout": 3}}})
    assert message == (
        "pyproject.toml [tool.ws_resilience.envs.staging]: unknown key 'conect_timeout' "
        "(did you mean 'connect_timeout'?)"
    )


def test_unknown_key_without_a_close_match_lists_known_keys() -> None:
    message = config_error({"zzz": 1})
    assert "unknown key 'zzz'; known keys: url, path, recv_timeout" in message


def test_top_level_only_keys_are_unknown_in_env_tables() -> None:
    assert "unknown key 'app'" in config_error({"envs": {"qa": {"app": "m:a"}}})
    assert "unknown key 'envs'" in config_error({"envs": {"qa": {"envs": {}}}})


def test_error_messages_use_the_given_origin() -> None:
    with pytest.raises(WsConfigError, match=r"^conf/pyproject\.toml \[tool\.ws_resilience\]: "):
        load_settings(
            environ={},
            tool_config={"recv_timeout": "x"},
            tool_config_origin="conf/pyproject.toml",
        )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/ws", "--ws-url = 'http://127.0.0.1:8000/ws' is not a WebSocket"),
        ("ws://127.0.0.1:70000/", "--ws-url = 'ws://127.0.0.1:70000/' is not a valid URL"),
        ("127.0.0.1:8000", "is not a WebSocket URL: the scheme must be ws or wss"),
    ],
)
def test_malformed_cli_url(url: str, expected: str) -> None:
    assert expected in config_error(cli_url=url)


def test_cli_path_must_start_with_slash() -> None:
    assert config_error(cli_path="ws") == (
        "--ws-path = 'ws' is invalid: expected a path starting with '/'"
    )


def test_recv_timeout_shorter_than_agent_timeout_is_an_error() -> None:
    assert config_error({"agent_timeout": 30}) == (
        "recv_timeout (10s, profile local) is shorter than agent_timeout "
        "(30s, pyproject [tool.ws_resilience]): clients would give up before the agent finishes"
    )


def test_agent_timeout_within_recv_timeout_is_fine() -> None:
    settings = load({"agent_timeout": 30}, cli_env="staging")
    assert settings.agent_timeout == TimeoutValue(30, TOP)
    assert load({"agent_timeout": 10}).agent_timeout.value == 10  # equal is allowed


def test_builtin_defaults_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        BUILTIN_DEFAULTS["connect_retries"] = 9  # type: ignore[index]


# -- reading pyproject.toml ------------------------------------------------------------


def test_read_tool_config_without_a_file_is_empty(tmp_path: Path) -> None:
    assert read_tool_config(None) == {}
    assert read_tool_config(tmp_path / "pyproject.toml") == {}


def test_read_tool_config_returns_the_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "x"\n\n[tool.ws_resilience]\nrecv_timeout = 30\n\n'
        '[tool.ws_resilience.envs.qa]\nurl = "ws://127.0.0.1:9000/"\n'
    )
    assert read_tool_config(path) == {
        "recv_timeout": 30,
        "envs": {"qa": {"url": "ws://127.0.0.1:9000/"}},
    }
    path.write_text('[project]\nname = "x"\n')
    assert read_tool_config(path) == {}


def test_read_tool_config_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.ws_resilience]\nrecv_timeout = soon\n")
    with pytest.raises(WsConfigError) as excinfo:
        read_tool_config(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message
    assert "\n" not in message


def test_read_tool_config_rejects_a_non_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool]\nws_resilience = 3\n")
    with pytest.raises(WsConfigError, match=r"\[tool\.ws_resilience\] must be a table"):
        read_tool_config(path)
