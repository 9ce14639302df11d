"""The auth fallback chain's rules: which handshake answer leads where (SPEC section 4).

Pure, no I/O, in the sans-I/O manner of websockets: `FallbackChain` is told what each
handshake attempt came to and answers what ``connect()`` does next; the asyncio layer
(`pytest_ws_resilience.client.handshake`) makes the handshakes and sleeps. The rules:

- **401 / 403: the next method, at once.** A rejected credential stays rejected: trying
  it again only adds delay. When every method was rejected: `WsAuthError`, whose
  message says what the answers point at (`refusal_hint`): the same refusal with and
  without a token, or a 403 whichever way the token rode, does not depend on the
  credentials (Origin, path, server policy); anything else points at the token.
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
from urllib.parse import urlsplit

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
    "refusal_hint",
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


def refusal_hint(attempts: Sequence[Attempt], url: str) -> str:
    """What a chain whose every method was refused points at, as the end of a message.

    The refusal does not depend on the credentials when every attempt got the same
    status and either one attempt carried no token at all (method "none") or the status
    is 403 over several ways of presenting the token: then the Origin, the path or the
    server's policy is the likely cause. Otherwise the token is.
    """
    statuses = {a.status for a in attempts}
    methods = {a.method for a in attempts}
    status = next(iter(statuses)) if len(statuses) == 1 else None
    tokenless = "none" in methods
    if status is not None and (tokenless or (status == 403 and len(methods) > 1)):
        path = urlsplit(url).path or "/"
        how = (
            "with and without a token"
            if tokenless and len(methods) > 1
            else "without any token"
            if tokenless
            else "whichever way the token was presented"
        )
        wants_token = (
            "; a 401 to no token may also mean the server wants one: configure "
            "jwt_secret_env and its auth_methods"
            if tokenless and status == 401
            else ""
        )
        return (
            f"every handshake got the same HTTP {status}, {how}: the refusal does not "
            f"depend on the credentials; likely causes: the Origin header (set origin = "
            f'"..." in [tool.ws_resilience] or origin= on the client), the path ({path}: '
            "is it the server's WebSocket route?), or the server's policy (allowed hosts, "
            f"a required header or subprotocol){wants_token}"
        )
    return (
        "check the token's secret or key, expiry, audience and issuer (or, if the server "
        'checks no credential, declare auth_methods = ["none"])'
    )


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
            f"{refusal_hint(self.attempts, self._url)}",
            attempts=self.attempts,
        )

    def _connect_error(self, message: str) -> WsConnectError:
        methods = ", ".join(dict.fromkeys(a.method for a in self.attempts))
        return WsConnectError(
            f"{message}; methods tried: {methods}; {len(self.attempts)} attempts: "
            f"{attempts_text(self.attempts)}",
            attempts=self.attempts,
        )
