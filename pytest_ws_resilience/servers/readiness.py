"""When is a server up? The one rule, for every kind of server, with no I/O.

The embedded reference server, the user's ASGI app (in a thread or a subprocess), a
``--ws-server-cmd`` process and the Docker and process services are all waited for by
this rule, through the one wait in `probe`. A server is ready after one attempt passed
every step of its check:

1. ``alive``: the server has not ended (thread, process, container). If it has, the
   wait fails at once with its log (`log_digest`): there is no point waiting longer.
2. ``upgrade``: a real WebSocket handshake on the endpoint answered with one of
   - ``101 Switching Protocols`` with a valid ``Sec-WebSocket-Accept``: ready;
   - ``401`` or ``403`` to a probe that carried no token: the endpoint exists and
     checks tokens, so it is served: ready (but a ``ping`` step needs a connection,
     so a check that asks for one is not satisfied by a refusal);
   - ``401`` or ``403`` to an authenticated probe: "not yet", the token is rejected
     (the message hints at the secret or key the server verifies tokens with);
   - an answer that will not change (see "never" below): the wait fails at once;
   - anything else (another status, no valid HTTP answer, a bad
     ``Sec-WebSocket-Accept``, a timeout, a refusal, a reset): "not yet".
   (``tcp``: a connect; ``http``: any HTTP answer. Both are weaker, for services that
   are no WebSocket servers.)
3. ``auth``: the handshake carried a token minted for the run, when asked for.
4. ``ping``: one ping round trip on that connection, when asked for.

"Never": an answer from a live server that no amount of waiting changes ends the wait
at once, with one line naming the status and the URL (a 404 for a wrong path used to
be retried for 30 s):

- ``404`` (wrong path), ``405`` (not an upgrade endpoint), ``400`` (the server refuses
  the handshake request itself: a header, a subprotocol, the Origin);
- ``401`` / ``403`` to a probe without a token when the configuration says the server
  is unauthenticated (``auth_methods = ["none"]``): it should accept that handshake;
- the same ``5xx`` `SERVER_ERROR_REPEATS` times in a row (one 5xx may be a server
  still warming up; the same one three times is a handler that fails every time),
  except the statuses that say "not yet" by definition (`UNAVAILABLE_STATUSES`: 502,
  503 and 504, what a server or its gateway answers while it starts), which are waited
  out until the deadline like any other "not yet".

Attempts are bounded each (``attempt_timeout``) and all together
(``startup_timeout``); the pause between them starts at 10 ms and grows to 100 ms
(`POLL_BACKOFF`), so readiness is noticed within about 100 ms and a slow start is not
hammered.

The sans-I/O contract: this module never sees a socket, an exception or a clock. The
probe (`probe.probe_once`) performs one attempt and reports what happened as a
`ProbeOutcome` (plain data: which `Answer`, the HTTP status, the monotonic time of the
answer, the steps it completed); `judge` turns that into a `Verdict`, and the caller
must then either return (ready) or pause for the next of `poll_delays` and probe
again. The messages of a failed wait are built here too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.servers.log_digest import digest

__all__ = [
    "AUTH_REJECTIONS",
    "DEFAULT_ATTEMPT_TIMEOUT_S",
    "LOG_TAIL_LINES",
    "NEVER_STATUSES",
    "NOT_LISTENING",
    "POLL_BACKOFF",
    "SERVER_ERROR_REPEATS",
    "STEP_ALIVE",
    "STEP_AUTH",
    "STEP_PING",
    "STEP_UPGRADE",
    "UNAVAILABLE_STATUSES",
    "Answer",
    "ProbeOutcome",
    "ReadinessCheck",
    "ReadinessResult",
    "Verdict",
    "describe",
    "exited_message",
    "judge",
    "never_message",
    "not_ready_message",
    "poll_delays",
    "server_not_ready_message",
    "tail_lines",
]

STEP_ALIVE = "alive"
STEP_UPGRADE = "upgrade"
STEP_AUTH = "auth"
STEP_PING = "ping"

#: Handshake refusals that prove an endpoint exists and checks tokens.
AUTH_REJECTIONS = frozenset({401, 403})
#: Answers to the upgrade that will not change however long the wait: it fails at once.
NEVER_STATUSES = frozenset({400, 404, 405})
#: The same 5xx this many times in a row from a live server fails the wait.
SERVER_ERROR_REPEATS = 3
#: 5xx statuses that mean "not available yet" (bad gateway, unavailable, gateway
#: timeout): never final, however often they repeat.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
#: Pauses between attempts: 10 ms, growing by half each time, at most 100 ms.
POLL_BACKOFF = Backoff(base=0.01, factor=1.5, cap=0.1)
#: The bound of one attempt when the caller does not choose one.
DEFAULT_ATTEMPT_TIMEOUT_S = 2.0
#: Log lines put in a start failure.
LOG_TAIL_LINES = 30
#: Why an attempt was not made: the server has no address yet (port not bound/printed).
NOT_LISTENING = "not listening yet (no address to probe: still starting)"

_HEALTH_KINDS = ("websocket", "tcp", "http")


class Answer(StrEnum):
    """What one probe saw, as the probe reports it (see `ProbeOutcome`)."""

    #: Every step the probe was asked for succeeded (101 with a valid accept, the auth,
    #: the ping; for ``tcp`` a connect, for ``http`` an HTTP answer).
    COMPLETED = "completed"
    #: An HTTP status other than 101 answered the upgrade (``status`` holds it).
    STATUS = "status"
    #: A response to the upgrade that is not a valid handshake (e.g. a wrong
    #: ``Sec-WebSocket-Accept``); ``detail`` says what.
    INVALID_RESPONSE = "invalid_response"
    #: No parseable HTTP response to the upgrade; ``detail`` may name the cause.
    NO_HTTP_RESPONSE = "no_http_response"
    #: The handshake failed some other way; ``detail`` says how.
    HANDSHAKE_FAILED = "handshake_failed"
    #: Nothing answered within the attempt's bound (``bound_s``).
    TIMED_OUT = "timed_out"
    REFUSED = "refused"
    RESET = "reset"
    #: The connection closed (EOF) before the check finished.
    CLOSED = "closed"
    #: Anything else; ``detail`` is one redacted line.
    FAILED = "failed"


@dataclass(frozen=True)
class ReadinessCheck:
    """What one wait checks, and how long it may take.

    Args:
        startup_timeout: the deadline of the whole wait, seconds.
        attempt_timeout: the bound of one attempt, seconds.
        health: ``websocket`` (a real handshake), ``tcp`` (connect only) or ``http``
            (any HTTP answer).
        auth: the handshake carries a token (the caller hands the probe one).
        ping: one ping round trip on the connection, after the handshake.
        unauthenticated: the server checks no credential (``auth_methods =
            ["none"]``): a 401/403 to the tokenless probe is final, not "served".
        path_setting: the setting that chose the probed path, named by the hint of a
            404 (e.g. ``--ws-path / path``).
    """

    startup_timeout: float
    attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT_S
    health: str = "websocket"
    auth: bool = False
    ping: bool = False
    unauthenticated: bool = False
    path_setting: str = "--ws-path / path"

    def __post_init__(self) -> None:
        if self.health not in _HEALTH_KINDS:
            raise ValueError(f"health = {self.health!r}: expected one of {_HEALTH_KINDS}")
        if (self.auth or self.ping) and self.health != "websocket":
            raise ValueError("auth and ping need health = 'websocket'")

    @classmethod
    def of_service(cls, spec: ServiceSpec, *, unauthenticated: bool = False) -> Self:
        """The check a `ServiceSpec` asks for (``unauthenticated``: the run's settings
        say the servers check no credential)."""
        return cls(
            startup_timeout=spec.startup_timeout,
            attempt_timeout=spec.attempt_timeout,
            health=spec.health,
            auth=spec.auth,
            ping=spec.ping,
            unauthenticated=unauthenticated and not spec.auth,
            path_setting=f"the service's path ({spec.path!r})",
        )

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps, in order (``upgrade`` is the tcp connect or the http answer for
        those checks)."""
        optional = ((STEP_AUTH, self.auth), (STEP_PING, self.ping))
        return (STEP_ALIVE, STEP_UPGRADE, *(step for step, wanted in optional if wanted))

    @property
    def what(self) -> str:
        """What the wait waits for, in words (part of the messages)."""
        if self.health == "tcp":
            return "a TCP connect (health='tcp')"
        if self.health == "http":
            return "an HTTP response (health='http')"
        token = " with a token" if self.auth else ""
        ping = " and a ping round trip" if self.ping else ""
        return f"a WebSocket upgrade{token}{ping}"


