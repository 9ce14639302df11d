"""The reference server: asyncio glue around the pure auth, agent and history rules.

Built on `websockets.asyncio.server`: authentication happens in ``process_request``
(a refused handshake is a real HTTP 401), the ``jwt-auth`` subprotocol is selected in
``select_subprotocol``, ``max_size`` closes oversized frames with 1009 and websockets
answers and sends pings. What is left here is connection bookkeeping, sending frames
with per-connection sequence numbers, pacing agent runs and a bounded shutdown. Room
frames are handed to `room_service.RoomService`, which sends through this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from pytest_ws_resilience.peer_json import UNDECODABLE
from pytest_ws_resilience.redaction import RedactingFilter
from pytest_ws_resilience.testing.agent import AgentRun, PlannedEvent, plan_run
from pytest_ws_resilience.testing.faults import (
    ACCEPT_INVALID_TOKENS,
    KEEP_EXPIRED_SESSIONS,
    LEAK,
    LEAK_CONNECTIONS,
    LOSE_HISTORY,
    SLOW_ACCEPT,
    parse_faults,
)
from pytest_ws_resilience.testing.history import HistoryStore, Message
from pytest_ws_resilience.testing.room_service import ROOM_MESSAGES, RoomService
from pytest_ws_resilience.testing.rooms import room_from_path
from pytest_ws_resilience.testing.server_config import ServerConfig
from pytest_ws_resilience.testing.token_check import (
    TOKEN_EXPIRED_CLOSE_CODE,
    TOKEN_EXPIRED_REASON,
    AuthRejection,
    Identity,
    authenticate,
    seconds_left,
)
from pytest_ws_resilience.testing.vocabulary import (
    AGENT_COMPLETED,
    CONNECTION_ESTABLISHED,
    GET_HISTORY,
    HISTORY,
    INVALID_JSON,
    INVALID_MESSAGE,
    PING,
    PONG,
    UNKNOWN_TYPE,
    UNSUPPORTED_BINARY,
    USER_MESSAGE,
    error_frame,
)

__all__ = ["ReferenceConnection", "ReferenceServer", "ServerStats"]

logger = logging.getLogger(__name__)
# websockets logs through this logger too (passed to serve()); at debug level it
# prints request lines, which may carry ?token=..., so redact at the source.
logger.addFilter(RedactingFilter())

#: How long the server waits for a client to answer its close frame before aborting.
_CLOSE_TIMEOUT_S = 1.0
# Pending connections the kernel queues for accept() (capped by net.core.somaxconn):
# asyncio's default of 100 overflows in a storm of 1,000, and each dropped handshake
# then waits a whole SYN-ACK retransmit (1 s, 3 s...): latency of the kernel, not of us.
_BACKLOG = 4096
#: Share of ``stop(timeout)`` spent closing gracefully before aborting sockets.
_GRACEFUL_SHARE = 0.7
#: Memory the leak_connections fault keeps per closed connection (written, so resident).
_LEAKED_BYTES = 64 * 1024


@dataclass
class ServerStats:
    """Counters of a running server (read them from any thread; they only grow,
    except ``active_connections``)."""

    handshakes_attempted: int = 0
    handshakes_rejected: int = 0
    connections_opened: int = 0
    active_connections: int = 0
    messages_received: int = 0
    messages_sent: int = 0

    def snapshot(self) -> ServerStats:
        """A copy that no longer changes."""
        return replace(self)


class ReferenceConnection(ServerConnection):
    """A server connection that knows its user and registers its socket.

    The registry holds every TCP connection, including those still in the opening
    handshake, so `ReferenceServer.stop` can abort them when a graceful close runs
    out of time (websockets' own list only holds open connections).
    """

    registry: set[ReferenceConnection] = set()  # replaced per server, see _connection_class
    identity: Identity | None = None
    #: The room a ``/rooms/<name>`` request path names ("" for ``/rooms/``), else None.
    room_at_open: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.registry.add(self)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.registry.discard(self)
        super().connection_lost(exc)


class _Client:
    """Per-connection state: who it is and the next sequence number."""

    __slots__ = ("connection", "connection_id", "identity", "seq")

    def __init__(self, connection: ServerConnection, identity: Identity) -> None:
        self.connection = connection
        self.identity = identity
        self.connection_id = f"conn-{uuid.uuid4().hex[:12]}"
        self.seq = 0


def _encoded_prefix(payload: dict[str, Any]) -> str:
    """``payload`` as JSON without its closing brace, ready for a seq to be appended.

    Fan-out sends one event to several connections that differ only in ``seq``;
    encoding once and appending the number keeps that cost O(1) per connection.
    """
    return json.dumps(payload, separators=(",", ":"))[:-1]


def _with_seq(prefix: str, seq: int) -> str:
    return f'{prefix},"seq":{seq}}}' if prefix != "{" else f'{{"seq":{seq}}}'


class ReferenceServer:
    """A production-like agent backend on a loopback port, for tests and demos.

    Use ``async with ReferenceServer(config) as server:`` or ``await start()`` /
    ``await stop()``. All state (users, history, faults) lives on the event loop
    that started it; `EmbeddedServer` runs one in its own thread.

    Args:
        config: settings; without one the server needs no auth (users are named by
            ``?user=`` or generated), which suits demos, not auth tests.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self._config = config if config is not None else ServerConfig(require_auth=False)
        self._faults: frozenset[str] = self._config.faults
        self.stats = ServerStats()
        self._history = HistoryStore()
        self._users: dict[str, dict[_Client, None]] = {}  # ordered sets of a user's clients
        self._rooms: RoomService[_Client] = RoomService(
            send=self._send_all,
            send_twice=self._send_twice,
            faults=lambda: self._faults,
            join_delay_s=self._config.join_delay_s,
            is_open=lambda client: client.connection.state is State.OPEN,
        )
        self._runs: set[asyncio.Task[None]] = set()
        self._connections: set[ReferenceConnection] = set()
        self._leaked: list[tuple[int, bytes]] = []  # leak_connections: (fd, memory)
        self._server: Server | None = None
        self._closing: asyncio.Event | None = None
        self._port = 0

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._server is not None else "stopped"
        return f"ReferenceServer({state}, faults={sorted(self._faults)!r})"

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> Self:
        """Bind and start listening; returns once connections are accepted."""
        if self._server is not None:
            return self
        config = self._config
        self._closing = asyncio.Event()
        self._server = await serve(
            self._handle,
            self._bind_host,
            config.port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            compression="deflate" if config.compression else None,
            open_timeout=10.0 + config.slow_accept_s,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            close_timeout=_CLOSE_TIMEOUT_S,
            max_size=config.max_message_size,
            logger=logger,
            create_connection=self._connection_class(),
            backlog=_BACKLOG,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("reference server listening on %s (%s)", self.url, config.auth_mode)
        return self

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (bounds a shutdown)
        """Close every connection and stop listening, within about ``timeout`` seconds.

        Clients get a 1001 close; those that do not answer in time, and sockets still
        in the handshake, are aborted. Idempotent.
        """
        server, self._server = self._server, None
        if server is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        assert self._closing is not None
        self._closing.set()  # wakes handshakes sleeping under slow_accept
        for task in self._runs:
            task.cancel()
        server.close()
        try:
            async with asyncio.timeout(max(timeout, 0.0) * _GRACEFUL_SHARE):
                await server.wait_closed()
        except TimeoutError:
            for connection in list(self._connections):
                connection.transport.abort()
            try:
                async with asyncio.timeout_at(deadline):
                    await server.wait_closed()
            except TimeoutError:
                logger.warning("reference server did not stop within %.1f s", timeout)
        if self._runs:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(max(deadline, loop.time() + 0.1)):
                    await asyncio.gather(*self._runs, return_exceptions=True)
        self._users.clear()
        self.stats.active_connections = 0
        for fd, _ in self._leaked:  # a stopped server gives its leak back
            os.close(fd)
        self._leaked.clear()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- public state --------------------------------------------------------------

    @property
    def config(self) -> ServerConfig:
        return self._config

    @property
    def host(self) -> str:
        return self._bind_host

    @property
    def port(self) -> int:
        """The bound port (the real one when configured with 0); 0 before start."""
        return self._port

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/`` of this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self._port}/"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def faults(self) -> frozenset[str]:
        """The fault switches on right now."""
        return self._faults

    def room_members(self, room: str) -> int:
        """How many connections are in ``room`` now (0 for a room never joined).

        Read it on the server's loop; membership ends when a connection closes.
        """
        return len(self._rooms.rooms.members(room))

    def set_faults(self, *names: str) -> None:
        """Turn on exactly ``names`` (no names: all off). Takes effect for new runs
        and handshakes; a run already under way keeps the plan it started with.

        Raises:
            ValueError: an unknown fault name.
        """
        self._faults = parse_faults(names)

    @property
    def _bind_host(self) -> str:
        # "localhost" may resolve to two addresses, and port 0 would give each its
        # own port: bind one, so the server has one URL.
        return "127.0.0.1" if self._config.host == "localhost" else self._config.host

    def _connection_class(self) -> type[ReferenceConnection]:
        registry = self._connections

        class _Connection(ReferenceConnection):
            pass

        _Connection.registry = registry
        return _Connection

    # -- handshake -----------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        self.stats.handshakes_attempted += 1
        if SLOW_ACCEPT in self._faults:
            await self._sleep_unless_closing(self._config.slow_accept_s)
        result = authenticate(
            request.path,
            request.headers,
            self._config,
            accept_invalid=ACCEPT_INVALID_TOKENS in self._faults,
        )
        if isinstance(result, AuthRejection):
            self.stats.handshakes_rejected += 1
            return connection.respond(result.status, result.body)
        assert isinstance(connection, ReferenceConnection)
        connection.identity = result
        connection.room_at_open = room_from_path(request.path)
        return None

    def _select_subprotocol(
        self, connection: ServerConnection, subprotocols: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        wanted = self._config.auth_subprotocol
        return Subprotocol(wanted) if wanted in subprotocols else None

    async def _sleep_unless_closing(self, delay: float) -> None:
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closing.wait()

    # -- connections ---------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        identity = connection.identity if isinstance(connection, ReferenceConnection) else None
        if identity is None:  # cannot happen: process_request refuses or sets it
            return
        assert isinstance(connection, ReferenceConnection)
        room_at_open = connection.room_at_open
        client = _Client(connection, identity)
        user_id = identity.user_id
        if LOSE_HISTORY in self._faults:
            self._history.forget(user_id)
        self._users.setdefault(user_id, {})[client] = None
        self.stats.connections_opened += 1
        self.stats.active_connections += 1
        expiry = self._expiry(client)
        try:
            self._send(
                client,
                {
                    "type": CONNECTION_ESTABLISHED,
                    "connection_id": client.connection_id,
                    "user_id": user_id,
                    "recv_timeout": self._config.recv_timeout,
                    "auth_method": identity.method,
                },
            )
            if room_at_open:  # a per-room endpoint: joined right after the greeting
                await self._rooms.join(client, room_at_open)
            elif room_at_open is not None:
                self._send(client, error_frame(INVALID_MESSAGE, "path /rooms/ names no room"))
            async for message in connection:
                self.stats.messages_received += 1
                await self._on_message(client, message)
        except ConnectionClosed:
            pass  # 1009, a dropped client, a server stop: nothing to clean but below
        finally:
            if expiry is not None:
                expiry.cancel()
            if LEAK_CONNECTIONS in self._faults:
                self._leaked.append((os.open(os.devnull, os.O_RDONLY), b"\x5a" * _LEAKED_BYTES))
            self._rooms.forget(client)
            self.stats.active_connections -= 1
            clients = self._users.get(user_id)
            if clients is not None:
                clients.pop(client, None)
                if not clients:
                    del self._users[user_id]

    def _expiry(self, client: _Client) -> asyncio.TimerHandle | None:
        """Close ``client``'s connection when its token expires (``4001 token
        expired``), unless the ``keep_expired_sessions`` fault is on."""
        left = seconds_left(client.identity, time.time())
        if left is None or KEEP_EXPIRED_SESSIONS in self._faults:
            return None
        return asyncio.get_running_loop().call_later(max(left, 0.0), self._expire, client)

    def _expire(self, client: _Client) -> None:
        closing = client.connection.close(TOKEN_EXPIRED_CLOSE_CODE, TOKEN_EXPIRED_REASON)
        task = asyncio.create_task(closing, name=f"expire-{client.connection_id}")
        self._runs.add(task)  # stop() waits for it, as for agent runs
        task.add_done_callback(self._runs.discard)

    async def _on_message(self, client: _Client, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._send(client, error_frame(UNSUPPORTED_BINARY, "binary frames are not supported"))
            return
        try:
            data = json.loads(message)
        except json.JSONDecodeError as exc:
            self._send(client, error_frame(INVALID_JSON, f"invalid JSON: {exc.msg}"))
            return
        except UNDECODABLE as exc:
            # Valid JSON that Python cannot decode: nested past the decoder's depth, or
            # an integer past the int/str digit limit (found by ws_fuzz; it was a 1011).
            self._send(client, error_frame(INVALID_JSON, f"undecodable JSON: {exc}"))
            return
        if not isinstance(data, dict):
            self._send(client, error_frame(INVALID_MESSAGE, "expected a JSON object"))
            return
        kind = data.get("type")
        if not isinstance(kind, str):
            self._send(client, error_frame(INVALID_MESSAGE, "missing string field 'type'"))
        elif kind == USER_MESSAGE:
            self._on_user_message(client, data)
        elif kind == GET_HISTORY:
            self._on_get_history(client, data)
        elif kind in ROOM_MESSAGES:
            # Awaited in line: a connection's later frames wait for its join, so a
            # post right after a join finds the sender a member.
            await self._rooms.handle(client, kind, data)
        elif kind == PING:
            self._on_ping(client, data)
        else:
            self._send(client, error_frame(UNKNOWN_TYPE, f"unknown message type {kind!r}"))

    def _on_ping(self, client: _Client, data: dict[str, Any]) -> None:
        echoed = {k: v for k, v in data.items() if k not in ("type", "seq")}
        try:
            pong = _encoded_prefix({"type": PONG, **echoed})
        except RecursionError as exc:
            # Decoded, yet too deep to encode again: the encoder can need more stack than
            # the decoder did (on 3.11 two levels short of the decoder's limit, on 3.15
            # the top 7,000 levels or so). It was a 1011.
            message = f"undecodable JSON: too deep to echo ({exc})"
            self._send(client, error_frame(INVALID_JSON, message))
            return
        self._send_encoded(client, pong)

    def _on_user_message(self, client: _Client, data: dict[str, Any]) -> None:
        text = data.get("text")
        if not isinstance(text, str):
            self._send(client, error_frame(INVALID_MESSAGE, "user_message needs a string 'text'"))
            return
        ids: dict[str, str] = {}
        for name, prefix in (("run_id", "run"), ("thread_id", "thread")):
            value = data.get(name)
            if value is not None and (not isinstance(value, str) or not value):
                message = f"user_message '{name}' must be a non-empty string"
                self._send(client, error_frame(INVALID_MESSAGE, message))
                return
            ids[name] = value or f"{prefix}-{uuid.uuid4().hex[:12]}"
        run = AgentRun(
            run_id=ids["run_id"],
            thread_id=ids["thread_id"],
            user_id=client.identity.user_id,
            text=text,
        )
        task = asyncio.create_task(self._run_agent(run), name=f"agent-run-{run.run_id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    def _on_get_history(self, client: _Client, data: dict[str, Any]) -> None:
        user_id = client.identity.user_id
        thread_id = data.get("thread_id")
        if thread_id is None:
            self._send(client, {"type": HISTORY, "threads": self._history.threads(user_id)})
        elif isinstance(thread_id, str):
            messages = [m.as_json() for m in self._history.messages(user_id, thread_id)]
            self._send(client, {"type": HISTORY, "thread_id": thread_id, "messages": messages})
        else:
            problem = "get_history 'thread_id' must be a string"
            self._send(client, error_frame(INVALID_MESSAGE, problem))

    # -- agent runs ----------------------------------------------------------------

    async def _run_agent(self, run: AgentRun) -> None:
        plan = plan_run(run, thinking_steps=self._config.thinking_steps, faults=self._faults)
        self._history.append(run.user_id, run.thread_id, Message("user", run.text, run.run_id))
        for index, step in enumerate(plan):
            if index:
                await asyncio.sleep(self._config.agent_delay_s)
            if step.event["type"] == AGENT_COMPLETED:
                # Recorded before it is sent: a client reacting to agent_completed
                # with get_history must find the answer there.
                answer = Message("agent", step.event["result"], run.run_id)
                self._history.append(run.user_id, run.thread_id, answer)
            self._publish(run.user_id, step)

    def _publish(self, user_id: str, step: PlannedEvent) -> None:
        """Send one planned event to every connection of ``user_id`` (and, under the
        leak fault, to everyone else's too)."""
        recipients = list(self._users.get(user_id, ()))
        if LEAK in self._faults:
            recipients += [
                client
                for owner, clients in self._users.items()
                if owner != user_id
                for client in clients
            ]
        prefix = _encoded_prefix(step.event)
        for client in recipients:
            client.seq += 1  # a dropped event (copies == 0) still consumes its number
            if step.copies:
                text = _with_seq(prefix, client.seq)
                for _ in range(step.copies):
                    self._write(client, text)

    # -- sending -------------------------------------------------------------------

    def _send(self, client: _Client, payload: dict[str, Any]) -> None:
        self._send_encoded(client, _encoded_prefix(payload))

    def _send_encoded(self, client: _Client, prefix: str) -> None:
        """Send a payload already encoded by `_encoded_prefix`, with the next seq."""
        client.seq += 1
        self._write(client, _with_seq(prefix, client.seq))

    def _send_all(self, clients: Iterable[_Client], payload: dict[str, Any]) -> None:
        """Send ``payload`` to each of ``clients``, encoded once, each with its own seq."""
        prefix = _encoded_prefix(payload)
        for client in clients:
            client.seq += 1
            self._write(client, _with_seq(prefix, client.seq))

    def _send_twice(self, client: _Client, payload: dict[str, Any]) -> None:
        """Write ``payload`` twice as the identical frame, seq included (a duplicate)."""
        client.seq += 1
        text = _with_seq(_encoded_prefix(payload), client.seq)
        self._write(client, text)
        self._write(client, text)

    def _write(self, client: _Client, text: str) -> None:
        """Write one frame now, without awaiting.

        Writing synchronously means frames leave in the order their seq numbers were
        assigned, even when several runs interleave on one connection.
        """
        connection = client.connection
        if connection.state is not State.OPEN:
            return
        broadcast((connection,), text)
        self.stats.messages_sent += 1
