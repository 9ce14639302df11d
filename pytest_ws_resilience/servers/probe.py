"""The health checks over real sockets, and the bounded wait that repeats them.

The policy (steps, pauses, messages) is `readiness`; this module does the I/O: a real
WebSocket upgrade with `websockets` (which checks the 101 and ``Sec-WebSocket-Accept``),
an authenticated `WsClient` connection and ping, or the weaker tcp / http checks.
Backend calls (is the container running? its logs) are blocking and go through
`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

from websockets.asyncio.client import connect

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.config.services import ResolvedService, ServiceSpec
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import ServiceError, ServiceExitedError, ServiceNotReadyError
from pytest_ws_resilience.servers.readiness import (
    STEP_AUTH,
    STEP_PING,
    STEP_UPGRADE,
    ReadinessResult,
    describe_failure,
    exited_message,
    not_ready_message,
    poll_delays,
    tail_lines,
)

__all__ = [
    "AliveCheck",
    "LogReader",
    "NotYet",
    "probe_http",
    "probe_once",
    "probe_tcp",
    "probe_websocket",
    "wait_ready",
    "wait_ready_blocking",
]

#: None while the service runs, else how it ended (e.g. "exited with status 1").
AliveCheck = Callable[[], str | None]
#: The service's log so far (blocking; called in a thread).
LogReader = Callable[[], str]

_CLOSE_TIMEOUT_S = 1.0


class NotYet(Exception):
    """One attempt failed in a way that means "not ready yet"; the text says why."""


async def probe_websocket(
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 (bounds the handshake and the ping)
    ping: bool = False,
) -> dict[str, float]:
    """A real, unauthenticated upgrade (and optionally one ping round trip).

    Returns:
        ``{"upgrade": t}`` (and ``"ping"``), monotonic times of success.
    """
    steps: dict[str, float] = {}
    async with connect(
        url,
        proxy=None,
        open_timeout=timeout,
        close_timeout=_CLOSE_TIMEOUT_S,
        ping_interval=None,
        compression=None,
    ) as conn:
        steps[STEP_UPGRADE] = time.monotonic()
        if ping:
            async with asyncio.timeout(timeout):
                await (await conn.ping())
            steps[STEP_PING] = time.monotonic()
    return steps


async def _probe_authenticated(
    url: str,
    *,
    token: str,
    timeout: float,  # noqa: ASYNC109
    ping: bool,
    settings: WsSettings | None,
    auth: str | Sequence[str] | None,
) -> dict[str, float]:
    client = WsClient(
        url,
        token=token,
        auth=auth,
        settings=settings,
        connect_retries=0,
        connect_timeout=timeout,
        recv_timeout=timeout,
        close_timeout=_CLOSE_TIMEOUT_S,
        name="readiness-probe",
        ping_interval=None,
    )
    try:
        await client.connect()
        now = time.monotonic()
        steps = {STEP_UPGRADE: now, STEP_AUTH: now}
        if ping:
            await client.ping()
            steps[STEP_PING] = time.monotonic()
        return steps
    finally:
        await client.close()


async def probe_tcp(
    host: str,
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 (bounds the connect)
) -> dict[str, float]:
    """Connect only: the weakest check (a port can be open long before the app serves)."""
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port)
    at = time.monotonic()
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass
    return {STEP_UPGRADE: at}


async def probe_http(
    host: str,
    port: int,
    path: str,
    *,
    timeout: float,  # noqa: ASYNC109 (bounds the request and the answer)
) -> dict[str, float]:
    """Any HTTP response to ``GET path``: weaker than an upgrade (a 200 from a proxy or
    a framework's default page passes), for services that are no WebSocket server."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
    if not status_line.startswith(b"HTTP/"):
        raise NotYet(f"no HTTP response to GET {path} (got {status_line[:40]!r})")
    return {STEP_UPGRADE: time.monotonic()}


async def probe_once(
    spec: ServiceSpec,
    resolved: ResolvedService,
    *,
    timeout: float,  # noqa: ASYNC109
    token: str | None = None,
    settings: WsSettings | None = None,
    auth: str | Sequence[str] | None = None,
) -> dict[str, float]:
    """One attempt of ``spec``'s health check (every step but ``alive``).

    Returns:
        step name -> monotonic time it succeeded.

    Raises:
        NotYet: any failure, with a short reason.
    """
    try:
        if spec.health == "tcp":
            return await probe_tcp(resolved.host, resolved.port, timeout=timeout)
        if spec.health == "http":
            return await probe_http(resolved.host, resolved.port, resolved.path, timeout=timeout)
        if spec.auth:
            if token is None:
                raise NotYet("auth=True but no token factory was given to mint a token")
            return await _probe_authenticated(
                resolved.url,
                token=token,
                timeout=timeout,
                ping=spec.ping,
                settings=settings,
                auth=auth,
            )
        return await probe_websocket(resolved.url, timeout=timeout, ping=spec.ping)
    except NotYet:
        raise
    except Exception as exc:  # every other failure of an attempt means "not yet"
        raise NotYet(describe_failure(exc, timeout=timeout)) from None


def _what(spec: ServiceSpec) -> str:
    if spec.health == "tcp":
        return "a TCP connect (health='tcp')"
    if spec.health == "http":
        return "an HTTP response (health='http')"
    extra = " with a token" if spec.auth else ""
    return f"a WebSocket upgrade{extra}" + (" and a ping round trip" if spec.ping else "")


async def wait_ready(
    spec: ServiceSpec,
    resolved: ResolvedService,
    *,
    alive: AliveCheck,
    logs: LogReader,
    token: str | None = None,
    settings: WsSettings | None = None,
    auth: str | Sequence[str] | None = None,
    started_at: float | None = None,
) -> ReadinessResult:
    """Repeat the health check until it passes, the service ends, or the deadline.

    Args:
        spec, resolved: the service and where it listens.
        alive: the backend's liveness check (blocking; run in a thread).
        logs: the backend's log reader, for the failure message.
        token: for ``auth=True``: the token the authenticated handshake sends.
        settings, auth: how that token is sent (`WsClient`'s auth chain).
        started_at: monotonic start of the wait (default: now); the deadline counts
            from it, so a caller can include the container start.

    Raises:
        ServiceExitedError: the service ended; at once, with its last log lines.
        ServiceNotReadyError: the deadline passed; with the last error and log lines.
    """
    start = time.monotonic() if started_at is None else started_at
    deadline = start + spec.startup_timeout
    result = ReadinessResult(service=spec.name, started_at=start)
    delays = poll_delays()
    while True:
        ended = await asyncio.to_thread(alive)
        now = time.monotonic()
        if ended is not None:
            text = await asyncio.to_thread(logs)
            raise ServiceExitedError(
                exited_message(spec.name, reason=ended, logs=text, waited_s=now - start),
                service=spec.name,
                logs=tail_lines(text),
            )
        remaining = deadline - now
        if remaining <= 0:
            text = await asyncio.to_thread(logs)
            raise ServiceNotReadyError(
                not_ready_message(
                    spec.name,
                    deadline_s=spec.startup_timeout,
                    attempts=result.attempts,
                    last_error=result.last_error,
                    logs=text,
                    what=_what(spec),
                ),
                service=spec.name,
                logs=tail_lines(text),
                last_error=result.last_error,
            )
        result.attempts += 1
        try:
            steps = await probe_once(
                spec,
                resolved,
                timeout=min(spec.attempt_timeout, remaining),
                token=token,
                settings=settings,
                auth=auth,
            )
        except NotYet as not_yet:
            result.last_error = str(not_yet)
        else:
            result.ready_at = {"alive": now, **steps}
            result.ready = time.monotonic()
            return result
        pause = min(next(delays), max(0.0, deadline - time.monotonic()))
        await asyncio.sleep(pause)


def wait_ready_blocking(
    spec: ServiceSpec,
    resolved: ResolvedService,
    *,
    alive: AliveCheck,
    logs: LogReader,
    token: str | None = None,
    settings: WsSettings | None = None,
    auth: str | Sequence[str] | None = None,
    started_at: float | None = None,
) -> ReadinessResult:
    """`wait_ready` from plain code: in a short-lived thread with its own event loop, so
    it also works where the calling thread already runs a loop (an async fixture)."""
    outcome: list[ReadinessResult | BaseException] = []

    def main() -> None:
        try:
            outcome.append(
                asyncio.run(
                    wait_ready(
                        spec,
                        resolved,
                        alive=alive,
                        logs=logs,
                        token=token,
                        settings=settings,
                        auth=auth,
                        started_at=started_at,
                    )
                )
            )
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=main, name=f"ws-service-ready-{spec.name}", daemon=True)
    thread.start()
    # The wait is bounded by its deadline; the margin covers the last attempt and logs.
    thread.join(spec.startup_timeout + spec.attempt_timeout + 35.0)
    if thread.is_alive() or not outcome:
        raise ServiceError(
            f"service {spec.name!r}: the readiness wait did not end in time", service=spec.name
        )
    first = outcome[0]
    if isinstance(first, BaseException):
        raise first
    return first
