"""A small FastAPI chat/agent app: the server under test of this example's suite.

It is written the way a real service would be, not for the tests: a WebSocket endpoint
at ``/ws`` that authenticates a JWT at the handshake, keeps a registry of each user's
open connections, and answers a chat message with a streamed agent run sent to every
connection of that user (and of no one else). The suite in ``test_chat_app.py`` checks
it over real sockets with pytest-ws-resilience; ``pyproject.toml`` tells the plugin to
serve it (``app = "app:app"``).

Protocol (JSON text frames; every frame the app sends carries ``seq``, counted per
connection, so a lost frame shows as a gap):

- on open: ``{"type": "connection_established", "connection_id", "user_id", "auth_method"}``
- ``{"type": "user_message", "text", "run_id"?, "thread_id"?}``: an agent run,
  ``agent_started``, ``agent_thinking`` x2, ``tool_executing``, ``tool_completed``,
  ``agent_completed``, each with ``run_id``, ``thread_id`` and ``user_id``
- ``{"type": "ping", ...}``: ``{"type": "pong", ...}`` echoing the other fields
- anything else: ``{"type": "error", "code", "message"}``; the connection stays open

Authentication: an HS256 JWT whose ``sub`` is the user id, verified with the secret in
the environment variable ``CHAT_JWT_SECRET`` (read at startup, in the lifespan). The
token may come as the subprotocol ``jwt.<token>`` offered with ``jwt-auth``, as
``?token=<token>`` or as ``Authorization: Bearer <token>``. A missing or bad token is
refused before the WebSocket is accepted, with HTTP 401 and a short reason; Starlette
itself answers 403 to a handshake on a path with no WebSocket route, so the two stay
distinguishable from the client's side.

Run it by hand with ``CHAT_JWT_SECRET=... uvicorn app:app --port 8000`` from this
directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import FastAPI, WebSocket
from starlette.responses import PlainTextResponse

__all__ = [
    "AUTH_SUBPROTOCOL",
    "SECRET_ENV",
    "AuthRejected",
    "ChatState",
    "Connection",
    "Credentials",
    "Hub",
    "agent_events",
    "app",
    "find_credentials",
    "verify_token",
]

SECRET_ENV = "CHAT_JWT_SECRET"
"""Name of the environment variable holding the HS256 secret (never the secret itself)."""
DELAY_ENV = "CHAT_AGENT_DELAY_S"
"""Optional: seconds between two events of an agent run (default 0.005)."""
AUTH_SUBPROTOCOL = "jwt-auth"
TOKEN_SUBPROTOCOL_PREFIX = "jwt."
TOKEN_QUERY_PARAM = "token"
SHUTDOWN_WAIT_S = 2.0


# -- pure logic: credentials, tokens, agent runs (no I/O) ---------------------------------


@dataclass(frozen=True)
class Credentials:
    """A token found in the handshake and how it travelled (shown to the client)."""

    token: str = field(repr=False)
    method: str  # "subprotocol", "query" or "header"


class AuthRejected(Exception):
    """A handshake refused for ``reason`` (short, safe to send: never the token)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def find_credentials(
    query: Mapping[str, str], headers: Mapping[str, str], subprotocols: Sequence[str]
) -> Credentials | None:
    """Return the token presented in the handshake, if any.

    The subprotocol comes first because browsers cannot set headers on a WebSocket: it is
    the only method they have besides the query string, which ends up in access logs.
    """
    if AUTH_SUBPROTOCOL in subprotocols:
        for offered in subprotocols:
            if offered.startswith(TOKEN_SUBPROTOCOL_PREFIX):
                return Credentials(offered.removeprefix(TOKEN_SUBPROTOCOL_PREFIX), "subprotocol")
    if token := query.get(TOKEN_QUERY_PARAM, ""):
        return Credentials(token, "query")
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credentials(value.strip(), "header")
    return None


