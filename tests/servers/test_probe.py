"""The one wait over real sockets: `probe_once` against real WebSocket servers, `wait_ready`
on a small `ReadinessTarget`, and what the probe reports for each failure.

The servers are real ``websockets`` servers on loopback, answering the handshake the way
a test needs (101, 401, 404); the targets are plain objects answering the interface.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeaderValue, InvalidMessage, InvalidStatus
from websockets.http11 import Request, Response

from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.redaction import REDACTED, register_secret
from pytest_ws_resilience.servers.probe import (
    ProbeAuth,
    outcome_of,
    probe_once,
    raise_unless_served,
    wait_ready,
    wait_ready_blocking,
)
from pytest_ws_resilience.servers.readiness import (
    NOT_LISTENING,
    Answer,
    ReadinessCheck,
    ReadinessResult,
)

QUICK = ReadinessCheck(startup_timeout=1.0, attempt_timeout=0.3)


async def _echo(conn: ServerConnection) -> None:
    async for message in conn:
        await conn.send(message)


@asynccontextmanager
async def ws_server(answer: int | None = None, *, delay: float = 0.0) -> AsyncIterator[str]:
    """A real WebSocket server on loopback; ``answer`` refuses every handshake with that
    HTTP status instead of switching, after ``delay`` seconds."""

    async def process_request(conn: ServerConnection, request: Request) -> Response | None:
        await asyncio.sleep(delay)
        return None if answer is None else conn.respond(HTTPStatus(answer), "no\n")

    async with serve(_echo, "127.0.0.1", 0, process_request=process_request) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Target:
    """A `ReadinessTarget` under the test's control."""

    url: str | None
    ended: str | None = None
    log: str = ""
    address_after: float = 0.0

    def __post_init__(self) -> None:
        self._born = time.monotonic()

    def probe_url(self) -> str | None:
        if time.monotonic() - self._born < self.address_after:
            return None
        return self.url

    def exit_reason(self) -> str | None:
        return self.ended

    def log_so_far(self) -> str:
        return self.log


# -- one attempt, real sockets -----------------------------------------------------------


@pytest.mark.asyncio
async def test_a_real_upgrade_completes_with_the_time_of_each_step() -> None:
    async with ws_server() as url:
        before = time.monotonic()
        outcome = await probe_once(url, ReadinessCheck(startup_timeout=1, ping=True), timeout=1.0)
    assert outcome.answer is Answer.COMPLETED
    assert before <= outcome.steps["upgrade"] <= outcome.steps["ping"] <= outcome.at


@pytest.mark.asyncio
@pytest.mark.parametrize("code", [401, 403, 404, 500])
async def test_a_refused_handshake_is_reported_with_its_status(code: int) -> None:
    async with ws_server(answer=code) as url:
        outcome = await probe_once(url, QUICK, timeout=1.0)
    assert (outcome.answer, outcome.status) == (Answer.STATUS, code)


@pytest.mark.asyncio
async def test_an_authenticated_probe_reports_the_status_of_its_rejected_token() -> None:
    async with ws_server(answer=401) as url:
        outcome = await probe_once(
            url,
            ReadinessCheck(startup_timeout=1, auth=True),
            timeout=1.0,
            auth=ProbeAuth("not-a-valid-token"),
        )
    assert (outcome.answer, outcome.status) == (Answer.STATUS, 401)


@pytest.mark.asyncio
async def test_nothing_listening_is_a_refusal() -> None:
    outcome = await probe_once(f"ws://127.0.0.1:{closed_port()}/", QUICK, timeout=1.0)
    assert outcome.answer is Answer.REFUSED


@pytest.mark.asyncio
async def test_the_tcp_and_http_checks_probe_the_same_url() -> None:
    async with ws_server() as url:
        tcp = await probe_once(url, ReadinessCheck(1, health="tcp"), timeout=1.0)
        http = await probe_once(url, ReadinessCheck(1, health="http"), timeout=1.0)
    assert tcp.answer is http.answer is Answer.COMPLETED


@pytest.mark.asyncio
async def test_an_authenticated_check_without_a_token_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="needs a token"):
        await probe_once("ws://127.0.0.1:9/", ReadinessCheck(1, auth=True), timeout=0.1)


# -- what the probe reports for each failure -----------------------------------------------


def _invalid_message() -> InvalidMessage:
    err = InvalidMessage("did not receive a valid HTTP response")
    err.__cause__ = EOFError()
    return err


@pytest.mark.parametrize(
    ("exc", "answer", "status"),
    [
        (InvalidStatus(Response(404, "Not Found", Headers())), Answer.STATUS, 404),
        (InvalidHeaderValue("Sec-WebSocket-Accept", "x"), Answer.INVALID_RESPONSE, None),
        (_invalid_message(), Answer.NO_HTTP_RESPONSE, None),
        (TimeoutError(), Answer.TIMED_OUT, None),
        (WsTimeoutError("handshake out of time"), Answer.TIMED_OUT, None),
        (ConnectionRefusedError(), Answer.REFUSED, None),
        (ConnectionResetError(), Answer.RESET, None),
        (EOFError(), Answer.CLOSED, None),
        (WsAuthError("rejected", attempts=[Attempt("query", "HTTP 403", 403)]), Answer.STATUS, 403),
        (WsResilienceError("could not connect\nmore"), Answer.FAILED, None),
        (OSError(113, "No route to host"), Answer.FAILED, None),
    ],
)
def test_every_failure_becomes_plain_data(
    exc: BaseException, answer: Answer, status: int | None
) -> None:
    outcome = outcome_of(exc, steps={}, at=1.0, bound_s=0.5)
    assert (outcome.answer, outcome.status, outcome.bound_s) == (answer, status, 0.5)
    assert "\n" not in outcome.detail


