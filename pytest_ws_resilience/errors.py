"""Every public error and warning of pytest-ws-resilience, in one module.

Every error prints as one line a user can act on and carries what was tried, so a
failing connect says which URL, which auth methods and how many attempts, without a
traceback dive. Secrets are redacted once, in `WsResilienceError`, before they reach
the message. Each class says which part of the package raises it; this module imports
nothing but the redaction function, so any layer can raise any of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    from pytest_ws_resilience.contracts.result import ContractResult
    from pytest_ws_resilience.isolation.violation import IsolationViolation

__all__ = [
    "AsgiAppImportError",
    "AsgiAppStartupError",
    "AsgiExtraMissingError",
    "Attempt",
    "ContractViolationError",
    "DockerUnavailableError",
    "FuzzExtraMissingError",
    "IsolationViolationError",
    "LocustExtraMissingError",
    "LocustRunError",
    "ServerResourcesUnavailableError",
    "ServiceChaosError",
    "ServiceError",
    "ServiceExitedError",
    "ServiceNotReadyError",
    "ServiceSpecError",
    "StormThresholdError",
    "WsAuthError",
    "WsChaosWarning",
    "WsConfigError",
    "WsConnectError",
    "WsConnectionClosedError",
    "WsFuzzError",
    "WsHeartbeatWarning",
    "WsIsolationWarning",
    "WsMessageTooLargeError",
    "WsNothingCheckedWarning",
    "WsPoolExhaustedError",
    "WsResilienceError",
    "WsSchedulingWarning",
    "WsTimeoutError",
]


@dataclass(frozen=True)
class Attempt:
    """One connection attempt: which auth method, and what the server answered.

    ``outcome`` is a short human string such as ``"HTTP 401"``, ``"connection refused"``
    or ``"timed out after 2.0 s"``.
    """

    method: str
    outcome: str
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.method}: {self.outcome}"


class WsResilienceError(Exception):
    """Base class of every error raised by this package.

    The message is redacted once, here, so subclasses cannot leak a token by accident.
    """

    def __init__(self, message: str, *, attempts: Sequence[Attempt] = ()) -> None:
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class WsConfigError(WsResilienceError):
    """Bad configuration: unknown env, malformed URL, missing secret variable, ..."""


class WsConnectError(WsResilienceError):
    """The connection could not be opened after every retry (network errors, 5xx)."""


class WsAuthError(WsConnectError):
    """Every auth method was rejected (401/403). Not retried: a bad token stays bad."""


class WsTimeoutError(WsResilienceError, TimeoutError):
    """A bounded wait ran out: handshake, expected event, or close."""


class WsConnectionClosedError(WsResilienceError):
    """The connection closed while a message was awaited or sent.

    The message says who closed, with which code and reason, and websockets' own
    message when a protocol error or a size limit failed the connection (e.g. "we sent
    1009 (message too big): frame with 104857600 bytes exceeds limit of 5242880 bytes").

    Attributes:
        code: the server's close code; 1006 when no close frame came from it (as
            `WsClient.close_code`).
        reason: the server's close reason.
        closed_by: "server" (its close frame came first), "client" (ours did: we
            closed, or websockets failed the connection), "network" (no close frame
            either way), or None when not known.
        sent_code: the code of the close frame we sent, if any (1002, 1007, 1009...
            when websockets failed the connection).
        sent_reason: its reason.
        protocol_error: websockets' message of the error that failed the connection.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str = "",
        closed_by: str | None = None,
        sent_code: int | None = None,
        sent_reason: str = "",
        protocol_error: str | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.closed_by = closed_by
        self.sent_code = sent_code
        self.sent_reason = sent_reason
        self.protocol_error = protocol_error
        super().__init__(message)