def verify_token(token: str, secret: str) -> str:
    """Return the user id (``sub``) of a valid HS256 token.

    Raises:
        AuthRejected: expired, wrongly signed, malformed, or without ``sub`` / ``exp``.
    """
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthRejected("token expired") from None
    except jwt.InvalidSignatureError:
        raise AuthRejected("invalid signature") from None
    except jwt.DecodeError:
        raise AuthRejected("malformed token") from None
    except jwt.InvalidTokenError:
        raise AuthRejected("invalid token") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise AuthRejected("invalid token")
    return subject


def agent_events(text: str, *, run_id: str, thread_id: str, user_id: str) -> list[dict[str, Any]]:
    """The frames of one agent run answering ``text``, in order (``seq`` added on send)."""
    base = {"run_id": run_id, "thread_id": thread_id, "user_id": user_id}
    return [
        {"type": "agent_started", "input": text, **base},
        {"type": "agent_thinking", "step": 1, "thought": f"The user said {text!r}.", **base},
        {"type": "agent_thinking", "step": 2, "thought": "I will look it up.", **base},
        {"type": "tool_executing", "tool": "search", "args": {"query": text}, **base},
        {"type": "tool_completed", "tool": "search", "output": f"1 result for {text!r}", **base},
        {"type": "agent_completed", "result": f"You said: {text}", **base},
    ]


