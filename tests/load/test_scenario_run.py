"""``Storm.run(scenario, users, spawn_rate)`` over real loopback sockets against the
reference server: every user's outcomes in one `StormResult` (connect and round-trip
distributions, steps by name, contracts counted, errors by kind), the thresholds
unchanged, arrivals on the clock, every client closed, and bad arguments refused in
one line before anything opens."""

from __future__ import annotations

import gc
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import StormThresholdError
from pytest_ws_resilience.load.error_kinds import ERROR_KINDS
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.load.scenario import AGENT_CHAT, Scenario
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.testing import DROP_EVENT, ReferenceServer

pytestmark = [pytest.mark.websocket_integration, pytest.mark.asyncio]

SETTINGS = WsSettings(
    connect_timeout=TimeoutValue(5.0, "test"),
    recv_timeout=TimeoutValue(2.0, "test"),
    close_timeout=TimeoutValue(1.0, "test"),
    backoff=Backoff(base=0.01, cap=0.02),
)
HOST = "127.0.0.1"
PING_PONG = Scenario("ping").connect().send({"type": "ping"}).expect(type="pong").close()


class WatchedStorm(Storm):
    """A storm that keeps every client it made and every result it finished, as the
    ``ws_storm`` fixture does (to watch them and report them)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.made: list[WsClient] = []
        self.closed_by_storm: list[WsClient] = []
        self.results: list[StormResult] = []

    def _on_client(self, client: WsClient) -> None:
        self.made.append(client)

    def _on_client_closed(self, client: WsClient) -> None:
        self.closed_by_storm.append(client)

    def _on_result(self, result: StormResult) -> None:
        self.results.append(result)


def no_errors() -> dict[str, int]:
    return dict.fromkeys(ERROR_KINDS, 0)


@pytest_asyncio.fixture(loop_scope="function")
async def storm(server: ReferenceServer, tokens: TokenFactory) -> AsyncIterator[WatchedStorm]:
    async with WatchedStorm(server.url, tokens, SETTINGS) as watched:
        yield watched


async def test_every_user_plays_the_scenario_into_one_result(storm):
    result = await storm.run(AGENT_CHAT, users=12)
    assert (result.kind, result.label) == ("scenario", "scenario agent_chat users=12 all at once")
    assert (result.attempted, result.succeeded, result.errors) == (12, 12, no_errors())
    assert len(result.connect_ms) == 12 and len(result.opened_s) == 12
    assert result.contracts_checked == 12
    assert (result.messages_sent, result.replies_received) == (12, 12)
    assert {name: len(values) for name, values in result.step_ms.items()} == {
        "connect": 12,
        "contract:AGENT_EVENTS": 12,
        "close": 12,
    }
    result.assert_errors(max=0)
    result.assert_p95(connect_ms=60_000)  # thresholds work unchanged (no timing asserted)
    assert "contract:AGENT_EVENTS  n=12" in result.describe()
    assert "contracts checked 12" in result.describe()
    assert storm.results == [result]
    assert storm.made and all(client.closed for client in storm.made)
    assert len(storm.closed_by_storm) == 12 and storm.held == []


async def test_round_trips_of_rt_steps_go_to_round_trip_ms(storm):
    result = await storm.run(PING_PONG, users=5, label="pings")
    assert result.label == "pings"
    assert len(result.round_trip_ms) == 5 and result.replies_received == 5
    assert set(result.step_ms) == {"connect", "rt:ping", "close"}
    assert result.contracts_checked == 0
    result.assert_p99(round_trip_ms=60_000)


async def test_users_arrive_on_the_clock_at_the_spawn_rate(storm):
    result = await storm.run(PING_PONG, users=6, spawn_rate=50.0)
    assert result.label == "scenario ping users=6 at 50/s"
    assert result.succeeded == 6
    assert result.started_s == sorted(result.started_s)
    # An open model: the last user is due 5/50 s after the first, whatever the server did.
    assert result.started_s[-1] - result.started_s[0] >= 5 / 50 - 0.01


async def test_a_broken_contract_is_an_error_of_kind_contract(storm, server):
    server.set_faults(DROP_EVENT)
    result = await storm.run(AGENT_CHAT, users=4)
    assert result.errors == {**no_errors(), "contract": 4}
    assert (result.succeeded, result.contracts_checked) == (0, 0)
    example = result.error_examples["contract"]
    assert "contract:AGENT_EVENTS" in example and "storm#" in example
    with pytest.raises(StormThresholdError, match="errors"):
        result.assert_errors(max=0)
    assert all(client.closed for client in storm.made)


async def test_a_server_nobody_listens_on_counts_refused_users(tokens):
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    async with Storm(f"ws://{HOST}:{port}/", tokens, SETTINGS) as storm:
        result = await storm.run(AGENT_CHAT, users=3)
    assert result.errors == {**no_errors(), "refused": 3}
    assert (result.succeeded, result.connect_ms, result.messages_sent) == (0, [], 0)


async def test_a_scenario_that_sends_and_expects_nothing_checked_nothing(storm):
    fire_and_forget = Scenario("fire").connect().send({"type": "ping"}).close()
    result = await storm.run(fire_and_forget, users=3)
    assert result.succeeded == 3 and result.messages_sent == 3
    assert result.nothing_checked is not None
    with pytest.raises(StormThresholdError, match="no reply seen"):
        result.assert_errors(max=0)


async def test_users_go_to_a_path_template(storm, server):
    scenario = Scenario("rooms").connect().send({"type": "ping"}).expect(type="pong").close()
    result = await storm.run(
        scenario, users=4, path="/rooms/{room}", path_params=lambda i: {"room": f"r{i % 2}"}
    )
    assert result.succeeded == 4
    assert sorted(client.url.rsplit("/", 1)[-1] for client in storm.made) == [
        "r0",
        "r0",
        "r1",
        "r1",
    ]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"users": 0}, "users = 0 is invalid: expected a whole number from 1 to 100_000"),
        ({"users": 2.5}, "users = 2.5 is invalid"),
        ({"users": 3, "spawn_rate": 0}, "spawn_rate = 0 is invalid"),
        ({"users": 3, "spawn_rate": float("nan")}, "spawn_rate = nan is invalid"),
        ({"users": 3, "url": "http://x/"}, "storm url must be ws:// or wss://"),
        ({"users": 3, "path_params": {"room": "a"}}, "path_params= needs path="),
    ],
)
async def test_bad_arguments_are_refused_in_one_line_before_anything_opens(storm, kwargs, problem):
    with pytest.raises(ValueError) as err:
        await storm.run(PING_PONG, **kwargs)
    assert problem in str(err.value) and "\n" not in str(err.value)
    assert storm.made == [] and storm.results == []


async def test_an_unplayable_scenario_is_refused_before_anything_opens(storm):
    with pytest.raises(ValueError, match="scenario 'idle' never connects"):
        await storm.run(Scenario("idle").think(0.1), users=2)
    assert storm.made == []


COLLECTOR_STATES: list[bool] = []


def ping_noting_the_collector(index: int) -> dict[str, object]:
    COLLECTOR_STATES.append(gc.isenabled())
    return {"type": "ping", "user": index}


@pytest.mark.parametrize(
    ("scenario", "spawn_rate", "paused"),
    [
        (Scenario("brief").connect().send(ping_noting_the_collector).expect().close(), None, True),
        (Scenario("paced").connect().send(ping_noting_the_collector).expect().close(), 100, False),
        (
            Scenario("thinks").connect().think(0.01).send(ping_noting_the_collector).expect(),
            None,
            False,
        ),
    ],
)
async def test_the_collector_is_paused_only_for_a_run_as_brief_as_a_storm(
    storm, scenario, spawn_rate, paused
):
    assert gc.isenabled()
    COLLECTOR_STATES.clear()
    result = await storm.run(scenario, users=3, spawn_rate=spawn_rate)
    assert result.succeeded == 3
    assert COLLECTOR_STATES == [not paused] * 3
    assert gc.isenabled()