class WsMessageTooLargeError(WsResilienceError, ValueError):
    """A message above the max message size; raised before touching the socket."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"message of {size} bytes exceeds max_message_size={limit} bytes; not sent"
        )


# -- what tests assert: detectors, contracts, thresholds ---------------------------------


class IsolationViolationError(WsResilienceError, AssertionError):
    """A user received another user's data; the message is the detector's report.

    Raised by `IsolationDetector.assert_clean`.
    """

    def __init__(self, report: str, violations: Iterable[IsolationViolation] = ()) -> None:
        self.violations: tuple[IsolationViolation, ...] = tuple(violations)
        super().__init__(report)


class ContractViolationError(WsResilienceError, AssertionError):
    """A run broke its event contract. The message is the run's transcript.

    An `AssertionError`, so pytest reports it as a test failure, not an error.
    """

    def __init__(self, result: ContractResult) -> None:
        self.result = result
        super().__init__(result.transcript())


class StormThresholdError(WsResilienceError, AssertionError):
    """A storm threshold was not met; the message holds every distribution and error."""


class WsPoolExhaustedError(WsResilienceError):
    """Every connection of a full pool is leased: nothing can be evicted for a new one."""

    def __init__(self, max_size: int, leased: int) -> None:
        self.max_size = max_size
        self.leased = leased
        super().__init__(
            f"connection pool exhausted: max_size={max_size} and {leased} connections are "
            "leased; release clients (or use pool.lease(...)) or raise max_size"
        )


# -- servers under test: services, ASGI apps ------------------------------------------------


class ServiceError(WsResilienceError):
    """Base class of every service failure (start, readiness, chaos, Docker).

    A failed start says which service, what was waited for and the last thing the
    service answered, then the last lines of its log, so nobody has to dig in
    ``docker logs`` after the run removed the container.
    """

    def __init__(self, message: str, *, service: str = "", logs: str = "") -> None:
        self.service = service
        self.logs = logs
        super().__init__(message)


class ServiceSpecError(WsConfigError, ValueError):
    """A service definition that cannot work (missing image/command, bad health, ...).

    A `WsConfigError`, so the plugin turns it into a usage error; a `ValueError`, so
    code building a `ServiceSpec` by hand can catch what it would expect.
    """


class ServiceExitedError(ServiceError):
    """The container or process ended before it became ready (or while waited on)."""


class ServiceNotReadyError(ServiceError, TimeoutError):
    """The startup deadline passed without a successful health check."""

    def __init__(
        self, message: str, *, service: str = "", logs: str = "", last_error: str = ""
    ) -> None:
        self.last_error = last_error
        super().__init__(message, service=service, logs=logs)


class ServiceChaosError(ServiceError):
    """Container chaos refused: a shared service, or a handle that is not running."""


class DockerUnavailableError(ServiceError):
    """The Docker daemon does not answer; the message is the one-line reason."""


class ServerResourcesUnavailableError(WsResilienceError):
    """A server's resources cannot be sampled (``ws_server.resources()``,
    ``ServiceHandle.resources()``): one that runs inside the test process, one the
    plugin did not start, or one that is gone. The message says why and what to use."""


class AsgiExtraMissingError(WsConfigError):
    """``--ws-app`` was asked for but uvicorn (the ``asgi`` extra) is not installed."""


class FuzzExtraMissingError(WsConfigError):
    """``ws_fuzz(schema=...)`` was asked for but hypothesis-jsonschema (the ``schema``
    extra) is not installed; the message names the extra."""


class LocustExtraMissingError(WsConfigError):
    """``ws_storm.distributed(...)`` or ``ws-resilience-load`` was asked for but Locust
    (the ``locust`` extra) is not installed; the message names the extra."""


class LocustRunError(WsResilienceError):
    """A distributed run could not run (``ws_storm.distributed``): its Locust master or a
    worker did not start, exited early, or wrote no statistics within its bound. The
    message names the process, its exit status and the last lines of its log. A run
    that ran and measured failures is a `StormResult`, not this error."""


class WsFuzzError(WsResilienceError, AssertionError):
    """Fuzzing found a message the server does not survive (`FuzzResult.assert_ok`):
    the minimal failing message, what went wrong, and how to replay it."""


class AsgiAppImportError(WsConfigError):
    """The import path names no module or no attribute (a configuration mistake)."""


class AsgiAppStartupError(WsResilienceError):
    """The app could not start: it raised on import or in its lifespan, or exited.

    The message holds the app's traceback (or the subprocess's output tail), redacted.
    """


# -- warnings -------------------------------------------------------------------------------


class WsSchedulingWarning(UserWarning):
    """Connection tests may overlap under xdist although the plugin meant to serialize
    them. Filter it like any warning, e.g.
    ``-W ignore::pytest_ws_resilience.errors.WsSchedulingWarning``."""


class WsHeartbeatWarning(UserWarning):
    """The configured heartbeat would not beat the infrastructure's idle timeout
    (``heartbeat_interval`` unset, ``false``, or above ``idle_timeout`` minus 20%): quiet
    connections would be dropped in production. Issued once, at start-up (the check is
    `pytest_ws_resilience.config.heartbeat`'s); make it fail a run with
    ``-W error::pytest_ws_resilience.errors.WsHeartbeatWarning``."""


class WsNothingCheckedWarning(UserWarning):
    """A check passed without checking anything (`pytest_ws_resilience.vacuous`): an
    isolation detector with no frame or no marker, a chaos fault that never fired or
    whose selector raised. Strict tests fail instead; make every such warning fail a CI
    run with ``-W error::pytest_ws_resilience.errors.WsNothingCheckedWarning``."""


class WsIsolationWarning(WsNothingCheckedWarning):
    """A test's isolation detector verified nothing: it checked no frame, or its users
    had no marker long enough to look for. A ``websocket_security`` test fails instead;
    make it fail elsewhere with ``-W error::pytest_ws_resilience.errors.WsIsolationWarning``."""


class WsChaosWarning(WsNothingCheckedWarning):
    """A chaos message fault applied 0 times by the end of its test (its proxy carried
    no matching message, or none at all), or its ``select`` predicate raised. A fault
    armed with ``expect_fire=True``, or in a ``websocket_security`` test, fails instead."""
