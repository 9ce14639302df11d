"""Typed errors of the services: each prints a first line a user can act on.

A failed start says which service, what was waited for and the last thing the
service answered, then the last lines of its log (redacted by `WsResilienceError`), so
nobody has to dig in ``docker logs`` after the run removed the container.
"""

from __future__ import annotations

from pytest_ws_resilience.errors import WsConfigError, WsResilienceError

__all__ = [
    "DockerUnavailableError",
    "ServiceChaosError",
    "ServiceError",
    "ServiceExitedError",
    "ServiceNotReadyError",
    "ServiceSpecError",
]


class ServiceError(WsResilienceError):
    """Base class of every service failure (start, readiness, chaos, Docker)."""

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
