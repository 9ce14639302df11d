"""The one rule for numeric inputs (`config/bounds.py`) and the config values it guards.

Each case here was taken before the rule: a timeout of 1e308 overflowed the event
loop's clock in every test, ``connect_retries = 2**63 - 1`` retried a down server
forever, NaN waited forever, and ``app_share = 1`` passed unchecked without an app.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_ws_resilience.config.bounds import (
    MAX_RETRIES,
    MAX_SECONDS,
    check_count,
    check_rate,
    check_seconds,
)
from pytest_ws_resilience.config.loading import CommandLine, load_settings
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue, resolve_timeout
from pytest_ws_resilience.errors import WsConfigError


def config_error(tool_config: dict[str, Any], cli: CommandLine | None = None) -> str:
    with pytest.raises(WsConfigError) as caught:
        load_settings(cli=cli or CommandLine(), environ={}, tool_config=tool_config)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- the pure rule ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, 0, -1, 0.0001, True, "1"])
def test_seconds_outside_1ms_to_1day_are_refused_with_the_name_and_value(value: Any) -> None:
    with pytest.raises(ValueError) as caught:
        check_seconds("recv_timeout", value)
    assert str(caught.value) == (
        f"recv_timeout = {value!r} is invalid: expected a number of seconds from 1 ms to 1 day"
    )


@pytest.mark.parametrize("value", [0.001, 1, 2.5, MAX_SECONDS])
def test_seconds_within_bounds_are_returned_as_floats(value: float) -> None:
    assert check_seconds("t", value) == float(value)
    assert isinstance(check_seconds("t", value), float)


def test_a_zero_minimum_allows_zero_and_says_so() -> None:
    assert check_seconds("budget", 0, minimum=0.0) == 0.0
    with pytest.raises(ValueError, match=r"from 0 to 1 day"):
        check_seconds("budget", -0.5, minimum=0.0)


@pytest.mark.parametrize("value", [2**63 - 1, MAX_RETRIES + 1, -1, 1.5, False, None])
def test_counts_are_whole_numbers_within_bounds(value: Any) -> None:
    with pytest.raises(ValueError) as caught:
        check_count("connect_retries", value, maximum=MAX_RETRIES)
    assert str(caught.value).startswith(f"connect_retries = {value!r} is invalid: ")
    assert "from 0 to 100" in str(caught.value)


def test_a_count_within_bounds_is_returned() -> None:
    assert check_count("n", MAX_RETRIES, maximum=MAX_RETRIES) == MAX_RETRIES


def test_a_rate_whose_storm_would_outlast_a_day_is_refused() -> None:
    with pytest.raises(ValueError) as caught:
        check_rate("rate", 1e-9, count=2)
    assert str(caught.value) == (
        "rate = 1e-09 is too slow: 2 connections would take 1e+09 s to arrive (at most "
        "1 day); raise the rate or lower n"
    )
    # One connection arrives at once, whatever the rate.
    assert check_rate("rate", 1e-9, count=1) == 1e-9


@pytest.mark.parametrize("rate", [math.nan, math.inf, 0, -2, True])
def test_a_rate_must_be_a_finite_positive_number(rate: Any) -> None:
    with pytest.raises(ValueError, match=r"expected a finite number of connections per second"):
        check_rate("rate", rate, count=10)


def test_an_explicit_timeout_goes_through_the_rule_where_it_is_resolved() -> None:
    configured = TimeoutValue(10.0, Source.DEFAULT)
    assert resolve_timeout(configured, explicit=2) == TimeoutValue(2.0, Source.EXPLICIT)
    with pytest.raises(ValueError, match=r"^timeout = nan is invalid"):
        resolve_timeout(configured, explicit=math.nan)
    with pytest.raises(ValueError, match=r"^recv_timeout = 1e\+308 is invalid"):
        resolve_timeout(configured, explicit=1e308, name="recv_timeout")


# -- configuration values --------------------------------------------------------------


@pytest.mark.parametrize("key", ["recv_timeout", "close_timeout", "connect_timeout", "backoff_cap"])
def test_a_timeout_of_1e308_is_a_config_error(key: str) -> None:
    assert config_error({key: 1e308}) == (
        f"pyproject.toml [tool.ws_resilience]: {key} = 1e+308 is invalid: expected a number "
        f"of seconds from 1 ms to 1 day"
    )


def test_an_agent_timeout_over_a_day_in_an_env_table_names_that_table() -> None:
    message = config_error({"envs": {"ci": {"agent_timeout": 90_000}}})
    assert message.startswith("pyproject.toml [tool.ws_resilience.envs.ci]: agent_timeout = ")


def test_connect_retries_of_2_63_is_a_config_error_not_a_hang() -> None:
    assert config_error({"connect_retries": 2**63 - 1}) == (
        "pyproject.toml [tool.ws_resilience]: connect_retries = 9223372036854775807 is "
        "invalid: expected a whole number from 0 to 100"
    )


def test_max_message_size_over_a_gibibyte_is_a_config_error() -> None:
    assert "max_message_size = 2147483648 is invalid" in config_error({"max_message_size": 2**31})


def test_the_largest_bounded_values_still_load() -> None:
    settings = load_settings(
        environ={},
        tool_config={"recv_timeout": 86_400, "connect_retries": 100, "connect_timeout": 0.001},
    )
    assert settings.recv_timeout.value == 86_400
    assert settings.connect_retries == 100


@pytest.mark.parametrize("key", ["app_share", "app_subprocess"])
def test_an_app_flag_that_is_not_a_boolean_is_an_error_even_without_an_app(key: str) -> None:
    assert config_error({key: 1}) == (
        f"pyproject.toml [tool.ws_resilience]: {key} = 1 is invalid: expected true or false"
    )


@pytest.mark.parametrize("key", ["app_share", "app_subprocess"])
def test_an_app_flag_set_without_any_app_is_an_error_not_a_silent_no_op(key: str) -> None:
    assert config_error({key: True}) == (
        f"pyproject.toml [tool.ws_resilience]: {key} = true needs an app to serve: set app = "
        f'"module:attr" (or pass --ws-app)'
    )


def test_an_app_flag_with_an_app_from_the_command_line_is_taken() -> None:
    settings = load_settings(
        cli=CommandLine(app="mod:app"), environ={}, tool_config={"app_share": True}
    )
    assert settings.server.app_share is True


def test_the_known_envs_are_the_profiles_and_the_env_tables() -> None:
    settings = load_settings(environ={}, tool_config={"envs": {"qa": {"path": "/ws"}}})
    assert "qa" in settings.known_envs
    assert "local" in settings.known_envs
