"""The auth fallback chain's rules (`pytest_ws_resilience.client.fallback`), walked
without a socket: which answer moves to the next method, which retries, which fails."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.client.fallback import (
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    FallbackChain,
    Step,
    attempts_text,
    network_outcome,
    status_step,
)
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsConnectError,
    WsTimeoutError,
)

URL = "ws://127.0.0.1:9/"
CHAIN = ("subprotocol", "query", "header", "cookie")


def chain(methods: tuple[str, ...] = CHAIN, retries: int = 2) -> FallbackChain:
    return FallbackChain(
        URL,
        methods,
        retries=retries,
        backoff=Backoff(base=1.0, factor=2.0, cap=8.0),
        connect_timeout=TimeoutValue(2.0, "test"),
    )


@pytest.mark.parametrize(
    ("status", "step"),
    [
        (401, Step.NEXT_METHOD),
        (403, Step.NEXT_METHOD),
        (500, Step.RETRY),
        (502, Step.RETRY),
        (503, Step.RETRY),
        (400, Step.FAIL),
        (404, Step.FAIL),
        (302, Step.FAIL),
        (426, Step.FAIL),
    ],
)
def test_status_step_says_where_each_http_answer_leads(status: int, step: Step) -> None:
    assert status_step(status) is step


def test_auth_rejections_move_on_at_once_then_raise_auth_error_listing_all() -> None:
    walk = chain()
    for method in CHAIN:
        assert walk.method == method
        verdict = walk.answered(401)
        assert verdict.step is Step.NEXT_METHOD and verdict.delay == 0.0
    assert walk.method is None
    error = walk.rejected()
    assert isinstance(error, WsAuthError)
    assert error.attempts == tuple(Attempt(m, "HTTP 401", 401) for m in CHAIN)
    assert str(error).startswith(
        f"every auth method was rejected by {URL}: subprotocol: HTTP 401, query: HTTP 401, "
        "header: HTTP 401, cookie: HTTP 401; check the token's"
    )


def test_transient_failures_retry_the_same_method_with_backoff_delays() -> None:
    walk = chain(retries=3)
    delays = []
    for _ in range(3):
        verdict = walk.failed(CONNECTION_REFUSED)
        assert verdict.step is Step.RETRY and walk.method == "subprotocol"
        delays.append(verdict.delay)
    assert delays == [1.0, 2.0, 4.0]
    walk.connected()
    assert walk.attempts[-1] == Attempt("subprotocol", "connected", 101)
    assert len(walk.attempts) == 4


def test_exhausted_retries_fail_with_connect_error_naming_every_attempt() -> None:
    walk = chain(retries=1)
    assert walk.answered(503).step is Step.RETRY
    verdict = walk.failed(CONNECTION_RESET)
    assert verdict.step is Step.FAIL
    assert isinstance(verdict.error, WsConnectError)
    assert not isinstance(verdict.error, WsAuthError)
    assert str(verdict.error) == (
        f"could not connect to {URL} (auth subprotocol) after 1 retries; methods tried: "
        "subprotocol; 2 attempts: subprotocol: HTTP 503, subprotocol: connection reset"
    )


def test_each_method_gets_the_whole_retry_budget() -> None:
    walk = chain(retries=1)
    assert walk.failed(CONNECTION_REFUSED).delay == 1.0
    assert walk.answered(401).step is Step.NEXT_METHOD
    verdict = walk.failed(CONNECTION_REFUSED)
    assert verdict.step is Step.RETRY and verdict.delay == 1.0 and walk.method == "query"


def test_no_retries_fail_at_the_first_transient_failure() -> None:
    verdict = chain(retries=0).answered(500)
    assert verdict.step is Step.FAIL and isinstance(verdict.error, WsConnectError)


def test_other_http_answers_fail_at_once() -> None:
    walk = chain()
    assert walk.answered(401).step is Step.NEXT_METHOD
    verdict = walk.answered(404)
    assert verdict.step is Step.FAIL and isinstance(verdict.error, WsConnectError)
    assert str(verdict.error) == (
        f"{URL} answered HTTP 404 to the handshake (neither an auth rejection nor a transient "
        "5xx); methods tried: subprotocol, query; 2 attempts: subprotocol: HTTP 401, "
        "query: HTTP 404"
    )
    assert verdict.error.attempts[-1] == Attempt("query", "HTTP 404", 404)


def test_a_slow_handshake_is_a_timeout_naming_the_bound_and_its_source() -> None:
    walk = chain()
    error = walk.timed_out()
    assert isinstance(error, WsTimeoutError)
    assert error.attempts == (Attempt("subprotocol", "timed out after 2s"),)
    assert str(error) == (
        f"opening handshake with {URL} (auth subprotocol) did not complete within "
        "connect_timeout=2s (test); attempts: subprotocol: timed out after 2s"
    )


def test_an_invalid_handshake_fails_at_once() -> None:
    error = chain().invalid("bad Sec-WebSocket-Accept")
    assert isinstance(error, WsConnectError)
    assert error.attempts == (
        Attempt("subprotocol", "invalid handshake: bad Sec-WebSocket-Accept"),
    )
    assert str(error).startswith(f"handshake with {URL} failed; methods tried: subprotocol;")


def test_an_empty_chain_has_no_method_and_nothing_to_record() -> None:
    walk = chain(methods=())
    assert walk.method is None
    with pytest.raises(RuntimeError, match="no method left"):
        walk.failed(CONNECTION_REFUSED)


def test_network_outcomes_are_short_phrases() -> None:
    assert network_outcome(ConnectionRefusedError(111, "refused")) == CONNECTION_REFUSED
    assert network_outcome(ConnectionResetError()) == CONNECTION_RESET
    assert network_outcome(OSError(101, "Network is unreachable")) == (
        "OSError: [Errno 101] Network is unreachable"
    )


def test_attempts_text_joins_attempts_or_says_none() -> None:
    assert attempts_text([]) == "none"
    assert attempts_text([Attempt("query", "HTTP 401", 401), Attempt("header", "connected")]) == (
        "query: HTTP 401, header: connected"
    )
