"""The Docker engine: one client factory, and one cached "is it there?" probe.

The probe runs once per process with a short timeout and turns any failure into a
one-line reason (no traceback), which the plugin shows as the skip reason or, under
``--ws-require-services``, as the failure.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pytest_ws_resilience.errors import DockerUnavailableError
from pytest_ws_resilience.redaction import redact

__all__ = [
    "DEFAULT_DOCKER_TIMEOUT_S",
    "docker_client",
    "docker_unavailable_reason",
    "reset_docker_probe",
]

#: Bound of every Docker API call (create, logs, stop ...); stop adds its own grace.
DEFAULT_DOCKER_TIMEOUT_S = 30.0

_lock = threading.Lock()
_cache: dict[str | None, str | None] = {}


def _where(base_url: str | None) -> str:
    if base_url is not None:
        return f"base_url={base_url}"
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else "default socket"


def _short(err: BaseException) -> str:
    """The innermost useful words of a docker/requests/urllib3 error chain."""
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for exc in reversed(seen):
        if isinstance(exc, FileNotFoundError):
            return "no such socket"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, PermissionError):
            return "permission denied"
        if isinstance(exc, TimeoutError):
            return "timed out"
    text = " ".join(str(err).split())
    return text[:200] or type(err).__name__


def docker_client(timeout: float = DEFAULT_DOCKER_TIMEOUT_S, *, base_url: str | None = None) -> Any:
    """A `docker.DockerClient` (``DOCKER_HOST`` respected) whose every call is bounded.

    Raises:
        DockerUnavailableError: the docker package is missing or the client cannot be made.
    """
    try:
        import docker
    except ImportError:
        raise DockerUnavailableError(
            "Docker is not available (the 'docker' package is not installed)"
        ) from None
    try:
        if base_url is not None:
            return docker.DockerClient(base_url=base_url, timeout=int(max(1, timeout)))
        return docker.from_env(timeout=int(max(1, timeout)))
    except Exception as err:
        raise DockerUnavailableError(
            f"Docker is not available ({_where(base_url)}: {_short(err)})"
        ) from None


def docker_unavailable_reason(timeout: float = 2.0, *, base_url: str | None = None) -> str | None:
    """None when the daemon answers a ping, else a one-line reason such as ``Docker is
    not available (DOCKER_HOST=unix:///nowhere.sock: no such socket)``.

    Probed once per process and base URL (cached); ``reset_docker_probe`` forgets it.
    """
    key = base_url if base_url is not None else f"env:{os.environ.get('DOCKER_HOST', '')}"
    with _lock:
        if key in _cache:
            return _cache[key]
        reason: str | None
        try:
            client = docker_client(timeout, base_url=base_url)
            try:
                client.ping()
            finally:
                client.close()
            reason = None
        except DockerUnavailableError as err:
            reason = err.message
        except Exception as err:
            reason = f"Docker is not available ({_where(base_url)}: {_short(err)})"
        if reason is not None:
            reason = redact(reason)
        _cache[key] = reason
        return reason


def reset_docker_probe() -> None:
    """Forget the cached probe results (tests; a daemon started mid-session)."""
    with _lock:
        _cache.clear()