@dataclass(frozen=True)
class ProbeOutcome:
    """What one attempt saw, translated by the probe into plain data.

    Args:
        answer: how the attempt ended.
        at: monotonic time of the answer (or of the failure).
        steps: step name -> monotonic time, for the steps the probe completed
            (``upgrade``, ``auth``, ``ping``).
        status: the HTTP status, for `Answer.STATUS`.
        detail: one redacted line, for the answers that carry one.
        bound_s: the attempt's bound, for `Answer.TIMED_OUT`.
    """

    answer: Answer
    at: float
    steps: Mapping[str, float] = field(default_factory=dict)
    status: int | None = None
    detail: str = ""
    bound_s: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The rule's answer on one attempt: ready (with the time of each step), not yet
    (with the reason in a few words), or ``never`` (the reason is the whole first line
    of the failure: the answer will not change, the wait fails at once).

    ``cut_short`` marks an attempt that timed out because the deadline left it less
    than its full bound: its "no answer" says less than what an earlier attempt saw
    (say, an HTTP 404), so the wait keeps the earlier reason as the last answer.
    """

    ready: bool
    reason: str = ""
    steps: Mapping[str, float] = field(default_factory=dict)
    cut_short: bool = False
    never: bool = False


def _never(check: ReadinessCheck, status: int, repeats: int) -> str | None:
    """Why ``status`` will not change (the hint after the status), or None."""
    if status == 404:
        return f"wrong path? ({check.path_setting})"
    if status == 405:
        return f"the endpoint takes no WebSocket upgrade: wrong path? ({check.path_setting})"
    if status == 400:
        return (
            "the server refused the handshake request itself (a required header, "
            "subprotocol or Origin? see the connection options)"
        )
    if status in AUTH_REJECTIONS and check.unauthenticated and not check.auth:
        return (
            'auth_methods = ["none"] says the server needs no token, yet it refused a '
            "handshake without one: the refusal does not depend on credentials (Origin? "
            "allowed hosts? a required header? the path?)"
        )
    if (
        500 <= status < 600
        and status not in UNAVAILABLE_STATUSES
        and repeats >= SERVER_ERROR_REPEATS
    ):
        return f"{repeats} times in a row: the handler fails on every handshake (see its log)"
    return None


def judge(check: ReadinessCheck, outcome: ProbeOutcome, *, repeats: int = 1) -> Verdict:
    """Apply the rule (see the module docstring) to one attempt's outcome.

    Args:
        repeats: how many attempts in a row, this one included, answered this same
            HTTP status (the caller counts; a 5xx is final at `SERVER_ERROR_REPEATS`).

    After a "not yet" verdict the caller pauses (`poll_delays`) and probes again, until
    the server ends or the deadline passes; after "ready" it stops probing; after
    "never" it fails at once with the reason.
    """
    if outcome.answer is Answer.COMPLETED:
        missing = [s for s in check.steps[1:] if s not in outcome.steps]
        if not missing:
            return Verdict(True, steps=dict(outcome.steps))
        return Verdict(False, f"the probe skipped the steps {', '.join(missing)}")
    status = outcome.status
    if outcome.answer is Answer.STATUS and status is not None and check.health == "websocket":
        hint = _never(check, status, repeats)
        if hint is not None:
            return Verdict(
                False,
                f"answered HTTP {status} to the WebSocket handshake: {hint}",
                never=True,
            )
    if outcome.answer is Answer.STATUS and status in AUTH_REJECTIONS:
        if check.auth:
            return Verdict(
                False,
                f"HTTP {status}: the token was rejected (does the server verify tokens "
                "with the run's secret or key?)",
            )
        if check.ping:
            return Verdict(
                False,
                f"HTTP {status}: the endpoint is served but wants a token, so there is no "
                "connection to ping (ping=True needs auth=True)",
            )
        return Verdict(True, steps={STEP_UPGRADE: outcome.at})
    cut_short = (
        outcome.answer is Answer.TIMED_OUT
        and outcome.bound_s is not None
        and outcome.bound_s < check.attempt_timeout
    )
    return Verdict(False, describe(outcome), cut_short=cut_short)


def describe(outcome: ProbeOutcome) -> str:
    """One short line saying what an attempt saw, for "not yet" and the final message."""
    answer, detail = outcome.answer, outcome.detail
    if answer is Answer.STATUS:
        if outcome.status in AUTH_REJECTIONS:
            return f"HTTP {outcome.status}: the endpoint wants a token"
        return f"HTTP {outcome.status} instead of 101 Switching Protocols (not a WebSocket upgrade)"
    if answer is Answer.INVALID_RESPONSE:
        return f"invalid handshake response: {detail}"
    if answer is Answer.NO_HTTP_RESPONSE:
        return "no valid HTTP response to the upgrade" + (f" ({detail})" if detail else "")
    if answer is Answer.HANDSHAKE_FAILED:
        return f"handshake rejected: {detail}"
    if answer is Answer.TIMED_OUT:
        bound = f" after {outcome.bound_s:.2f} s" if outcome.bound_s is not None else ""
        if STEP_UPGRADE in outcome.steps:
            return f"no pong{bound} (the handshake succeeded, the ping got no answer)"
        return f"no answer{bound} (the port may be open with nothing speaking WebSocket)"
    if answer is Answer.REFUSED:
        return "connection refused (nothing listening yet)"
    if answer is Answer.RESET:
        return "connection reset by peer"
    if answer is Answer.CLOSED:
        return "connection closed during the check"
    if answer is Answer.COMPLETED:
        return "the check passed"
    return detail or answer.value


def poll_delays() -> Iterator[float]:
    """The pauses between attempts, endless (the deadline ends the wait)."""
    first = list(POLL_BACKOFF.delays(16))
    return itertools.chain(first, itertools.repeat(POLL_BACKOFF.cap))


def tail_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (trailing blank lines dropped), or
    ``(no output)``. Failures attach `log_digest.digest` instead (first and last lines,
    repeats folded)."""
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"


