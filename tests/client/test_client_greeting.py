"""Reading the server's greeting (`pytest_ws_resilience.client.greeting`): pure, no
sockets. The greeting's ``type`` is configuration; nothing here is a protocol's name."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ws_resilience.client.greeting import Greeting, read_greeting

HELLO = "hello"


def test_a_greeting_gives_the_connection_id_and_a_recv_timeout() -> None:
    frame = {"type": HELLO, "connection_id": "c-1", "recv_timeout": 30}
    assert read_greeting(frame, HELLO) == Greeting("c-1", 30.0)
    assert isinstance(read_greeting(frame, HELLO).recv_timeout, float)  # type: ignore[union-attr]


def test_a_greeting_without_a_recv_timeout_negotiates_none() -> None:
    assert read_greeting({"type": HELLO, "connection_id": 7}, HELLO) == Greeting(7, None)
    assert read_greeting({"type": HELLO}, HELLO) == Greeting(None, None)


@pytest.mark.parametrize("recv_timeout", [0, -1, "30", None, [30]])
def test_a_recv_timeout_that_is_no_positive_number_is_ignored(recv_timeout: Any) -> None:
    frame = {"type": HELLO, "connection_id": "c", "recv_timeout": recv_timeout}
    assert read_greeting(frame, HELLO) == Greeting("c", None)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "other", "connection_id": "c", "recv_timeout": 5},
        {"connection_id": "c", "recv_timeout": 5},
        [HELLO],
        "hello",
        None,
    ],
)
def test_any_other_first_frame_is_no_greeting(data: Any) -> None:
    assert read_greeting(data, HELLO) is None


def test_no_greeting_type_configured_reads_nothing() -> None:
    assert read_greeting({"type": HELLO, "recv_timeout": 5}, None) is None
