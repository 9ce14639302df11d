"""The one readiness rule, as pure logic: verdicts on probe outcomes, the pauses between
attempts, the checks' steps and the messages. No sockets, no loop."""

from __future__ import annotations

import itertools

import pytest

from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.servers.log_digest import DIGEST_MAX_LINES
from pytest_ws_resilience.servers.readiness import (
    NOT_LISTENING,
    POLL_BACKOFF,
    SERVER_ERROR_REPEATS,
    Answer,
    ProbeOutcome,
    ReadinessCheck,
    ReadinessResult,
    judge,
    never_message,
    not_ready_message,
    poll_delays,
    server_not_ready_message,
    tail_lines,
)

AT = 100.0
PLAIN = ReadinessCheck(startup_timeout=5)
WITH_TOKEN = ReadinessCheck(startup_timeout=5, auth=True)
WITH_PING = ReadinessCheck(startup_timeout=5, ping=True)


def status(code: int) -> ProbeOutcome:
    return ProbeOutcome(Answer.STATUS, AT, status=code)


def switched(**steps: float) -> ProbeOutcome:
    return ProbeOutcome(Answer.COMPLETED, AT, {"upgrade": AT, **steps})


# -- the rule --------------------------------------------------------------------------------


def test_a_valid_upgrade_is_ready_with_the_time_of_each_step() -> None:
    verdict = judge(PLAIN, switched())
    assert verdict.ready and verdict.reason == ""
    assert verdict.steps == {"upgrade": AT}
    both = judge(
        ReadinessCheck(startup_timeout=5, auth=True, ping=True),
        switched(auth=AT, ping=AT + 1),
    )
    assert both.ready and both.steps == {"upgrade": AT, "auth": AT, "ping": AT + 1}


@pytest.mark.parametrize("code", [401, 403])
def test_an_auth_refusal_of_a_probe_without_token_proves_the_endpoint_is_served(
    code: int,
) -> None:
    verdict = judge(PLAIN, status(code))
    assert verdict.ready
    assert verdict.steps == {"upgrade": AT}


@pytest.mark.parametrize("code", [401, 403])
def test_an_auth_refusal_of_an_authenticated_probe_is_not_yet_and_blames_the_token(
    code: int,
) -> None:
    verdict = judge(WITH_TOKEN, status(code))
    assert not verdict.ready
    assert verdict.reason.startswith(f"HTTP {code}: the token was rejected")
    assert "secret or key" in verdict.reason


def test_an_auth_refusal_does_not_satisfy_a_check_that_wants_a_ping() -> None:
    verdict = judge(WITH_PING, status(401))
    assert not verdict.ready
    assert "ping=True needs auth=True" in verdict.reason


@pytest.mark.parametrize("code", [200, 426, 500, 503])
def test_any_other_status_is_not_yet(code: int) -> None:
    verdict = judge(PLAIN, status(code))
    assert not verdict.ready and not verdict.never
    assert verdict.reason == (
        f"HTTP {code} instead of 101 Switching Protocols (not a WebSocket upgrade)"
    )


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (404, "wrong path? (--ws-path / path)"),
        (405, "takes no WebSocket upgrade: wrong path?"),
        (400, "refused the handshake request itself"),
    ],
)
def test_answers_that_will_not_change_are_never(code: int, hint: str) -> None:
    for check in (PLAIN, WITH_TOKEN):
        verdict = judge(check, status(code))
        assert verdict.never and not verdict.ready
        assert verdict.reason.startswith(f"answered HTTP {code} to the WebSocket handshake: ")
        assert hint in verdict.reason


def test_a_404_names_the_setting_that_chose_the_path() -> None:
    spec = ServiceSpec("api", command="serve {port}", path="/socket")
    verdict = judge(ReadinessCheck.of_service(spec), status(404))
    assert verdict.never and "wrong path? (the service's path ('/socket'))" in verdict.reason


@pytest.mark.parametrize("code", [401, 403])
def test_an_auth_refusal_of_an_unauthenticated_server_is_never(code: int) -> None:
    check = ReadinessCheck(startup_timeout=5, unauthenticated=True)
    verdict = judge(check, status(code))
    assert verdict.never and not verdict.ready
    assert f"answered HTTP {code} to the WebSocket handshake" in verdict.reason
    assert "does not depend on credentials" in verdict.reason and "Origin" in verdict.reason
    spec = ServiceSpec("api", command="serve {port}")
    assert ReadinessCheck.of_service(spec, unauthenticated=True).unauthenticated


