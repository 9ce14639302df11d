"""Bad arguments to the public API are refused at once, with one line naming them.

Before: ``expect(timeout=nan)`` and ``WsClient(recv_timeout=nan)`` waited forever,
``connect_retries=2**63-1`` never gave up on a down server, ``connect(2, rate=1e-9)``
never ended, ``WsClient(bogus_option=1)`` failed in websockets at the first connect,
``user="x"`` as ``AttributeError``, ``user(sub=...)`` as "multiple values for argument",
``EventContract(repeatable=5)`` as "'int' object is not iterable".
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from pytest_ws_resilience.client.arguments import connect_option_names
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.pool.pool import ConnectionPool
from pytest_ws_resilience.testing import ReferenceServer

DOWN = "ws://127.0.0.1:1/"


def one_line_error(call: Any) -> str:
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"recv_timeout": math.nan}, "recv_timeout = nan is invalid: expected a number of"),
        ({"close_timeout": 1e308}, "close_timeout = 1e+308 is invalid"),
        ({"connect_timeout": -1}, "connect_timeout = -1 is invalid"),
        (
            {"connect_retries": 2**63 - 1},
            "connect_retries = 9223372036854775807 is invalid: expected a whole number from "
            "0 to 100",
        ),
        ({"max_message_size": 0}, "max_message_size = 0 is invalid"),
        ({"log_size": 0}, "log_size = 0 is invalid"),
        ({"ping_interval": math.inf}, "ping_interval = inf is invalid"),
        ({"open_timeout": 5}, "WsClient: open_timeout= is set by the client; use connect_timeout="),
        ({"max_size": 5}, "WsClient: max_size= is set by the client; use max_message_size="),
        ({"proxy": "http://x"}, "WsClient: proxy= is set by the client; use nothing: clients"),
        (
            {"create_connection": object},
            "WsClient: create_connection= is set by the client; use nothing: the client "
            "receives through its own connection class",
        ),
        ({"user": "alice"}, "WsClient user must be a TestUser (e.g. ws_user_factory()), got"),
        ({"token": 42}, "WsClient token must be a string, got int"),
    ],
)
def test_bad_client_arguments_are_refused_when_the_client_is_made(
    kwargs: dict[str, Any], expected: str
) -> None:
    assert one_line_error(lambda: WsClient(DOWN, **kwargs)).startswith(expected)


def test_an_unknown_websockets_option_is_refused_with_the_near_miss() -> None:
    message = one_line_error(lambda: WsClient(DOWN, ping_intervall=5))
    assert message.startswith(
        "WsClient got an unknown option 'ping_intervall' (did you mean 'ping_interval'?): "
        "keywords besides its own go to websockets' connect(), which takes "
    )
    assert "bogus" not in message
    assert "bogus_option" in one_line_error(lambda: WsClient(DOWN, bogus_option=1))


def test_the_options_websockets_takes_are_read_from_its_signature() -> None:
    websockets_names, socket_names = connect_option_names()
    assert {"ping_interval", "ping_timeout", "max_queue", "additional_headers"} <= websockets_names
    assert {"ssl", "server_hostname", "local_addr"} <= socket_names
    # The client's own: never passed through.
    assert not {"open_timeout", "max_size", "proxy", "uri"} & (websockets_names | socket_names)
    WsClient(DOWN, ping_interval=None, max_queue=4, additional_headers={"X-A": "1"}, ssl=None)


@pytest.mark.asyncio
async def test_expect_with_a_nan_timeout_fails_at_once_instead_of_waiting_forever(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    async with WsClient(server.url, user=tokens.user()) as client:
        started = time.monotonic()
        for wait in (
            lambda: client.expect(type="never", timeout=math.nan),
            lambda: client.expect_text("x", timeout=math.inf),
            lambda: client.expect_bytes(b"x", timeout=0),
        ):
            with pytest.raises(ValueError, match=r"^timeout = .* is invalid: expected a number"):
                await asyncio.wait_for(wait(), timeout=5)
        assert time.monotonic() - started < 5


@pytest.mark.asyncio
async def test_a_storm_whose_rate_would_never_end_is_refused_before_connecting(
    tokens: TokenFactory,
) -> None:
    storm = Storm(DOWN, tokens)
    with pytest.raises(ValueError) as caught:
        await asyncio.wait_for(storm.connect(2, rate=1e-9), timeout=5)
    assert str(caught.value) == (
        "rate = 1e-09 is too slow: 2 connections would take 1e+09 s to arrive (at most 1 day); "
        "raise the rate or lower n"
    )
    with pytest.raises(ValueError, match=r"^rate = nan is invalid"):
        await storm.connect(2, rate=math.nan)
    with pytest.raises(ValueError, match=r"^n = 1000000000 is invalid"):
        await storm.connect(10**9)
    with pytest.raises(ValueError, match=r"^messages_per_client = 10000000 is invalid"):
        await storm.burst(1, 10**7)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"idle_timeout": math.nan}, "ConnectionPool idle_timeout = nan is invalid"),
        ({"health_check_timeout": 1e308}, "ConnectionPool health_check_timeout = 1e+308"),
        ({"health_check_interval": -1}, "ConnectionPool health_check_interval = -1 is"),
        ({"max_size": 0}, "ConnectionPool max_size = 0 is invalid"),
    ],
)
def test_bad_pool_arguments_are_one_line_errors(kwargs: dict[str, Any], expected: str) -> None:
    assert one_line_error(lambda: ConnectionPool(**kwargs)).startswith(expected)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"sub": "alice"}, "user(sub=...) is not a claim you can set: the subject is the user's"),
        ({"key": "k"}, "user(key=...) is not a claim you can set"),
        ({"id": 7}, "user id= must be a non-empty string, got 7"),
        ({"email": ""}, "user email= must be a non-empty string, got ''"),
    ],
)
def test_bad_user_arguments_are_one_line_errors(kwargs: dict[str, Any], expected: str) -> None:
    tokens = TokenFactory()
    assert one_line_error(lambda: tokens.user(**kwargs)).startswith(expected)
    assert tokens.user(role="admin").claims["role"] == "admin"


def test_a_token_lifetime_that_is_not_finite_is_refused_when_the_factory_is_made() -> None:
    assert one_line_error(lambda: TokenFactory(lifetime_s=math.nan)).startswith(
        "TokenFactory lifetime_s = nan is invalid"
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"repeatable": 5},
            "EventContract repeatable= must be an event name or a list of event names, got 5",
        ),
        ({"optional": None}, "EventContract optional= must be an event name or a list"),
        ({"budgets": {"a": math.inf}}, "EventContract budget for 'a' = inf is invalid"),
        ({"budgets": [1]}, "EventContract budgets= must map event names to seconds, got [1]"),
        ({"ordered": "yes"}, "EventContract ordered= must be True or False, got 'yes'"),
    ],
)
def test_bad_contract_arguments_are_one_line_errors(kwargs: dict[str, Any], expected: str) -> None:
    assert one_line_error(lambda: EventContract(["a", "b"], **kwargs)).startswith(expected)