def error_frame(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- asyncio glue: connections, the per-user hub, agent runs ------------------------------


class Connection:
    """One accepted WebSocket of a user, with its own ``seq`` counter.

    Sends are serialized by a lock so that ``seq`` follows the order frames go out, even
    when an agent run and a pong are sent at the same moment.
    """

    def __init__(self, websocket: WebSocket, user_id: str) -> None:
        self.id = new_id("conn")
        self.user_id = user_id
        self._websocket = websocket
        self._seq = 0
        self._lock = asyncio.Lock()

    async def send(self, frame: Mapping[str, Any]) -> None:
        async with self._lock:
            self._seq += 1
            await self._websocket.send_json({**frame, "seq": self._seq})


class Hub:
    """Each user's open connections, and the agent runs in flight.

    Isolation lives here: `publish` looks up the user's own connections and nothing else.
    """

    def __init__(self) -> None:
        self._by_user: dict[str, set[Connection]] = {}
        self._runs: set[asyncio.Task[None]] = set()

    def add(self, connection: Connection) -> None:
        self._by_user.setdefault(connection.user_id, set()).add(connection)

    def remove(self, connection: Connection) -> None:
        connections = self._by_user.get(connection.user_id, set())
        connections.discard(connection)
        if not connections:
            self._by_user.pop(connection.user_id, None)

    def connections(self, user_id: str) -> tuple[Connection, ...]:
        return tuple(self._by_user.get(user_id, ()))

    async def publish(self, user_id: str, frame: Mapping[str, Any]) -> None:
        """Send ``frame`` to every open connection of ``user_id``; drop the dead ones."""
        for connection in self.connections(user_id):
            try:
                await connection.send(frame)
            except (RuntimeError, OSError):
                # Closed under us (Starlette raises RuntimeError, uvicorn an OSError):
                # the endpoint's own cleanup will follow; the others still get the frame.
                self.remove(connection)

    def start_run(self, user_id: str, frames: list[dict[str, Any]], delay_s: float) -> None:
        """Stream an agent run in the background, so the sender can keep talking."""
        task = asyncio.create_task(self._run(user_id, frames, delay_s))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run(self, user_id: str, frames: list[dict[str, Any]], delay_s: float) -> None:
        for frame in frames:
            await asyncio.sleep(delay_s)
            await self.publish(user_id, frame)

    async def aclose(self) -> None:
        """Cancel the runs in flight; wait for them, bounded, so shutdown never hangs."""
        for task in self._runs:
            task.cancel()
        if self._runs:
            await asyncio.wait(self._runs, timeout=SHUTDOWN_WAIT_S)


@dataclass
class ChatState:
    """What the lifespan sets up, kept on ``app.state.chat``."""

    secret: str = field(repr=False)
    hub: Hub = field(default_factory=Hub)
    agent_delay_s: float = 0.005


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Read the configuration and build the hub at startup; stop the runs at shutdown.

    The secret is read here rather than at import, so whoever serves the app (uvicorn,
    the pytest plugin) may set the variable any time before startup.
    """
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise RuntimeError(f"set {SECRET_ENV} to the HS256 secret tokens are signed with")
    state = ChatState(secret=secret, agent_delay_s=float(os.environ.get(DELAY_ENV, "0.005")))
    app.state.chat = state
    try:
        yield
    finally:
        await state.hub.aclose()


app = FastAPI(title="chat example", lifespan=lifespan)


async def refuse(websocket: WebSocket, reason: str) -> None:
    """Refuse the handshake with HTTP 401 and ``reason``.

    Closing before ``accept()`` would make the server answer 403, which Starlette also
    uses for a path with no WebSocket route; 401 tells the client it is the token. Servers
    without the denial-response extension fall back to that 403.
    """
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        response = PlainTextResponse(f"401 Unauthorized: {reason}", status_code=401)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason=reason)


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    """Authenticate, register the connection, then answer frames until it closes."""
    state: ChatState = websocket.app.state.chat
    credentials = find_credentials(
        websocket.query_params, websocket.headers, websocket.scope.get("subprotocols", [])
    )
    if credentials is None:
        await refuse(websocket, "missing token")
        return
    try:
        user_id = verify_token(credentials.token, state.secret)
    except AuthRejected as rejected:
        await refuse(websocket, rejected.reason)
        return

    subprotocol = AUTH_SUBPROTOCOL if credentials.method == "subprotocol" else None
    await websocket.accept(subprotocol=subprotocol)
    connection = Connection(websocket, user_id)
    state.hub.add(connection)
    try:
        await connection.send(
            {
                "type": "connection_established",
                "connection_id": connection.id,
                "user_id": user_id,
                "auth_method": credentials.method,
            }
        )
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                await connection.send(error_frame("unsupported_binary", "send JSON text frames"))
                continue
            await handle_frame(state, connection, text)
    except (RuntimeError, OSError):
        pass  # the peer went away mid-send: nothing left to answer
    finally:
        state.hub.remove(connection)


async def handle_frame(state: ChatState, connection: Connection, text: str) -> None:
    """Answer one text frame of ``connection``."""
    try:
        message = json.loads(text)
    except ValueError:
        await connection.send(error_frame("invalid_json", "frames must be JSON"))
        return
    if not isinstance(message, dict):
        await connection.send(error_frame("invalid_message", "frames must be JSON objects"))
        return
    kind = message.get("type")
    if kind == "ping":
        await connection.send({**message, "type": "pong"})
    elif kind == "user_message":
        await start_agent_run(state, connection, message)
    else:
        await connection.send(error_frame("unknown_type", f"unknown type {kind!r}"))


async def start_agent_run(
    state: ChatState, connection: Connection, message: dict[str, Any]
) -> None:
    """Validate a ``user_message`` and stream its run to all of the user's connections."""
    text, run_id, thread_id = (message.get(key) for key in ("text", "run_id", "thread_id"))
    if not isinstance(text, str) or not all(
        value is None or isinstance(value, str) for value in (run_id, thread_id)
    ):
        await connection.send(
            error_frame("invalid_message", "user_message needs a string text (and string ids)")
        )
        return
    frames = agent_events(
        text,
        run_id=run_id or new_id("run"),
        thread_id=thread_id or new_id("thread"),
        user_id=connection.user_id,
    )
    state.hub.start_run(connection.user_id, frames, state.agent_delay_s)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("CHAT_PORT", "8000")))
