"""Protocol B: a second real WebSocket server whose protocol is unlike the reference
server's, so detectors can be shown to rely on configuration, not on one protocol.

What differs from the reference server, on purpose:

- auth: only ``?access=<JWT>`` (HS256, the user is the ``sub`` claim); else HTTP 401;
- greeting: ``{"kind": "hello", "session", "account"}`` (``kind``, not ``type``);
- requests: ``{"op": "ask", "prompt", "job"?}`` and ``{"op": "ping"}`` (answered with
  ``{"kind": "pong"}``); anything else gets ``{"kind": "error", "reason"}``;
- a job's events are named by ``event`` (not ``type``): ``job.accepted``,
  ``job.progress`` (``progress_steps`` of them), ``job.result`` (``answer`` echoes the
  prompt); each carries ``job`` (the correlation id), ``account`` (the owner) and ``n``,
  a per-connection counter;
- fan-out per account: every connection of the account gets the job's events.

Faults (constructor or `ProtocolBServer.set_faults`; a job keeps those on when it began):

- ``leak``: every job event also goes to every other account's connections;
- ``drop``: the first ``job.progress`` is not sent;
- ``reorder``: the first ``job.progress`` is sent before ``job.accepted``;
- ``duplicate``: ``job.accepted`` is sent twice.

(``reorder`` moves an early event rather than the result: a checker stops at the
terminal event, so a result sent before the last progress would look like a clean run
with progress missing, not like a reordering.)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import jwt
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["FAULTS", "HOST", "ProtocolBServer", "plan_job"]

HOST = "127.0.0.1"
#: The fault switches this server knows.
FAULTS = frozenset({"leak", "drop", "reorder", "duplicate"})
QUERY_PARAM = "access"
#: Bound of the server's closing handshake with each client.
_CLOSE_TIMEOUT_S = 1.0


def _parse_faults(names: Iterable[str]) -> frozenset[str]:
    chosen = frozenset((names,) if isinstance(names, str) else names)
    unknown = sorted(chosen - FAULTS)
    if unknown:
        raise ValueError(f"unknown protocol B fault(s) {unknown}; valid: {sorted(FAULTS)}")
    return chosen


def plan_job(
    job: str, account: str, prompt: str, *, progress_steps: int, faults: frozenset[str]
) -> list[dict[str, Any]]:
    """The events of one job in send order, with ``faults`` applied (pure)."""
    ids = {"job": job, "account": account}
    accepted = [{"event": "job.accepted", **ids}]
    if "duplicate" in faults:
        accepted.append(dict(accepted[0]))
    progress = [
        {"event": "job.progress", **ids, "done": step, "of": progress_steps}
        for step in range(1, progress_steps + 1)
    ]
    if "drop" in faults:
        progress = progress[1:]
    result = [{"event": "job.result", **ids, "answer": f"echo: {prompt}"}]
    if "reorder" in faults and progress:
        return progress[:1] + accepted + progress[1:] + result
    return accepted + progress + result


class _Session:
    """One open connection: its account and its frame counter."""

    __slots__ = ("account", "connection", "id", "n")

    def __init__(self, connection: ServerConnection, account: str) -> None:
        self.connection = connection
        self.account = account
        self.id = f"sess-{uuid.uuid4().hex[:10]}"
        self.n = 0


class ProtocolBServer:
    """A job server speaking protocol B on a free loopback port.

    Use ``async with ProtocolBServer(secret) as server:`` and connect to ``server.url``
    with ``WsClient(server.url, user=user, auth="query",
    settings=WsSettings(auth_query_param="access"))``.

    Args:
        secret: HS256 key that verifies the ``access`` tokens.
        faults: fault switches on from the start (see the module docstring).
        step_delay_s: pause between two events of a job.
        progress_steps: ``job.progress`` events per job (at least 1).
    """

    def __init__(
        self,
        secret: str,
        *,
        faults: Iterable[str] = (),
        step_delay_s: float = 0.001,
        progress_steps: int = 1,
    ) -> None:
        if progress_steps < 1:
            raise ValueError(f"progress_steps must be >= 1, got {progress_steps}")
        self._secret = secret
        self._faults = _parse_faults(faults)
        self._delay = step_delay_s
        self._progress_steps = progress_steps
        self._server: Server | None = None
        self._pending: dict[ServerConnection, str] = {}  # accepted handshake -> account
        self._sessions: dict[str, dict[_Session, None]] = {}  # account -> ordered set
        self._jobs: set[asyncio.Task[None]] = set()
        self._port = 0

    def __repr__(self) -> str:
        return f"ProtocolBServer(url={self.url!r}, faults={sorted(self._faults)})"

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self._port}/"

    @property
    def faults(self) -> frozenset[str]:
        return self._faults

    def set_faults(self, *names: str) -> None:
        """Turn on exactly ``names`` (none: all off), for jobs started from now on."""
        self._faults = _parse_faults(names)

    @property
    def accounts(self) -> dict[str, int]:
        """Open connections per account."""
        return {account: len(sessions) for account, sessions in self._sessions.items()}

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> Self:
        self._server = await serve(
            self._handle,
            HOST,
            0,
            process_request=self._authenticate,
            close_timeout=_CLOSE_TIMEOUT_S,
            ping_interval=None,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109 (bounds a shutdown)
        """Stop jobs, close connections (1001) and stop listening, within ``timeout``."""
        server, self._server = self._server, None
        if server is None:
            return
        for task in self._jobs:
            task.cancel()
        server.close()
        try:
            async with asyncio.timeout(timeout):
                await server.wait_closed()
        except TimeoutError:
            for connection in server.connections:
                connection.transport.abort()
        self._sessions.clear()
        self._pending.clear()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- connections -----------------------------------------------------------------

    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        tokens = parse_qs(urlsplit(request.path).query).get(QUERY_PARAM)
        if not tokens:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "401 Unauthorized: no access\n")
        try:
            claims = jwt.decode(
                tokens[0], self._secret, algorithms=["HS256"], options={"require": ["sub"]}
            )
        except jwt.PyJWTError:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "401 Unauthorized: bad access\n")
        self._pending[connection] = str(claims["sub"])
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        account = self._pending.pop(connection, None)
        if account is None:
            return
        session = _Session(connection, account)
        self._sessions.setdefault(account, {})[session] = None
        try:
            self._send(session, {"kind": "hello", "session": session.id, "account": account})
            async for message in connection:
                self._on_message(session, message)
        except ConnectionClosed:
            pass
        finally:
            sessions = self._sessions.get(account)
            if sessions is not None:
                sessions.pop(session, None)
                if not sessions:
                    del self._sessions[account]

    def _on_message(self, session: _Session, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            self._send(session, {"kind": "error", "reason": "not JSON"})
            return
        op = data.get("op") if isinstance(data, dict) else None
        if op == "ping":
            self._send(session, {"kind": "pong"})
        elif op == "ask" and isinstance(data.get("prompt"), str):
            job = data.get("job")
            job = job if isinstance(job, str) and job else f"job-{uuid.uuid4().hex[:10]}"
            task = asyncio.create_task(self._run_job(session.account, job, data["prompt"]))
            self._jobs.add(task)
            task.add_done_callback(self._jobs.discard)
        else:
            self._send(
                session, {"kind": "error", "reason": "expected op ask (with prompt) or ping"}
            )

    async def _run_job(self, account: str, job: str, prompt: str) -> None:
        faults = self._faults
        plan = plan_job(job, account, prompt, progress_steps=self._progress_steps, faults=faults)
        for index, event in enumerate(plan):
            if index:
                await asyncio.sleep(self._delay)
            recipients = list(self._sessions.get(account, ()))
            if "leak" in faults:
                recipients += [
                    session
                    for owner, sessions in self._sessions.items()
                    if owner != account
                    for session in sessions
                ]
            for session in recipients:
                self._send(session, event)

    def _send(self, session: _Session, payload: dict[str, Any]) -> None:
        """Write one frame now (no await), so frames leave in ``n`` order."""
        session.n += 1
        # broadcast() skips a connection that is closing instead of raising.
        broadcast((session.connection,), json.dumps({**payload, "n": session.n}))
