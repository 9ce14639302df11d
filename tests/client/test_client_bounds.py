"""A client's timeouts (`pytest_ws_resilience.client.bounds`): explicit > negotiated >
configured, each with its source; pure, no sockets."""

from __future__ import annotations

from pytest_ws_resilience.client.bounds import ClientBounds
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue

SETTINGS = WsSettings(
    recv_timeout=TimeoutValue(10.0, "profile local"),
    close_timeout=TimeoutValue(12.0, "profile local"),
    connect_timeout=TimeoutValue(5.0, "pyproject"),
    agent_timeout=TimeoutValue(8.0, "pyproject"),
)


def test_unset_bounds_come_from_the_settings_with_their_sources() -> None:
    bounds = ClientBounds(SETTINGS)
    assert bounds.as_dict() == {
        "recv_timeout": TimeoutValue(10.0, "profile local"),
        "close_timeout": TimeoutValue(12.0, "profile local"),
        "connect_timeout": TimeoutValue(5.0, "pyproject"),
        "agent_timeout": TimeoutValue(8.0, "pyproject"),
    }


def test_explicit_bounds_win() -> None:
    bounds = ClientBounds(SETTINGS, recv=1, close=2, connect=3)
    assert bounds.recv == TimeoutValue(1.0, Source.EXPLICIT)
    assert bounds.close == TimeoutValue(2.0, Source.EXPLICIT)
    assert bounds.connect == TimeoutValue(3.0, Source.EXPLICIT)


def test_a_negotiated_recv_timeout_beats_the_configured_one_until_forgotten() -> None:
    bounds = ClientBounds(SETTINGS)
    bounds.negotiate(30.0)
    assert bounds.recv == TimeoutValue(30.0, Source.SERVER)
    bounds.negotiate(None)
    assert bounds.recv == TimeoutValue(10.0, "profile local")


def test_an_explicit_recv_timeout_beats_a_negotiated_one() -> None:
    bounds = ClientBounds(SETTINGS, recv=0.25)
    bounds.negotiate(30.0)
    assert bounds.recv == TimeoutValue(0.25, Source.EXPLICIT)


def test_a_waits_own_timeout_beats_the_recv_bound() -> None:
    bounds = ClientBounds(SETTINGS, recv=0.25)
    assert bounds.for_wait(None) is bounds.recv
    assert bounds.for_wait(2) == TimeoutValue(2, Source.EXPLICIT)


def test_an_unset_agent_timeout_reads_none() -> None:
    assert ClientBounds(WsSettings()).as_dict()["agent_timeout"] is None