@dataclass
class ReadinessResult:
    """How a wait for readiness went, with monotonic timestamps.

    ``ready_at[step]`` is when that step succeeded within the successful attempt (the
    benchmark compares ``ready_at["upgrade"]`` with when the server could first answer);
    ``ready`` is when the wait returned, None when it gave up. Then ``ended`` says how
    the server ended (None: the deadline passed), ``finished`` when the wait gave up,
    ``never`` the final answer that ended it early, and ``logs`` holds the server's log
    at that moment.
    """

    started_at: float
    ready_at: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    last_error: str = ""
    #: The last URL probed (None: the server never had an address).
    url: str | None = None
    ready: float | None = None
    ended: str | None = None
    #: The wait failed at once on an answer that will not change: the reason, one line
    #: (without the URL; `never_message` writes the whole line).
    never: str | None = None
    finished: float | None = None
    logs: str = field(default="", repr=False)

    @property
    def elapsed_s(self) -> float | None:
        """Seconds from the start of the wait to ready (None while not ready)."""
        return None if self.ready is None else self.ready - self.started_at

    @property
    def waited_s(self) -> float:
        """Seconds from the start of the wait to its end (ready or not)."""
        end = self.ready if self.ready is not None else self.finished
        return 0.0 if end is None else end - self.started_at


