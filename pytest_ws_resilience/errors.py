"""Typed errors of pytest-ws-resilience.

Every error prints as one line a user can act on and carries what was tried, so a
failing connect says which URL, which auth methods and how many attempts, without a
traceback dive. Secrets are redacted before they reach the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_ws_resilience.redaction import redact

__all__ = [
    "Attempt",
    "WsAuthError",
    "WsConfigError",
    "WsConnectError",
    "WsConnectionClosedError",
    "WsMessageTooLargeError",
    "WsResilienceError",
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
    """The connection closed while a message was awaited or sent."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(message)


class WsMessageTooLargeError(WsResilienceError, ValueError):
    """A message above the max message size; raised before touching the socket."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"message of {size} bytes exceeds max_message_size={limit} bytes; not sent"
        )