@pytest.mark.parametrize("code", [502, 503, 504])
def test_unavailable_statuses_are_waited_out_however_often_they_repeat(code: int) -> None:
    # What a server (or its gateway) answers while it starts: not final.
    for repeats in (1, 3, 50):
        verdict = judge(PLAIN, status(code), repeats=repeats)
        assert not verdict.never and not verdict.ready


@pytest.mark.parametrize("code", [500, 501, 507])
def test_the_same_5xx_three_times_in_a_row_is_never(code: int) -> None:
    assert SERVER_ERROR_REPEATS == 3
    for repeats in (1, 2):
        assert not judge(PLAIN, status(code), repeats=repeats).never
    verdict = judge(PLAIN, status(code), repeats=3)
    assert verdict.never and verdict.reason == (
        f"answered HTTP {code} to the WebSocket handshake: 3 times in a row: the handler "
        "fails on every handshake (see its log)"
    )


def test_statuses_do_not_end_tcp_or_http_checks() -> None:
    check = ReadinessCheck(startup_timeout=5, health="http")
    assert not judge(check, status(404)).never


def test_the_never_message_is_one_line_then_the_trimmed_log() -> None:
    logs = "\n".join(["booting", *(f"noise {n}" for n in range(300)), "the end"])
    text = never_message(
        "service 'api'",
        url="ws://127.0.0.1:9/wrong",
        reason="answered HTTP 404 to the WebSocket handshake: wrong path? (x)",
        logs=logs,
    )
    first, second, *log = text.splitlines()
    assert first == (
        "service 'api' at ws://127.0.0.1:9/wrong answered HTTP 404 to the WebSocket "
        "handshake: wrong path? (x)"
    )
    assert second == "its log (trimmed):"
    assert len(log) <= DIGEST_MAX_LINES and log[0] == "booting" and log[-1] == "the end"
    assert never_message("x", url=None, reason="r", logs="") == "x at its endpoint r"


def test_a_probe_that_skipped_a_step_the_check_asks_for_is_not_ready() -> None:
    verdict = judge(WITH_PING, switched())
    assert not verdict.ready and "ping" in verdict.reason


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (ProbeOutcome(Answer.REFUSED, AT), "connection refused (nothing listening yet)"),
        (ProbeOutcome(Answer.RESET, AT), "connection reset by peer"),
        (ProbeOutcome(Answer.CLOSED, AT), "connection closed during the check"),
        (
            ProbeOutcome(Answer.TIMED_OUT, AT, bound_s=0.5),
            "no answer after 0.50 s (the port may be open with nothing speaking WebSocket)",
        ),
        (
            ProbeOutcome(Answer.TIMED_OUT, AT, {"upgrade": AT}, bound_s=0.5),
            "no pong after 0.50 s",
        ),
        (
            ProbeOutcome(Answer.INVALID_RESPONSE, AT, detail="invalid Sec-WebSocket-Accept"),
            "invalid handshake response: invalid Sec-WebSocket-Accept",
        ),
        (
            ProbeOutcome(Answer.NO_HTTP_RESPONSE, AT, detail="EOFError"),
            "no valid HTTP response to the upgrade (EOFError)",
        ),
        (
            ProbeOutcome(Answer.HANDSHAKE_FAILED, AT, detail="bad upgrade"),
            "handshake rejected: bad upgrade",
        ),
        (ProbeOutcome(Answer.FAILED, AT, detail="OSError: boom"), "OSError: boom"),
    ],
)
def test_every_failed_attempt_is_not_yet_and_says_why_in_a_few_words(
    outcome: ProbeOutcome, text: str
) -> None:
    verdict = judge(PLAIN, outcome)
    assert not verdict.ready
    assert verdict.reason.startswith(text)


