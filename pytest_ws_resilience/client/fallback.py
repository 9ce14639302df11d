"""The auth fallback chain's rules: which handshake answer leads where (SPEC section 4).

Pure, no I/O, in the sans-I/O manner of websockets: `FallbackChain` is told what each
handshake attempt came to and answers what ``connect()`` does next; the asyncio layer
(`pytest_ws_resilience.client.handshake`) makes the handshakes and sleeps. The rules:

- **401 / 403: the next method, at once.** A rejected credential stays rejected: trying
  it again only adds delay. When every method was rejected: `WsAuthError`.
- **Network errors and 5xx: the same method again, after a backoff delay.** They are
  transient. When the retries run out: `WsConnectError`.
- **Anything else fails at once**: another HTTP status (404, ...), an invalid handshake
  (`WsConnectError`), a handshake slower than the connect timeout (`WsTimeoutError`).

Every outcome is recorded as an `Attempt`, so every error lists what was tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsConnectError,
    WsResilienceError,
    WsTimeoutError,
)

__all__ = [
    "CONNECTION_REFUSED",
    "CONNECTION_RESET",
    "HANDSHAKE_CUT_SHORT",
    "TIMED_OUT",
    "FallbackChain",
    "Step",
    "Verdict",
    "attempts_text",
    "network_outcome",
    "status_step",
]

# The outcome phrases of attempts (`Attempt.outcome`). Load reports sort connect errors
# into kinds by them (`pytest_ws_resilience.load.error_kinds`).
CONNECTION_REFUSED = "connection refused"
CONNECTION_RESET = "connection reset"
#: The server closed the TCP connection before answering the upgrade (websockets cannot
#: tell a reset from an EOF there).
HANDSHAKE_CUT_SHORT = "connection closed during the handshake"
#: Start of the outcome of a handshake slower than the connect timeout.
TIMED_OUT = "timed out"

_AUTH_REJECTED = frozenset({401, 403})


class Step(Enum):
    """What ``connect()`` does after an attempt that did not connect."""

    #: The credential was rejected: go on with the next auth method, without delay.
    NEXT_METHOD = "next method"
    #: A transient failure: try the same method again after `Verdict.delay`.
    RETRY = "retry"
    #: Stop: raise `Verdict.error`.
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer of `FallbackChain` to one failed attempt."""

    step: Step
    #: Seconds to wait before a `Step.RETRY`.
    delay: float = 0.0
    #: What a `Step.FAIL` raises.
    error: WsResilienceError | None = None


def status_step(status: int) -> Step:
    """Where an HTTP answer other than 101 leads: 401/403 to the next method, 5xx to a
    retry, anything else to failure."""
    if status in _AUTH_REJECTED:
        return Step.NEXT_METHOD
    if status >= 500:
        return Step.RETRY
    return Step.FAIL


def network_outcome(exc: BaseException) -> str:
    """The outcome phrase of an attempt that failed below HTTP (refused, reset, ...)."""
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if isinstance(exc, ConnectionResetError):
        return CONNECTION_RESET
    return f"{type(exc).__name__}: {exc}"


def attempts_text(attempts: Sequence[Attempt]) -> str:
    """``attempts`` as one line: ``subprotocol: HTTP 401, query: connected``."""
    return ", ".join(str(a) for a in attempts) or "none"


class FallbackChain:
    """One ``connect()``: the auth methods to walk, and every attempt made so far.

    Sans-I/O: the caller makes one handshake with `method`, then reports how it went
    with exactly one of `connected`, `answered`, `failed`, `timed_out` or `invalid`.
    `answered` and `failed` return a `Verdict` the caller must follow (sleep and retry,
    or raise); after a `Step.NEXT_METHOD`, `method` is already the next one. When
    `method` is None every method was rejected: raise `rejected`.

    Args:
        url: the endpoint, for messages.
        methods: the auth methods, in fallback order.
        retries: retries per method after transient failures.
        backoff: the delays of those retries.
        connect_timeout: the bound of one handshake, for messages.
    """

    def __init__(
        self,
        url: str,
        methods: Iterable[str],
        *,
        retries: int,
        backoff: Backoff,
        connect_timeout: TimeoutValue,
    ) -> None:
        self._url = url
        self._retries = retries
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._methods = iter(methods)
        #: Every attempt of this connect, in order (the successful one last).
        self.attempts: list[Attempt] = []
        self.method: str | None = None
        self._next_method()

    def _next_method(self) -> None:
        self.method = next(self._methods, None)
        # Each method gets the whole retry budget.
        self._delays = self._backoff.delays(self._retries)

    def _record(self, outcome: str, status: int | None = None) -> str:
        method = self.method
        if method is None:
            raise RuntimeError("FallbackChain: no method left to attempt")
        self.attempts.append(Attempt(method, outcome, status))
        return method

    def connected(self) -> None:
        """The handshake succeeded."""
        self._record("connected", 101)

    def answered(self, status: int) -> Verdict:
        """The server answered the upgrade with HTTP ``status`` (not 101)."""
        self._record(f"HTTP {status}", status)
        step = status_step(status)
        if step is Step.NEXT_METHOD:
            self._next_method()
            return Verdict(step)
        if step is Step.RETRY:
            return self._retry()
        return Verdict(
            step,
            error=self._connect_error(
                f"{self._url} answered HTTP {status} to the handshake "
                "(neither an auth rejection nor a transient 5xx)"
            ),
        )

    def failed(self, outcome: str) -> Verdict:
        """The attempt failed below HTTP (see `network_outcome`): transient."""
        self._record(outcome)
        return self._retry()

    def _retry(self) -> Verdict:
        delay = next(self._delays, None)
        if delay is None:
            return Verdict(
                Step.FAIL,
                error=self._connect_error(
                    f"could not connect to {self._url} (auth {self.method}) after "
                    f"{self._retries} retries"
                ),
            )
        return Verdict(Step.RETRY, delay=delay)

    def timed_out(self) -> WsTimeoutError:
        """The handshake outlasted the connect timeout: the error to raise at once."""
        method = self._record(f"{TIMED_OUT} after {self._connect_timeout.value:g}s")
        return WsTimeoutError(
            f"opening handshake with {self._url} (auth {method}) did not complete within "
            f"connect_timeout={self._connect_timeout}; attempts: {attempts_text(self.attempts)}",
            attempts=self.attempts,
        )

    def invalid(self, detail: object) -> WsConnectError:
        """The server's answer was no valid handshake: the error to raise at once."""
        self._record(f"invalid handshake: {detail}")
        return self._connect_error(f"handshake with {self._url} failed")

    def rejected(self) -> WsAuthError:
        """Every method was rejected (401/403): the error to raise."""
        return WsAuthError(
            f"every auth method was rejected by {self._url}: {attempts_text(self.attempts)}; "
            "check the token's secret or key, expiry, audience and issuer",
            attempts=self.attempts,
        )

    def _connect_error(self, message: str) -> WsConnectError:
        methods = ", ".join(dict.fromkeys(a.method for a in self.attempts))
        return WsConnectError(
            f"{message}; methods tried: {methods}; {len(self.attempts)} attempts: "
            f"{attempts_text(self.attempts)}",
            attempts=self.attempts,
        )
