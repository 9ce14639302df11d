"""Who watches a client's traffic (`pytest_ws_resilience.client.observers`): the
bookkeeping of hooks, observers and canaries, without a socket."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.client.observers import Observers


@dataclass(eq=False)
class Recorder:
    """A `ClientObserver` that remembers what it was told."""

    received: list[Any] = field(default_factory=list)
    sent: list[Any] = field(default_factory=list)
    canaries: list[str] = field(default_factory=list)
    fail_on_receive: bool = False

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        if self.fail_on_receive:
            raise RuntimeError("observer broke")
        self.received.append(record.data)

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        self.sent.append((raw, data))

    def on_canary(self, client: WsClient, marker: str) -> None:
        self.canaries.append(marker)


@pytest.fixture
def client() -> WsClient:
    """A client that never connects: the observers need only its name."""
    return WsClient("ws://127.0.0.1:9/", name="c1")


def record(text: str = '{"n": 1}') -> LogRecord:
    return EventLog().append(text)


def test_an_observer_is_added_once_and_removing_an_unknown_one_is_harmless(
    client: WsClient,
) -> None:
    observers = Observers(on_error=lambda exc: None)
    recorder = Recorder()
    observers.add(client, recorder)
    observers.add(client, recorder)
    assert observers.observers == [recorder]
    observers.remove(recorder)
    observers.remove(recorder)
    assert observers.observers == []


def test_canaries_reach_current_observers_and_are_replayed_to_late_ones(
    client: WsClient,
) -> None:
    observers = Observers(on_error=lambda exc: None)
    early = Recorder()
    observers.add(client, early)
    first = observers.canary(client, "leak")
    second = observers.canary(client, "leak")
    assert first.startswith("leak-") and first != second
    assert early.canaries == [first, second]
    late = Recorder()
    observers.add(client, late)
    assert late.canaries == [first, second]
    assert observers.canaries == [first, second]


def test_hooks_then_observers_see_each_frame(client: WsClient) -> None:
    seen: list[str] = []
    observers = Observers(on_error=lambda exc: None)
    observers.hooks.append(lambda r: seen.append(f"hook {r.data['n']}"))
    recorder = Recorder()
    observers.add(client, recorder)
    observers.received(client, record())
    assert seen == ["hook 1"] and recorder.received == [{"n": 1}]


def test_a_failing_hook_or_observer_stops_no_one_and_is_reported(
    client: WsClient, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []
    observers = Observers(on_error=errors.append)

    def explode(record: LogRecord) -> None:
        raise ValueError("hook broke")

    seen: list[LogRecord] = []
    observers.hooks.extend([explode, seen.append])
    broken, healthy = Recorder(fail_on_receive=True), Recorder()
    observers.add(client, broken)
    observers.add(client, healthy)
    with caplog.at_level(logging.ERROR, logger="pytest_ws_resilience.client"):
        observers.received(client, record())
    assert len(seen) == 1 and healthy.received == [{"n": 1}]
    assert [str(e) for e in errors] == ["hook broke", "observer broke"]
    assert "c1: receive hook" in caplog.text and "hook broke" in caplog.text


def test_sending_tells_observers_and_lets_their_errors_through(client: WsClient) -> None:
    observers = Observers(on_error=lambda exc: None)
    recorder = Recorder()
    observers.add(client, recorder)
    observers.sending(client, '{"a": 1}', {"a": 1})
    assert recorder.sent == [('{"a": 1}', {"a": 1})]

    class Refuses(Recorder):
        def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
            raise PermissionError("not this one")

    observers.add(client, Refuses())
    with pytest.raises(PermissionError):
        observers.sending(client, "x", None)
