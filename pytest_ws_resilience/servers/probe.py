"""The one wait for readiness: real probes over real sockets, repeated until the rule of
`readiness` says ready, the server ends, or the deadline passes.

Every kind of server answers the same small interface, `ReadinessTarget` (as
testcontainers' ``WaitStrategyTarget``): where it listens, whether it still runs, its log
so far. `ServiceHandle` (Docker and process services, ``--ws-server-cmd``), the two ASGI
runners and the embedded reference server (through an adapter in `under_test`) all
answer it, and all are waited for by `wait_ready` (or `wait_ready_blocking` from plain
code).

This module does the I/O and nothing else: `probe_once` performs one attempt (a real
WebSocket upgrade with `websockets`, which checks the 101 and ``Sec-WebSocket-Accept``;
an authenticated `WsClient` connection; the weaker tcp / http checks) and translates
whatever happened, a status, a timeout, a refusal, an exception, into a `ProbeOutcome`
(`outcome_of`). The verdict, the pauses and the messages are `readiness`'s. The wait
returns a `ReadinessResult` whether or not the server got ready: each caller raises its
own typed error from it (`raise_unless_served` for a server under test).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
)

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.config.bounds import MIN_SECONDS
from pytest_ws_resilience.config.settings import ConnectionOptions, WsSettings
from pytest_ws_resilience.errors import WsConnectError, WsResilienceError, WsTimeoutError
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.log_digest import digest
from pytest_ws_resilience.servers.readiness import (
    NOT_LISTENING,
    STEP_AUTH,
    STEP_PING,
    STEP_UPGRADE,
    Answer,
    ProbeOutcome,
    ReadinessCheck,
    ReadinessResult,
    judge,
    never_message,
    poll_delays,
    server_not_ready_message,
)

__all__ = [
    "ProbeAuth",
    "ReadinessTarget",
    "outcome_of",
    "probe_once",
    "raise_unless_served",
    "wait_ready",
    "wait_ready_blocking",
    "wait_served",
]

_CLOSE_TIMEOUT_S = 1.0
#: How long the blocking wrapper waits beyond the deadline: the last attempt, the last
#: log read (a Docker API call) and the loop's shutdown.
_JOIN_MARGIN_S = 35.0


class ReadinessTarget(Protocol):
    """What the wait needs of a server, whatever runs it.

    The methods are blocking and may be slow (a Docker API call): the wait calls them
    in a worker thread.
    """

    def probe_url(self) -> str | None:
        """The ``ws://`` URL of the endpoint to probe; None while the server has no
        address yet (its port is not bound or not printed yet)."""
        ...

    def exit_reason(self) -> str | None:
        """None while the server runs, else how it ended (e.g. ``process exited with
        status 3``)."""
        ...

    def log_so_far(self) -> str:
        """The server's log (or output) so far; empty when it has none of its own."""
        ...


@dataclass(frozen=True)
class ProbeAuth:
    """How an authenticated probe (a check with ``auth``) presents its token.

    Args:
        token: the token the handshake carries.
        settings: the auth chain and parameter names (`WsClient`'s).
        methods: the auth method(s) to use (default: the settings' chain).
    """

    token: str
    settings: WsSettings | None = None
    methods: str | Sequence[str] | None = None


# -- one attempt ---------------------------------------------------------------------------


def _require_token(check: ReadinessCheck, auth: ProbeAuth | None) -> None:
    if check.auth and auth is None:
        raise ValueError("an authenticated check needs a token (auth=ProbeAuth(...))")