def test_a_timeout_the_deadline_cut_short_is_marked_so_an_earlier_answer_is_kept() -> None:
    check = ReadinessCheck(startup_timeout=5, attempt_timeout=2.0)
    cut = judge(check, ProbeOutcome(Answer.TIMED_OUT, AT, bound_s=0.01))
    full = judge(check, ProbeOutcome(Answer.TIMED_OUT, AT, bound_s=2.0))
    assert cut.cut_short and not full.cut_short
    assert not judge(check, status(404)).cut_short


def test_the_weaker_checks_are_ready_on_what_their_probe_completed() -> None:
    for health in ("tcp", "http"):
        assert judge(ReadinessCheck(startup_timeout=1, health=health), switched()).ready


# -- pauses, steps, checks -------------------------------------------------------------------


def test_polling_starts_at_10_ms_and_never_waits_more_than_100_ms() -> None:
    delays = list(itertools.islice(poll_delays(), 40))
    assert delays[0] == pytest.approx(0.01)
    assert delays == sorted(delays)
    assert max(delays) == POLL_BACKOFF.cap == pytest.approx(0.1)
    assert delays[-1] == pytest.approx(0.1)


def test_a_services_check_follows_its_spec() -> None:
    plain = ReadinessCheck.of_service(ServiceSpec("s", command="x"))
    assert plain.steps == ("alive", "upgrade")
    assert plain.what == "a WebSocket upgrade"
    full = ReadinessCheck.of_service(
        ServiceSpec("s", command="x", auth=True, ping=True, startup_timeout=7, attempt_timeout=1)
    )
    assert full.steps == ("alive", "upgrade", "auth", "ping")
    assert (full.startup_timeout, full.attempt_timeout) == (7, 1)
    assert full.what == "a WebSocket upgrade with a token and a ping round trip"
    tcp = ReadinessCheck.of_service(ServiceSpec("s", command="x", health="tcp"))
    assert tcp.what == "a TCP connect (health='tcp')"


def test_auth_and_ping_need_the_websocket_check() -> None:
    with pytest.raises(ValueError, match="need health = 'websocket'"):
        ReadinessCheck(startup_timeout=1, health="tcp", ping=True)
    with pytest.raises(ValueError, match="health = 'udp'"):
        ReadinessCheck(startup_timeout=1, health="udp")


def test_a_result_knows_how_long_the_wait_took() -> None:
    result = ReadinessResult(started_at=10.0)
    assert result.elapsed_s is None and result.waited_s == 0.0
    result.finished = 12.5
    assert result.elapsed_s is None and result.waited_s == 2.5
    result.ready = 11.0
    assert result.elapsed_s == result.waited_s == 1.0


# -- messages ---------------------------------------------------------------------------------


def test_the_not_ready_message_leads_with_service_deadline_and_last_error() -> None:
    logs = "\n".join(f"line {n}" for n in range(100))
    text = not_ready_message(
        "api", deadline_s=5, attempts=12, last_error="HTTP 503", logs=logs, what="an upgrade"
    )
    first, *rest = text.splitlines()
    assert first == (
        "service 'api' was not ready within 5 s (12 attempts; waited for an upgrade); "
        "last error: HTTP 503"
    )
    assert rest[0] == "log of 'api' (trimmed):"
    assert rest[1] == "line 0" and rest[-1] == "line 99" and len(rest) - 1 <= DIGEST_MAX_LINES
    assert tail_lines("") == "(no output)"


def test_a_server_under_test_that_never_answers_names_its_url_and_last_answer() -> None:
    text = server_not_ready_message(
        "ASGI app m:app",
        url="ws://127.0.0.1:9/ws",
        deadline_s=0.5,
        attempts=4,
        last_error="HTTP 404 instead of 101",
        logs="",
    )
    assert text == (
        "ASGI app m:app did not answer a WebSocket handshake on ws://127.0.0.1:9/ws within "
        "0.5 s (4 attempts); last answer: HTTP 404 instead of 101"
    )
    no_address = server_not_ready_message(
        "ASGI app m:app (subprocess)",
        url=None,
        deadline_s=2,
        attempts=0,
        last_error=NOT_LISTENING,
        logs="INFO: Waiting for application startup.\n",
    )
    first, *rest = no_address.splitlines()
    assert "never had an address" in first and f"last answer: {NOT_LISTENING}" in first
    assert rest == ["its output (trimmed):", "INFO: Waiting for application startup."]
