"""When is a service ready? The policy, with no I/O: steps, polling, verdicts, messages.

A service is ready after every step of its health check succeeded in one attempt:

1. ``alive``: the container is running / the process has not exited. If not, the
   wait fails at once with the service's last log lines (no point waiting longer).
2. ``upgrade``: a real WebSocket upgrade, 101 with a valid ``Sec-WebSocket-Accept``
   (``tcp``: a connect; ``http``: any HTTP response, both weaker).
3. ``auth``: an authenticated handshake, when asked for.
4. ``ping``: one ping round trip, when asked for.

Resets, refusals, EOF, half-finished handshakes and any non-101 answer mean "not yet".
Attempts are bounded each (``attempt_timeout``) and all together (``startup_timeout``);
the pause between them starts at 10 ms and grows to 100 ms, so readiness is noticed
within about 100 ms and a slow start is not hammered. The I/O lives in `probe`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
)

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.errors import WsResilienceError
from pytest_ws_resilience.redaction import redact

__all__ = [
    "LOG_TAIL_LINES",
    "POLL_BACKOFF",
    "STEP_ALIVE",
    "STEP_AUTH",
    "STEP_PING",
    "STEP_UPGRADE",
    "ReadinessResult",
    "describe_failure",
    "exited_message",
    "not_ready_message",
    "poll_delays",
    "steps_for",
    "tail_lines",
]

STEP_ALIVE = "alive"
STEP_UPGRADE = "upgrade"
STEP_AUTH = "auth"
STEP_PING = "ping"

#: Pauses between attempts: 10 ms, growing by half each time, at most 100 ms.
POLL_BACKOFF = Backoff(base=0.01, factor=1.5, cap=0.1)
#: Log lines put in a start failure.
LOG_TAIL_LINES = 30


def steps_for(spec: ServiceSpec) -> tuple[str, ...]:
    """The steps of ``spec``'s health check, in order (``upgrade`` is the tcp connect
    or the http answer for those checks)."""
    steps = [STEP_ALIVE, STEP_UPGRADE]
    if spec.auth:
        steps.append(STEP_AUTH)
    if spec.ping:
        steps.append(STEP_PING)
    return tuple(steps)


def poll_delays() -> Iterator[float]:
    """The pauses between attempts, endless (the deadline ends the wait)."""
    first = list(POLL_BACKOFF.delays(16))
    return itertools.chain(first, itertools.repeat(POLL_BACKOFF.cap))


def tail_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` non-empty-trailing lines of a log, or ``(no output)``."""
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"


@dataclass
class ReadinessResult:
    """How a wait for readiness went, with monotonic timestamps.

    ``ready_at[step]`` is when that step first succeeded within the successful attempt
    (all of them: the benchmark compares ``ready_at["upgrade"]`` with when the server
    could first answer); ``ready`` is when the wait returned.
    """

    service: str
    started_at: float
    ready_at: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    last_error: str = ""
    ready: float | None = None

    @property
    def elapsed_s(self) -> float | None:
        """Seconds from the start of the wait to ready (None while not ready)."""
        return None if self.ready is None else self.ready - self.started_at

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, timestamps relative to the start of the wait (seconds)."""
        return {
            "service": self.service,
            "attempts": self.attempts,
            "elapsed_s": self.elapsed_s,
            "steps_s": {k: v - self.started_at for k, v in self.ready_at.items()},
            "last_error": self.last_error,
        }


def not_ready_message(
    name: str, *, deadline_s: float, attempts: int, last_error: str, logs: str, what: str
) -> str:
    """First line: which service, how long, what it last answered; then its log tail."""
    return (
        f"service {name!r} was not ready within {deadline_s:g} s ({attempts} attempts; "
        f"waited for {what}); last error: {last_error or 'none'}\n"
        f"last log lines of {name!r}:\n{tail_lines(logs)}"
    )


def exited_message(name: str, *, reason: str, logs: str, waited_s: float) -> str:
    """First line: the service ended (and how) before it was ready; then its log tail."""
    return (
        f"service {name!r} {reason} after {waited_s:.2f} s, before it was ready\n"
        f"last log lines of {name!r}:\n{tail_lines(logs)}"
    )


def describe_failure(exc: BaseException, *, timeout: float | None = None) -> str:
    """One short line saying why an attempt was "not yet", for the final message."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            return f"HTTP {status}: the endpoint wants a token (auth=True with a token factory)"
        return f"HTTP {status} instead of 101 Switching Protocols (not a WebSocket upgrade)"
    if isinstance(exc, InvalidHeader):
        return f"invalid handshake response: {exc}"
    if isinstance(exc, InvalidMessage):
        cause = exc.__cause__
        detail = f" ({type(cause).__name__})" if cause is not None else ""
        return f"no valid HTTP response to the upgrade{detail}"
    if isinstance(exc, InvalidHandshake):
        return f"handshake rejected: {exc}"
    if isinstance(exc, TimeoutError):
        bound = f" after {timeout:.2f} s" if timeout is not None else ""
        return f"no answer{bound} (the port may be open with nothing speaking WebSocket)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening yet)"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, ConnectionClosed | EOFError):
        return "connection closed during the check"
    if isinstance(exc, WsResilienceError):
        return exc.message.splitlines()[0] if exc.message else type(exc).__name__
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return redact(f"{type(exc).__name__}: {exc}")
