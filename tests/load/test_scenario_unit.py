"""`Scenario` without I/O: the immutable builder, its labels, one-line refusals of
scenarios that cannot be played, and pickling (a scenario travels to Locust workers)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from pytest_ws_resilience import Scenario as RootScenario
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.load.scenario import (
    AGENT_CHAT,
    Close,
    Connect,
    Expect,
    ExpectContract,
    Hold,
    Scenario,
    Send,
    Think,
    check_picklable,
    check_scenario,
    default_label,
)
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS


def numbered_ping(index: int) -> dict[str, Any]:
    """A module-level message factory: pickles."""
    return {"type": "ping", "user": index}


def is_pong(value: Any) -> bool:
    return value == "pong"


def test_the_root_exports_the_same_class():
    assert RootScenario is Scenario


def test_each_builder_method_returns_a_new_scenario_and_leaves_the_old_one():
    base = Scenario("chat").connect()
    longer = base.send({"type": "ping"})
    assert base.steps == (Connect(),)
    assert longer.steps == (Connect(), Send({"type": "ping"}, "ping"))
    assert longer.name == "chat"
    with pytest.raises(AttributeError):
        longer.name = "other"  # type: ignore[misc]


def test_every_step_kind_in_order():
    scenario = (
        Scenario("all")
        .connect()
        .send("hello")
        .expect(type="pong")
        .expect_contract(AGENT_EVENTS)
        .hold(0.5)
        .think(1.0, jitter=0.5)
        .close()
        .connect()
        .close()
    )
    assert [type(step) for step in scenario.steps] == [
        Connect,
        Send,
        Expect,
        ExpectContract,
        Hold,
        Think,
        Close,
        Connect,
        Close,
    ]
    check_scenario(scenario)


def test_an_expect_is_named_after_the_last_sent_type_unless_labelled():
    scenario = Scenario().connect().send({"type": "ping", "n": 1}).expect(type="pong")
    assert scenario.steps[-1] == Expect("ping", (("type", "pong"),))
    assert scenario.steps[-1].name == "rt:ping"  # type: ignore[union-attr]
    text = Scenario().connect().send("plain text").expect()
    assert text.steps[-1].name == "rt:message"  # type: ignore[union-attr]
    named = Scenario().connect().send(numbered_ping).expect("echo", type="pong")
    assert named.steps[-1].name == "rt:echo"  # type: ignore[union-attr]
    assert named.steps[-1].match == {"type": "pong"}  # type: ignore[union-attr]


def test_a_contract_is_named_after_its_name_else_its_events_unless_labelled():
    assert Scenario().connect().send("x").expect_contract(AGENT_EVENTS).steps[-1].name == (  # type: ignore[union-attr]
        "contract:AGENT_EVENTS"
    )
    unnamed = EventContract(["a", "b"])
    assert Scenario().connect().send("x").expect_contract(unnamed).steps[-1].name == (  # type: ignore[union-attr]
        "contract:a -> b"
    )
    labelled = Scenario().connect().send("x").expect_contract(unnamed, label="run")
    assert labelled.steps[-1].name == "contract:run"  # type: ignore[union-attr]


def test_default_label():
    assert default_label({"type": "user_message"}) == "user_message"
    assert default_label({"type": ""}) == "message"
    assert default_label({"kind": "x"}) == "message"
    assert default_label(b"raw") == "message"


def test_a_factory_gets_the_users_index():
    send = Send(numbered_ping)
    assert send.message_for(7) == {"type": "ping", "user": 7}
    assert Send("fixed").message_for(7) == "fixed"


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: Scenario("s").send("x"), "step 1 (send 'x'): not connected (connect() first)"),
        (lambda: Scenario("s").connect().expect(type="pong"), "nothing sent on this connection"),
        (lambda: Scenario("s").connect().connect(), "already connected (close() first)"),
        (lambda: Scenario("s").connect().close().send("x"), "not connected"),
        (lambda: Scenario("s").connect().close().close(), "not connected"),
        (lambda: Scenario("s").hold(1.0), "not connected"),
        (lambda: Scenario("s").connect().hold(-1), "hold(seconds) = -1 is invalid"),
        (lambda: Scenario("s").connect().hold(float("nan")), "hold(seconds) = nan is invalid"),
        (lambda: Scenario("s").think(float("inf")), "think(seconds) = inf is invalid"),
        (lambda: Scenario("s").think(1, jitter=-0.1), "think(jitter) = -0.1 is invalid"),
        (lambda: Scenario("s").think(86_400, jitter=1), "seconds + jitter is over 1 day"),
        (lambda: Scenario("s").connect().send({1j}), "not JSON-able, text or bytes"),
        (lambda: Scenario("s").connect().send("x").expect(""), "expect label must be"),
        (
            lambda: Scenario("s").connect().send("x").expect(type="pong", timeout=1),
            "timeout is not a field to match",
        ),
        (
            lambda: Scenario("s").connect().send("x").expect_contract({"events": []}),  # type: ignore[arg-type]
            "expect_contract takes an EventContract",
        ),
        (lambda: Scenario(""), "Scenario name must be a non-empty string"),
    ],
)
def test_a_step_that_cannot_be_played_is_refused_where_it_is_written(build, problem):
    with pytest.raises(ValueError, match=r".") as err:
        build()
    text = str(err.value)
    assert problem in text
    assert "\n" not in text


def test_check_scenario_refuses_a_scenario_that_never_connects():
    with pytest.raises(ValueError, match=r"^scenario 'idle' never connects: start it with"):
        check_scenario(Scenario("idle").think(0.1))
    with pytest.raises(ValueError, match="never connects"):
        check_scenario(Scenario("empty"))


def test_check_scenario_checks_steps_given_directly():
    with pytest.raises(ValueError, match=r"^scenario 'raw': step 2 \(expect rt:x"):
        check_scenario(Scenario("raw", [Connect(), Expect("x"), Close()]))
    with pytest.raises(ValueError, match=r"step 2 \('not a step'\): not a scenario step"):
        check_scenario(Scenario("raw", [Connect(), "not a step"]))  # type: ignore[list-item]
    with pytest.raises(ValueError, match="expected a Scenario, got"):
        check_scenario("connect")  # type: ignore[arg-type]


def test_describe_lists_the_steps():
    assert AGENT_CHAT.describe().splitlines() == [
        "scenario 'agent_chat':",
        "  1. connect",
        "  2. send {'type': 'user_message', 'text': 'hello from a load test'}",
        "  3. expect contract:AGENT_EVENTS",
        "  4. close",
    ]
    factory = Scenario("f").connect().send(numbered_ping).think(1, 0.5).hold(2).describe()
    assert "send numbered_ping(i)" in factory and "think 1+0..0.5s" in factory
    assert "hold 2s" in factory
    assert repr(AGENT_CHAT) == "Scenario('agent_chat', 4 steps)"


def test_agent_chat_is_a_playable_scenario():
    check_scenario(AGENT_CHAT)
    assert [step.name for step in AGENT_CHAT.steps if isinstance(step, ExpectContract)] == [
        "contract:AGENT_EVENTS"
    ]


def test_a_scenario_pickles_its_contract_and_module_level_functions():
    budgeted = AGENT_EVENTS.with_changes(budgets={"agent_completed": 5.0})
    scenario = (
        Scenario("travels")
        .connect()
        .send(numbered_ping)
        .expect(type=is_pong)
        .expect_contract(budgeted, label="run")
        .close()
    )
    check_picklable(scenario)
    copy = pickle.loads(pickle.dumps(scenario))
    assert copy == scenario
    assert copy.steps[3].contract.budgets == {"agent_completed": 5.0}
    assert pickle.loads(pickle.dumps(AGENT_CHAT)) == AGENT_CHAT


def test_a_lambda_does_not_travel_and_check_picklable_says_which_step():
    scenario = Scenario("local").connect().send(lambda i: {"type": "ping", "n": i})
    check_scenario(scenario)  # fine in process
    with pytest.raises(ValueError, match=r"^scenario 'local' step 2 \(send <lambda>\(i\)\)") as err:
        check_picklable(scenario)
    assert "module-level functions" in str(err.value)
