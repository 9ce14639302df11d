"""``idle_timeout`` and ``heartbeat_interval``: loading, validation, the client's keepalive
options and the start-up warning (`WsHeartbeatWarning`), the last through pytester runs."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ws_resilience.client.arguments import heartbeat_options
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.heartbeat import heartbeat_problem, longest_heartbeat
from pytest_ws_resilience.config.loading import CommandLine, load_settings
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig


def load(tool: dict[str, Any], env: str | None = None) -> WsSettings:
    return load_settings(environ={}, tool_config=tool, cli=CommandLine(env=env))


# -- loading and validation -------------------------------------------------------------------


def test_keys_default_to_unknown_and_load_per_env() -> None:
    settings = load({})
    assert (settings.idle_timeout, settings.heartbeat_interval) == (None, None)
    tool = {
        "idle_timeout": 60,
        "heartbeat_interval": 25.5,
        "envs": {"production": {"idle_timeout": 30, "heartbeat_interval": False}},
    }
    assert (load(tool).idle_timeout, load(tool).heartbeat_interval) == (60.0, 25.5)
    prod = load(tool, "production")
    assert (prod.idle_timeout, prod.heartbeat_interval) == (30.0, False)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("idle_timeout", 0, "idle_timeout = 0 is invalid: expected a positive number of seconds"),
        ("idle_timeout", False, "idle_timeout = False is invalid: expected a positive number"),
        ("idle_timeout", "30s", "idle_timeout = '30s' is invalid"),
        ("heartbeat_interval", -1, "expected a positive number of seconds, or false for no"),
        ("heartbeat_interval", True, "heartbeat_interval = True is invalid"),
        ("heartbeat_interval", float("nan"), "heartbeat_interval = nan is invalid"),
        ("heartbeat_interval", 1e9, "from 1 ms to 1 day"),
    ],
)
def test_bad_values_are_one_line_errors(key: str, value: Any, expected: str) -> None:
    with pytest.raises(WsConfigError) as info:
        load({key: value})
    message = str(info.value)
    assert message.startswith("pyproject.toml [tool.ws_resilience]: ")
    assert expected in message
    assert "\n" not in message


# -- the check ----------------------------------------------------------------------------------


def test_heartbeat_problem_names_each_misalignment() -> None:
    assert heartbeat_problem(None, None) is None
    assert heartbeat_problem(None, False) is None
    assert longest_heartbeat(30) == pytest.approx(24)
    assert heartbeat_problem(30, 24) is None
    assert heartbeat_problem(30, 10) is None
    unset = heartbeat_problem(30, None)
    off = heartbeat_problem(30, False)
    slow = heartbeat_problem(30, 30)
    close = heartbeat_problem(30, 25)
    assert unset is not None and "heartbeat_interval is not" in unset
    assert off is not None and "heartbeat_interval = false" in off
    assert slow is not None
    assert "heartbeat_interval = 30 s does not beat idle_timeout = 30 s" in slow
    assert close is not None and "at most 24 s (idle_timeout minus 20%)" in close


# -- the client's keepalive ---------------------------------------------------------------------


def test_heartbeat_options_fill_websockets_keepalive_under_the_tests_own() -> None:
    assert heartbeat_options(None, {"x": 1}) == {"x": 1}
    assert heartbeat_options(5.0, {}) == {"ping_interval": 5.0, "ping_timeout": 5.0}
    assert heartbeat_options(5.0, {"ping_timeout": 2}) == {"ping_interval": 5.0, "ping_timeout": 2}
    assert heartbeat_options(5.0, {"ping_interval": None}) == {"ping_interval": None}
    assert heartbeat_options(False, {}) == {"ping_interval": None}


@pytest.mark.asyncio
async def test_a_client_pings_at_the_configured_heartbeat() -> None:
    tokens = TokenFactory()
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    async with ReferenceServer(config) as server:
        for heartbeat, expected in ((0.25, 0.25), (False, None), (None, 20)):
            settings = WsSettings(heartbeat_interval=heartbeat)
            client = WsClient(server.url, user=tokens.user(), settings=settings)
            await client.connect()
            try:
                assert client.connection is not None
                assert client.connection.ping_interval == expected
            finally:
                await client.close()


# -- the start-up warning (pytester) ------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_ws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_ENV", raising=False)


def run(pytester: pytest.Pytester, ws_toml: str, *args: str) -> pytest.RunResult:
    pytester.makepyprojecttoml("[tool.ws_resilience]\n" + ws_toml)
    pytester.makepyfile(test_sample="def test_ok():\n    pass\n")
    return pytester.runpytest_inprocess("-p", "ws_resilience", *args)


def test_a_slow_heartbeat_is_warned_about_once_at_start_up(ws_pytester: pytest.Pytester) -> None:
    result = run(ws_pytester, "idle_timeout = 30\nheartbeat_interval = 30\n")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*WsHeartbeatWarning: ws-resilience (env local): heartbeat_interval = 30 s does not "
            "beat idle_timeout = 30 s*at most 24 s*"
        ]
    )


def test_no_heartbeat_against_an_idle_timeout_is_warned_about(ws_pytester: pytest.Pytester) -> None:
    result = run(ws_pytester, "idle_timeout = 60\n")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*WsHeartbeatWarning*heartbeat_interval is not*48 s*"])


@pytest.mark.parametrize(
    "ws_toml",
    ["", "heartbeat_interval = 50\n", "idle_timeout = 60\nheartbeat_interval = 25\n"],
)
def test_an_aligned_or_unknown_setup_is_not_warned_about(
    ws_pytester: pytest.Pytester, ws_toml: str
) -> None:
    result = run(ws_pytester, ws_toml)
    result.assert_outcomes(passed=1, warnings=0)
    assert "WsHeartbeatWarning" not in result.stdout.str()


def test_the_warning_can_fail_a_ci_run(ws_pytester: pytest.Pytester) -> None:
    result = run(
        ws_pytester,
        "idle_timeout = 30\nheartbeat_interval = false\n",
        "-W",
        "error::pytest_ws_resilience.errors.WsHeartbeatWarning",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.errlines
    assert "heartbeat_interval = false (no keepalive pings) with idle_timeout = 30 s" in errors[0]
    assert "INTERNALERROR" not in "\n".join(result.outlines + result.errlines)


def test_under_xdist_the_warning_is_shown_once(ws_pytester: pytest.Pytester) -> None:
    ws_pytester.makepyprojecttoml(
        "[tool.ws_resilience]\nidle_timeout = 30\nheartbeat_interval = 30\n"
    )
    ws_pytester.makepyfile(test_sample="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "-n", "2")
    result.assert_outcomes(passed=2)
    shown = [line for line in result.outlines if "WsHeartbeatWarning:" in line]
    assert len(shown) == 1, result.outlines