def outcome_of(
    exc: BaseException, *, steps: Mapping[str, float], at: float, bound_s: float
) -> ProbeOutcome:
    """Translate what an attempt raised into the plain data the rule judges."""
    done = dict(steps)

    def made(answer: Answer, *, status: int | None = None, detail: str = "") -> ProbeOutcome:
        return ProbeOutcome(answer, at, done, status=status, detail=redact(detail), bound_s=bound_s)

    if isinstance(exc, InvalidStatus):
        return made(Answer.STATUS, status=exc.response.status_code)
    if isinstance(exc, InvalidHeader):
        return made(Answer.INVALID_RESPONSE, detail=str(exc))
    if isinstance(exc, InvalidMessage):
        cause = exc.__cause__
        return made(Answer.NO_HTTP_RESPONSE, detail=type(cause).__name__ if cause else "")
    if isinstance(exc, InvalidHandshake):
        return made(Answer.HANDSHAKE_FAILED, detail=str(exc))
    if isinstance(exc, TimeoutError):  # WsTimeoutError too: a handshake out of time
        return made(Answer.TIMED_OUT)
    if isinstance(exc, ConnectionRefusedError):
        return made(Answer.REFUSED)
    if isinstance(exc, ConnectionResetError):
        return made(Answer.RESET)
    if isinstance(exc, ConnectionClosed | EOFError):
        return made(Answer.CLOSED)
    if isinstance(exc, WsConnectError):  # the authenticated probe: the client's verdict
        statuses = [a.status for a in exc.attempts if a.status is not None]
        if statuses:
            return made(Answer.STATUS, status=statuses[-1], detail=exc.message)
    if isinstance(exc, WsResilienceError):
        return made(Answer.FAILED, detail=exc.message.splitlines()[0] if exc.message else "")
    if isinstance(exc, OSError):
        return made(Answer.FAILED, detail=f"{type(exc).__name__}: {exc.strerror or exc}")
    return made(Answer.FAILED, detail=f"{type(exc).__name__}: {exc}")


def _connect_options(connection: ConnectionOptions | None) -> dict[str, object]:
    """websockets' ``connect`` arguments for the configured headers, Origin,
    subprotocols and User-Agent: a probe connects as the clients will (an
    Origin-checking server refuses a probe without the Origin)."""
    if connection is None:
        return {"compression": None}
    options: dict[str, object] = {
        "compression": "deflate" if connection.compression else None,
    }
    if connection.headers:
        options["additional_headers"] = list(connection.headers)
    if connection.origin is not None:
        options["origin"] = connection.origin
    if connection.subprotocols:
        options["subprotocols"] = list(connection.subprotocols)
    if connection.user_agent is not None:
        options["user_agent_header"] = connection.user_agent
    return options


async def _upgrade(
    url: str,
    steps: dict[str, float],
    *,
    timeout: float,  # noqa: ASYNC109 (bounds the handshake and the ping)
    ping: bool,
    connection: ConnectionOptions | None = None,
) -> None:
    """A real, unauthenticated upgrade (and optionally one ping round trip), carrying
    the connection options."""
    async with connect(
        url,
        proxy=None,
        open_timeout=timeout,
        close_timeout=_CLOSE_TIMEOUT_S,
        ping_interval=None,
        **_connect_options(connection),  # type: ignore[arg-type]
    ) as conn:
        steps[STEP_UPGRADE] = time.monotonic()
        if ping:
            async with asyncio.timeout(timeout):
                await (await conn.ping())
            steps[STEP_PING] = time.monotonic()


async def _upgrade_authenticated(
    url: str,
    steps: dict[str, float],
    *,
    auth: ProbeAuth,
    timeout: float,  # noqa: ASYNC109
    ping: bool,
) -> None:
    """The upgrade with a token, through `WsClient` (so the configured auth chain)."""
    client = WsClient(
        url,
        token=auth.token,
        auth=auth.methods,
        settings=auth.settings,
        connect_retries=0,
        connect_timeout=timeout,
        recv_timeout=timeout,
        close_timeout=_CLOSE_TIMEOUT_S,
        name="readiness-probe",
        ping_interval=None,
    )
    try:
        await client.connect()
        steps[STEP_UPGRADE] = steps[STEP_AUTH] = time.monotonic()
        if ping:
            await client.ping()
            steps[STEP_PING] = time.monotonic()
    finally:
        await client.close()


async def _connect_tcp(
    host: str,
    port: int,
    steps: dict[str, float],
    *,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """Connect only: the weakest check (a port can be open long before the app serves)."""
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port)
    steps[STEP_UPGRADE] = time.monotonic()
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass


