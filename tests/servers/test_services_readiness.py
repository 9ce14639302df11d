"""Readiness of services over real sockets, by the one rule: a service is ready once it
answers a real WebSocket upgrade (101 and a valid ``Sec-WebSocket-Accept``, or a 401/403
to a probe without token), never merely because its port is open; a rejected token is
"not yet"; a service that dies fails the wait at once, with its logs.

The services are real local processes (`tests/service_apps/late_server.py` and the
reference server); the Docker versions of the same cases are in test_services_docker.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from service_apps.support import late_spec, reference_spec, ws_listening_at

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.errors import ServiceError, ServiceExitedError, ServiceNotReadyError
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.log_digest import DIGEST_MAX_LINES

STOP_S = 5.0


@pytest.fixture
def started() -> Iterator[list[ServiceHandle]]:
    """Handles a test starts; all stopped (bounded) at teardown, even after a failure."""
    handles: list[ServiceHandle] = []
    yield handles
    for handle in handles:
        handle.stop(STOP_S)


def test_a_late_websocket_endpoint_is_ready_only_after_it_listens(
    started: list[ServiceHandle],
) -> None:
    # The port is open (TCP accepted, nothing said) for 0.6 s before the WS endpoint.
    spec = late_spec("late", "silent-then-ws", 0.6, startup_timeout=20, attempt_timeout=0.2)
    handle = ServiceHandle(spec)
    started.append(handle)
    handle.start()
    assert handle.readiness is not None
    listening = ws_listening_at(handle.logs())
    assert handle.readiness.ready_at["upgrade"] >= listening
    # Attempts were made while only the TCP port was open, and each said why not.
    assert handle.readiness.attempts > 1
    assert "no answer after 0.20 s" in handle.readiness.last_error


def test_a_port_that_accepts_but_never_upgrades_stays_not_ready_until_the_deadline(
    started: list[ServiceHandle],
) -> None:
    spec = late_spec("silent", "silent", startup_timeout=1.2, attempt_timeout=0.3)
    handle = ServiceHandle(spec)
    started.append(handle)
    began = time.monotonic()
    with pytest.raises(ServiceNotReadyError) as info:
        handle.start()
    assert time.monotonic() - began >= spec.startup_timeout
    first_line = str(info.value).splitlines()[0]
    assert "service 'silent' was not ready within 1.2 s" in first_line
    assert "last error: no answer after" in first_line
    assert "the port may be open with nothing speaking WebSocket" in first_line
    assert "late_server mode=silent" in str(info.value)  # its log lines follow
    assert info.value.last_error.startswith("no answer")
    # The failed start removed what it started.
    assert handle.pid is not None
    assert handle._process_backend is not None
    assert handle._process_backend.exit_reason() is not None


#: Long enough for the late server to start under two CPU hogs (it was 1.0 s: flaky).
_NOT_READY_DEADLINE_S = 5.0


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("http200", "HTTP 200 instead of 101 Switching Protocols"),
        ("bad-accept", "Sec-WebSocket-Accept"),
        ("reset", "connection reset by peer|no valid HTTP response to the upgrade"),
    ],
)
def test_answers_that_are_not_a_valid_upgrade_are_not_ready(
    started: list[ServiceHandle], mode: str, expected: str
) -> None:
    # Each answer is "not yet", so the wait lasts the whole deadline, and the message
    # names the last answer: the deadline must leave the server time to start answering
    # at all under CPU load (before it listens, the answer is a refusal). It bounds the
    # test's length, not what it checks.
    spec = late_spec(mode, mode, startup_timeout=_NOT_READY_DEADLINE_S, attempt_timeout=0.3)
    handle = ServiceHandle(spec)
    started.append(handle)
    with pytest.raises(ServiceNotReadyError) as info:
        handle.start()
    # A reset lands before or after the request is written: either answer is "not yet".
    assert re.search(expected, info.value.last_error)
    assert re.search(expected, str(info.value).splitlines()[0])


def test_the_weaker_tcp_check_passes_on_a_port_that_never_upgrades(
    started: list[ServiceHandle],
) -> None:
    # Why the default is a real upgrade: a port-only wait calls this server ready.
    spec = late_spec("silent-tcp", "silent", health="tcp", startup_timeout=10)
    handle = ServiceHandle(spec)
    started.append(handle)
    handle.start()
    assert handle.readiness is not None
    assert handle.readiness.ready is not None


def test_the_http_check_passes_on_any_http_answer(started: list[ServiceHandle]) -> None:
    spec = late_spec("http", "http200", health="http", startup_timeout=10)
    handle = ServiceHandle(spec)
    started.append(handle)
    handle.start()
    assert handle.readiness is not None


def test_a_process_that_exits_fails_fast_with_its_log_trimmed(
    started: list[ServiceHandle],
) -> None:
    spec = late_spec("crash", "exit", 0.2, startup_timeout=30)
    handle = ServiceHandle(spec)
    started.append(handle)
    began = time.monotonic()
    with pytest.raises(ServiceExitedError) as info:
        handle.start()
    waited = time.monotonic() - began
    assert waited < spec.startup_timeout / 2
    message = str(info.value)
    assert message.splitlines()[0].startswith("service 'crash' process exited with status 3")
    assert "fatal: cannot open the database (on purpose)" in message
    assert "startup log line 39" in message
    log = message.split("(trimmed):\n", 1)[1].splitlines()
    assert log[0].startswith("late_server mode=exit") and "startup log line 0" in log
    assert len(log) <= DIGEST_MAX_LINES  # the first lines and the last ones
    # The log survives the process, on the handle.
    assert "fatal: cannot open the database" in handle.logs()


def test_authenticated_readiness_with_a_ping_round_trip(started: list[ServiceHandle]) -> None:
    spec, tokens = reference_spec("ref-auth", auth=True, ping=True, startup_timeout=20)
    handle = ServiceHandle(spec, token_factory=tokens)
    started.append(handle)
    handle.start()
    readiness = handle.readiness
    assert readiness is not None
    assert list(readiness.ready_at) == ["alive", "upgrade", "auth", "ping"]
    assert readiness.ready_at["auth"] <= readiness.ready_at["ping"] <= (readiness.ready or 0)


def test_an_auth_server_is_ready_on_its_refusal_of_a_probe_without_token(
    started: list[ServiceHandle],
) -> None:
    # The one rule: a 401 to a tokenless probe proves the endpoint is served.
    spec, _ = reference_spec("ref-noauth", startup_timeout=20, attempt_timeout=0.5)
    handle = ServiceHandle(spec)
    started.append(handle)
    handle.start()
    assert handle.readiness is not None and handle.readiness.ready is not None
    assert list(handle.readiness.ready_at) == ["alive", "upgrade"]


def test_a_ping_check_is_not_satisfied_by_a_refusal(started: list[ServiceHandle]) -> None:
    spec, _ = reference_spec("ref-noauth-ping", ping=True, startup_timeout=1.0)
    handle = ServiceHandle(spec)
    started.append(handle)
    with pytest.raises(ServiceNotReadyError) as info:
        handle.start()
    assert info.value.last_error.startswith("HTTP 401: the endpoint is served but wants a token")
    assert "ping=True needs auth=True" in str(info.value).splitlines()[0]


def test_tokens_signed_with_the_wrong_key_never_make_it_ready(
    started: list[ServiceHandle],
) -> None:
    spec, _ = reference_spec("ref-wrongkey", auth=True, startup_timeout=5.0, attempt_timeout=0.5)
    handle = ServiceHandle(spec, token_factory=TokenFactory())  # another secret
    started.append(handle)
    with pytest.raises(ServiceNotReadyError) as info:
        handle.start()
    assert "401" in info.value.last_error or "403" in info.value.last_error
    assert "the token was rejected" in info.value.last_error
    assert "secret or key" in str(info.value).splitlines()[0]


def test_auth_without_a_token_factory_fails_at_once() -> None:
    spec, _ = reference_spec("ref-nofactory", auth=True)
    handle = ServiceHandle(spec)
    with pytest.raises(ServiceError, match="auth=True needs a token factory"):
        handle.start()
    assert not handle.started


def test_a_command_that_cannot_run_fails_with_one_line() -> None:
    from pytest_ws_resilience.config.services import ServiceSpec

    handle = ServiceHandle(ServiceSpec("nothing", command="/nonexistent/ws-server {port}"))
    with pytest.raises(ServiceError) as info:
        handle.start()
    assert str(info.value) == (
        "service 'nothing': cannot run '/nonexistent/ws-server': No such file or directory"
    )
