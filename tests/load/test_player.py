"""`play` over real loopback sockets against the reference server: each timed step
reported by name, the first failing step reported with its error kind (refused,
timeout, contract, closed while held), the client closed after a failure, and a bug in
the scenario's own function raised rather than counted."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TestUser
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import ContractViolationError, WsConnectionClosedError
from pytest_ws_resilience.load.player import StepOutcome, play
from pytest_ws_resilience.load.scenario import AGENT_CHAT, Scenario
from pytest_ws_resilience.testing import DROP_EVENT

pytestmark = [pytest.mark.websocket_integration, pytest.mark.asyncio]

#: Small bounds so that failure paths cost little; far above a loopback round trip.
SETTINGS = WsSettings(
    connect_timeout=TimeoutValue(5.0, "test"),
    recv_timeout=TimeoutValue(1.0, "test"),
    close_timeout=TimeoutValue(1.0, "test"),
    connect_retries=0,
    backoff=Backoff(base=0.01, cap=0.02),
)
HOST = "127.0.0.1"


def client_for(url: str, user: TestUser) -> WsClient:
    return WsClient(url, user=user, settings=SETTINGS, connect_retries=0)


async def played(
    scenario: Scenario, client: WsClient, index: int = 0
) -> tuple[bool, list[StepOutcome], int]:
    outcomes: list[StepOutcome] = []
    sends = 0

    def sent() -> None:
        nonlocal sends
        sends += 1

    ok = await play(
        scenario, client, report=outcomes.append, settings=SETTINGS, index=index, on_send=sent
    )
    return ok, outcomes, sends


def ping_for(index: int) -> dict[str, Any]:
    return {"type": "ping", "user": index}


async def test_agent_chat_reports_each_timed_step_by_name(server, tokens):
    client = client_for(server.url, tokens.user())
    ok, outcomes, sends = await played(AGENT_CHAT, client)
    assert ok and sends == 1
    assert [(o.kind, o.name, o.ok) for o in outcomes] == [
        ("connect", "connect", True),
        ("contract", "contract:AGENT_EVENTS", True),
        ("close", "close", True),
    ]
    assert all(o.elapsed_ms >= 0 and o.error_kind is None for o in outcomes)
    assert outcomes[1].response_length > 0  # the run's frames
    assert client.closed


async def test_replies_are_matched_by_fields_and_a_bare_expect_skips_the_greeting(server, tokens):
    scenario = (
        Scenario("echo")
        .connect()
        .send(ping_for)
        .expect(type="pong", user=3)
        .send({"type": "ping", "again": True})
        .expect()
        .think(0.01, jitter=0.01)
        .hold(0.05)
        .close()
    )
    client = client_for(server.url, tokens.user())
    ok, outcomes, sends = await played(scenario, client, index=3)
    assert ok and sends == 2
    assert [o.name for o in outcomes] == ["connect", "rt:message", "rt:ping", "close"]
    pongs = [(e["type"], e.get("user")) for e in client.events if e.get("type") == "pong"]
    assert pongs == [("pong", 3), ("pong", None)]
    assert outcomes[2].response_length == len('{"type":"pong","again":true,"seq":3}')


async def test_a_second_connect_after_a_close_reconnects_as_the_same_user(server, tokens):
    scenario = Scenario("twice").connect().close().connect().close()
    user = tokens.user()
    client = client_for(server.url, user)
    ok, outcomes, _ = await played(scenario, client)
    assert ok
    assert [o.name for o in outcomes] == ["connect", "close", "connect", "close"]
    assert client.metrics.reconnects == 1 and client.user == user


async def test_a_reply_that_never_comes_fails_its_step_and_stops_the_scenario(server, tokens):
    scenario = (
        Scenario("wrong").connect().send({"type": "ping"}).expect(type="nothing_like_it").close()
    )
    client = client_for(server.url, tokens.user())
    ok, outcomes, _ = await played(scenario, client)
    assert not ok
    assert [(o.name, o.error_kind) for o in outcomes] == [("connect", None), ("rt:ping", "timeout")]
    assert "nothing_like_it" in str(outcomes[-1].error)
    assert client.closed  # closed after the failure, though the close step never ran


async def test_a_broken_contract_counts_as_kind_contract(server, tokens):
    server.set_faults(DROP_EVENT)
    client = client_for(server.url, tokens.user())
    ok, outcomes, _ = await played(AGENT_CHAT, client)
    assert not ok
    failed = outcomes[-1]
    assert (failed.kind, failed.name, failed.error_kind) == (
        "contract",
        "contract:AGENT_EVENTS",
        "contract",
    )
    assert isinstance(failed.error, ContractViolationError)
    assert "tool_completed" in str(failed.error)
    assert client.closed


async def test_a_refused_connection_is_a_connect_outcome(tokens):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    client = client_for(f"ws://{HOST}:{port}/", tokens.user())
    ok, outcomes, sends = await played(AGENT_CHAT, client)
    assert not ok and sends == 0
    [failed] = outcomes
    assert (failed.kind, failed.name, failed.error_kind) == ("connect", "connect", "refused")


async def test_a_connection_the_server_ends_while_held_fails_the_hold(server, tokens):
    # The reference server closes a connection when its token expires (4001).
    scenario = Scenario("held").connect().hold(30.0).close()
    client = client_for(server.url, tokens.user(ttl=0.3))
    ok, outcomes, _ = await played(scenario, client)
    assert not ok
    failed = outcomes[-1]
    assert (failed.kind, failed.name, failed.error_kind) == ("hold", "hold", "closed")
    assert isinstance(failed.error, WsConnectionClosedError)
    assert "while held for 30s" in str(failed.error)


async def test_a_send_on_a_closed_connection_fails_as_a_send(server, tokens):
    user = tokens.user(ttl=0.1)
    assert user.expires_at is not None
    past_expiry = user.expires_at - time.time() + 0.5  # JWT times are whole seconds
    scenario = Scenario("late").connect().think(past_expiry).send({"type": "ping"}).expect()
    client = client_for(server.url, user)
    ok, outcomes, sends = await played(scenario, client)
    assert not ok and sends == 0
    failed = outcomes[-1]
    assert (failed.kind, failed.name) == ("send", "send:ping")
    assert failed.error_kind == "closed"


def broken_factory(index: int) -> Any:
    raise RuntimeError(f"bug in the factory for user {index}")


async def test_a_bug_in_the_scenarios_own_function_is_raised_not_counted(server, tokens):
    scenario = Scenario("buggy").connect().send(broken_factory).expect().close()
    client = client_for(server.url, tokens.user())
    try:
        with pytest.raises(RuntimeError, match="bug in the factory for user 5"):
            await played(scenario, client, index=5)
    finally:
        await client.close()


async def test_an_unplayable_scenario_is_refused_before_anything_opens(tokens):
    client = client_for("ws://127.0.0.1:9/", tokens.user())
    with pytest.raises(ValueError, match="never connects"):
        await played(Scenario("nothing").think(0.0), client)
    assert not client.connected


async def test_a_reply_is_timed_to_its_receipt_not_to_when_the_user_looked(server, tokens):
    # The pong arrives while the user thinks; a storm's hook would time it at receipt,
    # and so does the player: the think is not part of the round trip.
    think_s = 1.0
    scenario = Scenario("slow reader").connect().send({"type": "ping"}).think(think_s)
    scenario = scenario.expect(type="pong").close()
    client = client_for(server.url, tokens.user())
    ok, outcomes, _ = await played(scenario, client)
    assert ok
    [rt] = [o for o in outcomes if o.kind == "rt"]
    assert rt.elapsed_ms < think_s * 1000.0