async def _get_http(
    host: str,
    port: int,
    path: str,
    *,
    timeout: float,  # noqa: ASYNC109
) -> bytes:
    """The status line of the answer to ``GET path``."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("latin-1"))
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()


async def probe_once(
    url: str,
    check: ReadinessCheck,
    *,
    timeout: float,  # noqa: ASYNC109 (bounds each step of the attempt)
    auth: ProbeAuth | None = None,
    connection: ConnectionOptions | None = None,
) -> ProbeOutcome:
    """One attempt of ``check`` (every step but ``alive``) on ``url``.

    ``connection``: the headers, Origin, subprotocols and User-Agent of the tokenless
    upgrade (the authenticated one takes them from ``auth.settings``).

    Never raises for what the server does: every failure is reported as an outcome
    for `readiness.judge`.

    Raises:
        ValueError: ``check.auth`` without ``auth`` (nothing to present).
    """
    _require_token(check, auth)
    steps: dict[str, float] = {}
    try:
        if check.health == "websocket":
            if auth is not None and check.auth:
                await _upgrade_authenticated(
                    url, steps, auth=auth, timeout=timeout, ping=check.ping
                )
            else:
                await _upgrade(url, steps, timeout=timeout, ping=check.ping, connection=connection)
        else:
            parts = urlsplit(url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            if check.health == "tcp":
                await _connect_tcp(host, port, steps, timeout=timeout)
            else:
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                line = await _get_http(host, port, path, timeout=timeout)
                if not line.startswith(b"HTTP/"):
                    return ProbeOutcome(
                        Answer.FAILED,
                        time.monotonic(),
                        detail=f"no HTTP response to GET {path} (got {line[:40]!r})",
                    )
                steps[STEP_UPGRADE] = time.monotonic()
    except Exception as exc:  # every failure of an attempt is reported, not raised
        return outcome_of(exc, steps=steps, at=time.monotonic(), bound_s=timeout)
    return ProbeOutcome(Answer.COMPLETED, time.monotonic(), steps)


# -- the wait ------------------------------------------------------------------------------


async def _give_up(result: ReadinessResult, target: ReadinessTarget) -> ReadinessResult:
    result.logs = await asyncio.to_thread(target.log_so_far)
    result.finished = time.monotonic()
    return result


async def wait_ready(
    target: ReadinessTarget,
    check: ReadinessCheck,
    *,
    auth: ProbeAuth | None = None,
    started_at: float | None = None,
    connection: ConnectionOptions | None = None,
) -> ReadinessResult:
    """Probe ``target`` until the rule says ready or never, the target ends, or the
    deadline.

    Args:
        target: the server (its methods are blocking: called in a worker thread).
        check: what to check and the deadlines.
        auth: the token of an authenticated check.
        connection: what a tokenless probe's handshake carries (the settings'
            `ConnectionOptions`).
        started_at: monotonic start of the wait (default: now); the deadline counts
            from it, so a caller can include the server's launch.

    Returns:
        The result: ``ready`` set when ready; else ``ended`` (the target ended, at
        once), ``never`` (an answer that will not change, at once) or neither (the
        deadline passed), with the target's log in ``logs``.

    Raises:
        ValueError: ``check.auth`` without ``auth``.
    """
    _require_token(check, auth)
    start = time.monotonic() if started_at is None else started_at
    deadline = start + check.startup_timeout
    result = ReadinessResult(started_at=start)
    delays = poll_delays()
    last_status: int | None = None
    repeats = 0
    while True:
        ended = await asyncio.to_thread(target.exit_reason)
        alive_at = time.monotonic()
        if ended is not None:
            result.ended = ended
            return await _give_up(result, target)
        remaining = deadline - alive_at
        if remaining < MIN_SECONDS:  # no attempt fits: one would only fail on its bound
            return await _give_up(result, target)
        url = await asyncio.to_thread(target.probe_url)
        if url is None:
            result.last_error = NOT_LISTENING
        else:
            result.url = url
            result.attempts += 1
            outcome = await probe_once(
                url,
                check,
                timeout=min(check.attempt_timeout, remaining),
                auth=auth,
                connection=connection,
            )
            repeats = repeats + 1 if outcome.status == last_status is not None else 1
            last_status = outcome.status
            verdict = judge(check, outcome, repeats=repeats)
            if verdict.ready:
                result.ready_at = {"alive": alive_at, **verdict.steps}
                result.ready = time.monotonic()
                return result
            if verdict.never:
                result.never = result.last_error = verdict.reason
                return await _give_up(result, target)
            if not (verdict.cut_short and result.last_error):
                result.last_error = verdict.reason
        await asyncio.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))


def wait_ready_blocking(
    target: ReadinessTarget,
    check: ReadinessCheck,
    *,
    auth: ProbeAuth | None = None,
    started_at: float | None = None,
    connection: ConnectionOptions | None = None,
) -> ReadinessResult:
    """`wait_ready` from plain code: in a short-lived thread with its own event loop, so
    it also works where the calling thread already runs a loop (an async fixture).

    A wait that does not end in time (a hung log read) is reported as a result that
    timed out, saying so in ``last_error``.
    """
    start = time.monotonic() if started_at is None else started_at
    outcome: list[ReadinessResult | BaseException] = []

    def main() -> None:
        try:
            outcome.append(
                asyncio.run(
                    wait_ready(target, check, auth=auth, started_at=start, connection=connection)
                )
            )
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=main, name="ws-readiness-wait", daemon=True)
    thread.start()
    # The wait is bounded by its deadline; the margin covers the last attempt and logs.
    thread.join(max(0.0, start + check.startup_timeout - time.monotonic()) + _JOIN_MARGIN_S)
    if thread.is_alive() or not outcome:
        return ReadinessResult(
            started_at=start,
            last_error="the readiness wait did not end in time",
            finished=time.monotonic(),
        )
    first = outcome[0]
    if isinstance(first, BaseException):
        raise first
    return first


def wait_served(
    target: ReadinessTarget,
    check: ReadinessCheck,
    *,
    what: str,
    startup_error: type[WsResilienceError],
    started_at: float | None = None,
    connection: ConnectionOptions | None = None,
    hint: Callable[[str], str] | None = None,
) -> ReadinessResult:
    """Wait for a server under test (the ASGI app, the embedded server) and raise its
    errors: `wait_ready_blocking`, then `raise_unless_served`.

    Args:
        what: how errors name the server, e.g. ``"ASGI app myapp:app"``.
        startup_error: raised when the server ended before it was ready, or answered
            what will not change.
        connection: what the probes' handshakes carry.
        hint: given the failure's text (with the whole log), a line to add, or "".
    """
    result = wait_ready_blocking(target, check, started_at=started_at, connection=connection)
    raise_unless_served(
        result,
        what=what,
        deadline_s=check.startup_timeout,
        startup_error=startup_error,
        hint=hint,
    )
    return result


def raise_unless_served(
    result: ReadinessResult,
    *,
    what: str,
    deadline_s: float,
    startup_error: type[WsResilienceError],
    hint: Callable[[str], str] | None = None,
) -> None:
    """The errors of a server under test (the ASGI app, the embedded server).

    Raises:
        startup_error: the server ended before it was ready: ``{what} {how it
            ended}``, then its output, trimmed (`log_digest.digest`), when it has
            output; or it answered what will not change (`readiness.never_message`).
        WsTimeoutError: the deadline passed; the message names the URL and the last
            answer.
    """
    if result.ready is not None:
        return
    extra = ""
    if hint is not None:
        extra = hint(f"{result.ended or ''}\n{result.logs}")
    if result.never is not None:
        text = never_message(what, url=result.url, reason=result.never, logs=result.logs)
        raise startup_error(_with_hint(text, extra))
    if result.ended is not None:
        text = f"{what} {result.ended}"
        if result.logs.strip():
            text += f"; its output (trimmed):\n{digest(result.logs)}"
        raise startup_error(_with_hint(text, extra))
    raise WsTimeoutError(
        _with_hint(
            server_not_ready_message(
                what,
                url=result.url,
                deadline_s=deadline_s,
                attempts=result.attempts,
                last_error=result.last_error,
                logs=result.logs,
            ),
            extra,
        )
    )


def _with_hint(text: str, hint: str) -> str:
    """The hint right after the first line (read before the log)."""
    if not hint:
        return text
    first, sep, rest = text.partition("\n")
    return f"{first}\n{hint}{sep}{rest}"
