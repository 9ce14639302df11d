"""Connection options, greeting, app lifespan/env and routes: loaded, validated, shown."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ws_resilience.config.loading import CommandLine, load_settings
from pytest_ws_resilience.config.routes import fill_path, url_for
from pytest_ws_resilience.config.settings import ConnectionOptions, WsSettings
from pytest_ws_resilience.errors import WsConfigError


def _load(tool: dict[str, Any], cli: CommandLine | None = None) -> WsSettings:
    return load_settings(
        cli=cli or CommandLine(),
        ini_env=None,
        environ={},
        tool_config=tool,
        tool_config_origin="pyproject.toml",
        app_dirs=(),
        run_secret=None,
    )


def test_connection_options_default_to_a_plain_handshake() -> None:
    settings = _load({})
    assert settings.connection == ConnectionOptions()
    assert settings.connection.compression is True
    assert settings.greeting == "connection_established"
    assert not settings.unauthenticated


def test_connection_options_come_from_the_env_table_over_the_top_level() -> None:
    settings = _load(
        {
            "headers": {"X-Team": "a"},
            "origin": "http://localhost:8000",
            "envs": {"ci": {"origin": "https://ci.example", "compression": False}},
        },
        CommandLine(env="ci"),
    )
    assert settings.connection.headers == (("X-Team", "a"),)
    assert settings.connection.origin == "https://ci.example"
    assert settings.connection.compression is False


def test_auth_none_alone_means_an_unauthenticated_server() -> None:
    assert _load({"auth_methods": ["none"]}).unauthenticated
    assert not _load({"auth_methods": ["header", "none"]}).unauthenticated


def test_greeting_false_means_no_greeting_frame() -> None:
    assert _load({"greeting": False}).greeting is None
    assert _load({"greeting": "hello"}).greeting == "hello"


@pytest.mark.parametrize(
    ("tool", "words"),
    [
        ({"headers": ["X-A"]}, "a table of header names"),
        ({"headers": {"bad name": "v"}}, "invalid header name"),
        ({"headers": {"Origin": "http://x"}}, "use origin ="),
        ({"headers": {"Sec-WebSocket-Protocol": "x"}}, "use subprotocols"),
        ({"headers": {"X-A": 1}}, "one-line string"),
        ({"origin": "localhost"}, "an origin such as"),
        ({"compression": "no"}, "true or false"),
        ({"greeting": True}, "or false for none"),
        ({"subprotocols": "chat"}, "a list of non-empty strings"),
        ({"app": "a:b", "app_lifespan": "maybe"}, "expected one of auto, on, off"),
        ({"app": "a:b", "app_env": {"1X": "v"}}, "invalid variable name"),
        ({"app": "a:b", "app_env": {"X": 1}}, "expected a string value"),
    ],
)
def test_bad_connection_values_get_one_line_naming_the_key(
    tool: dict[str, Any], words: str
) -> None:
    with pytest.raises(WsConfigError) as info:
        _load(tool)
    message = str(info.value)
    assert "\n" not in message
    assert words in message


def test_header_values_are_never_shown_in_errors_or_reprs() -> None:
    with pytest.raises(WsConfigError) as info:
        _load({"headers": {"X-Api-Key": "sekret\nvalue"}})
    assert "sekret" not in str(info.value)
    options = ConnectionOptions(headers=(("Authorization", "Bearer abc.def"),))
    assert "abc.def" not in repr(options)


def test_app_lifespan_from_the_command_line_beats_the_file() -> None:
    settings = _load(
        {"app": "a:b", "app_lifespan": "on", "app_env": {"DJANGO_SETTINGS_MODULE": "m.s"}},
        CommandLine(app_lifespan="off"),
    )
    assert settings.server.app_lifespan == "off"
    assert settings.server.app_lifespan_source == "--ws-app-lifespan"
    assert settings.server.app_env == (("DJANGO_SETTINGS_MODULE", "m.s"),)
    assert _load({"app": "a:b"}).server.app_lifespan == "auto"


def test_merged_options_let_a_client_replace_a_configured_header() -> None:
    base = ConnectionOptions(headers=(("X-A", "1"), ("X-B", "2")), origin="http://a")
    merged = base.merged(headers={"x-a": "9"}, origin="http://b")
    assert merged.headers == (("X-B", "2"), ("x-a", "9"))
    assert merged.origin == "http://b"
    assert base.merged() == base


def test_routes_fill_templates_and_keep_the_server_address() -> None:
    assert url_for("ws://127.0.0.1:9/ws", "/chat/{room}", {"room": "a/b"}) == (
        "ws://127.0.0.1:9/chat/a%2Fb"
    )
    assert url_for("wss://h:1/x?q=1", "/y?z=2") == "wss://h:1/y?z=2"
    assert fill_path("/plain") == "/plain"


@pytest.mark.parametrize(
    ("template", "params", "words"),
    [
        ("chat", {}, "must start with '/'"),
        ("/chat/{room}", {}, "needs a value for room"),
        ("/chat", {"room": "x"}, "no placeholder for room"),
        ("/chat/{room", {"room": "x"}, "malformed"),
        ("/chat/{0}", {}, "is not a name"),
    ],
)
def test_bad_routes_say_what_is_wrong(template: str, params: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        fill_path(template, params)