def test_the_details_name_the_cause_and_hide_secrets() -> None:
    secret = "probe-secret-0123456789"
    register_secret(secret)
    assert outcome_of(_invalid_message(), steps={}, at=1, bound_s=1).detail == "EOFError"
    odd = outcome_of(RuntimeError(f"bad {secret}"), steps={}, at=1, bound_s=1)
    assert odd.detail == f"RuntimeError: bad {REDACTED}"


# -- the wait ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_endpoint_refusing_a_tokenless_probe_is_ready_at_once() -> None:
    async with ws_server(answer=401) as url:
        result = await wait_ready(Target(url), QUICK)
    assert result.ready is not None and result.attempts == 1
    assert list(result.ready_at) == ["alive", "upgrade"]


@pytest.mark.asyncio
async def test_a_rejected_token_never_makes_it_ready() -> None:
    check = ReadinessCheck(startup_timeout=0.6, attempt_timeout=0.3, auth=True)
    async with ws_server(answer=403) as url:
        result = await wait_ready(Target(url), check, auth=ProbeAuth("wrong-token"))
    assert result.ready is None and result.ended is None
    assert result.last_error.startswith("HTTP 403: the token was rejected")
    assert result.attempts > 1


@pytest.mark.asyncio
async def test_a_server_without_an_address_yet_is_waited_for() -> None:
    async with ws_server() as url:
        began = time.monotonic()
        result = await wait_ready(Target(url, address_after=0.2), QUICK)
    assert result.ready is not None and result.ready - began >= 0.2
    assert result.url == url and result.attempts == 1


@pytest.mark.asyncio
async def test_nothing_listening_is_retried_until_the_deadline() -> None:
    url = f"ws://127.0.0.1:{closed_port()}/"
    began = time.monotonic()
    result = await wait_ready(Target(url, log="booting\n"), QUICK, started_at=began)
    assert result.ready is None and result.ended is None
    assert result.finished is not None and result.finished - began >= QUICK.startup_timeout
    assert result.attempts > 3  # 10 ms, growing to 100 ms between attempts
    assert result.last_error == "connection refused (nothing listening yet)"
    assert result.logs == "booting\n" and result.url == url


@pytest.mark.asyncio
async def test_a_target_that_ended_ends_the_wait_at_once_with_its_log() -> None:
    target = Target(None, ended="process exited with status 3", log="fatal: no config\n")
    result = await wait_ready(target, ReadinessCheck(startup_timeout=30))
    assert result.ended == "process exited with status 3"
    assert result.logs == "fatal: no config\n" and result.waited_s < 5
    assert result.attempts == 0


@pytest.mark.asyncio
async def test_the_blocking_wait_works_inside_a_running_loop() -> None:
    async with ws_server() as url:
        # The server runs on this loop: the wait must not block it, so run it aside.
        result = await asyncio.to_thread(wait_ready_blocking, Target(url), QUICK)
    assert result.ready is not None


# -- the errors of a server under test -----------------------------------------------------


class AppFailed(WsResilienceError):
    """Stands for the caller's own startup error type."""


def test_a_server_that_ended_raises_the_callers_startup_error_with_its_output() -> None:
    result = ReadinessResult(started_at=0, ended="exited with code 3 before serving")
    result.logs = "line 1\nRuntimeError: boom\n"
    with pytest.raises(AppFailed) as info:
        raise_unless_served(result, what="app X", deadline_s=1, startup_error=AppFailed)
    assert str(info.value) == (
        "app X exited with code 3 before serving; its output (trimmed):\nline 1\nRuntimeError: boom"
    )


def test_a_server_that_never_answered_raises_a_timeout_naming_url_and_answer() -> None:
    result = ReadinessResult(started_at=0, attempts=3, last_error=NOT_LISTENING)
    with pytest.raises(WsTimeoutError, match=r"app X did not answer .* within 2 s"):
        raise_unless_served(result, what="app X", deadline_s=2, startup_error=AppFailed)
    result.url, result.last_error = "ws://127.0.0.1:9/ws", "HTTP 404 instead of 101"
    with pytest.raises(WsTimeoutError, match=r"ws://127\.0\.0\.1:9/ws .*last answer: HTTP 404"):
        raise_unless_served(result, what="app X", deadline_s=2, startup_error=AppFailed)
    result.ready = 1.0
    raise_unless_served(result, what="app X", deadline_s=2, startup_error=AppFailed)


@pytest.mark.asyncio
async def test_the_last_answer_is_not_hidden_by_an_attempt_the_deadline_cut_short() -> None:
    # Each 404 takes 0.15 s: the attempt the deadline leaves less time than that ends
    # in "no answer", which must not replace the 404 seen before.
    check = ReadinessCheck(startup_timeout=0.5, attempt_timeout=2.0)
    async with ws_server(answer=426, delay=0.15) as url:
        result = await wait_ready(Target(url), check)
    assert result.ready is None and result.attempts > 1 and result.never is None
    assert result.last_error.startswith("HTTP 426 instead of 101")
