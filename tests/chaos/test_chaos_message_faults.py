"""Unit tests of the message-fault model (`chaos.message_faults`): validation, selection."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.frames import Close

from pytest_ws_resilience.chaos.message_faults import Message, MessageFault, select_matches


def fault(kind: str, **kw: Any) -> MessageFault:
    direction = kw.pop("direction", "downstream")
    select = kw.pop("select", None)
    toxicity = kw.pop("toxicity", 1.0)
    target = kw.pop("target", None)
    name = kw.pop("name", "")
    return MessageFault(kind, direction, select, toxicity, name, kw, target)


# -- construction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "explode"}, "unknown message fault kind"),
        ({"kind": "drop", "direction": "sideways"}, "direction"),
        ({"kind": "drop", "toxicity": 1.5}, "toxicity"),
        ({"kind": "drop", "toxicity": True}, "toxicity"),
        ({"kind": "delay"}, "needs the attribute 'delay'"),
        ({"kind": "delay", "delay": -1}, "milliseconds"),
        ({"kind": "drop", "latency": 3}, "no attribute 'latency'"),
        ({"kind": "close", "code": 1006}, "cannot be sent"),
        ({"kind": "close", "code": 4000, "reason": "x" * 200}, "123 bytes"),
        ({"kind": "reorder", "by": 0}, "by must be an integer >= 1"),
        ({"kind": "cut_after"}, "needs the attribute 'count'"),
        ({"kind": "drop", "select": 0}, "1-based"),
        ({"kind": "drop", "select": "texts"}, "not an opcode name"),
        ({"kind": "drop", "select": [1, "2"]}, "1-based message indices"),
        ({"kind": "reorder", "select": "ping"}, "data messages only"),
        ({"kind": "swallow_pong", "select": 3}, "acts on pong frames"),
        ({"kind": "drop", "target": 0}, "target"),
    ],
)
def test_invalid_faults_fail_where_they_are_written(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fault(**kwargs)


def test_selectors_match_as_documented() -> None:
    text3 = Message(3, "text", b'{"a": 1}')
    ping = Message(0, "ping", b"")
    assert select_matches(fault("drop"), text3)
    assert not select_matches(fault("drop"), ping)
    assert select_matches(fault("drop", select=[1, 3]), text3)
    assert select_matches(fault("drop", select="ping"), ping)
    assert select_matches(fault("drop", select=lambda m: m.json()["a"] == 1), text3)
    assert not select_matches(fault("drop", select=lambda m: True), ping)
    assert select_matches(fault("delay_ping", delay=1), ping)
    assert select_matches(fault("swallow_pong", select="pong"), Message(0, "pong", b""))
    assert text3.text == '{"a": 1}' and text3.describe() == "message 3 (text, 8 bytes)"


def test_repr_names_the_fault_and_its_attributes() -> None:
    f = fault("close", select={2, 1}, code=4001, name="close#1", target=2)
    assert repr(f) == (
        "MessageFault(close#1: close downstream, select=[1, 2], toxicity=1.0, "
        "code=4001, reason='', target=2)"
    )


def _websockets_sends(code: Any) -> bool:
    try:
        Close(code, "").check()
    except Exception:
        return False
    return True


def _fault_accepts(code: Any) -> bool:
    try:
        built = fault("close", code=code)
    except ValueError:
        return False
    assert built.attributes["code"] == code
    return True


def test_close_codes_accepted_are_the_ones_websockets_can_send() -> None:
    # The fault model restates websockets' rule so as not to import websockets (and with
    # it `socket`); the filter serializes the close frame with websockets, which checks
    # again. The two must agree on every code.
    codes: list[Any] = [*range(6000), 1000.0, 1006.0, True, "1000", None, [1000]]
    disagree = [code for code in codes if _fault_accepts(code) != _websockets_sends(code)]
    assert disagree == []
    assert _fault_accepts(1000) and _fault_accepts(4999) and not _fault_accepts(1006)