# -- messages ------------------------------------------------------------------------------


def not_ready_message(
    name: str, *, deadline_s: float, attempts: int, last_error: str, logs: str, what: str
) -> str:
    """A service's deadline passed. First line: which service, how long, what it last
    answered; then its log tail."""
    return (
        f"service {name!r} was not ready within {deadline_s:g} s ({attempts} attempts; "
        f"waited for {what}); last error: {last_error or 'none'}\n"
        f"log of {name!r} (trimmed):\n{digest(logs)}"
    )


def never_message(what: str, *, url: str | None, reason: str, logs: str) -> str:
    """The wait met an answer that will not change (`Verdict.never`). One line naming
    the server, the URL and the status with its hint; then the server's log, trimmed
    (`log_digest.digest`), when it has one."""
    text = f"{what} at {url or 'its endpoint'} {reason}"
    if logs.strip():
        text += f"\nits log (trimmed):\n{digest(logs)}"
    return text


def exited_message(name: str, *, reason: str, logs: str, waited_s: float) -> str:
    """A service ended before it was ready. First line: how; then its log tail."""
    return (
        f"service {name!r} {reason} after {waited_s:.2f} s, before it was ready\n"
        f"log of {name!r} (trimmed):\n{digest(logs)}"
    )


def server_not_ready_message(
    what: str, *, url: str | None, deadline_s: float, attempts: int, last_error: str, logs: str
) -> str:
    """A server under test (the ASGI app, the embedded server) never answered. One line
    naming the URL and the last answer; then the output tail, when it has output."""
    where = url if url is not None else "its endpoint (it never had an address)"
    text = (
        f"{what} did not answer a WebSocket handshake on {where} within {deadline_s:g} s "
        f"({attempts} attempts); last answer: {last_error or 'none'}"
    )
    if logs.strip():
        text += f"\nits output (trimmed):\n{digest(logs)}"
    return text
