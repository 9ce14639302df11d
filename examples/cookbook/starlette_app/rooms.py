"""A Starlette app with one ``WebSocketRoute``: chat rooms over plain text frames.

``/ws/{room}``: each text frame a member sends reaches every member of the room, the
sender included, as ``[<room>] <text>``. No JSON, no token, no greeting: the shape of
many small real-time apps.

``ROOMS_BROKEN=1`` in the environment injects the bug the isolation tests catch: a
message goes to every room. Run by hand with ``uvicorn rooms:app --port 8002``.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

__all__ = ["BROKEN_ENV", "RoomChat", "app", "listeners"]

BROKEN_ENV = "ROOMS_BROKEN"
ROOMS: dict[str, set[WebSocket]] = {}


def listeners(room: str) -> set[WebSocket]:
    """Who hears a message said in ``room``: its members (everyone, when broken)."""
    if os.environ.get(BROKEN_ENV) == "1":
        return set().union(*ROOMS.values())
    return set(ROOMS.get(room, ()))


class RoomChat(WebSocketEndpoint):
    """One member of a room, from the handshake to the close."""

    encoding = "text"

    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        ROOMS.setdefault(websocket.path_params["room"], set()).add(websocket)

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        room = websocket.path_params["room"]
        for member in list(listeners(room)):
            try:
                await member.send_text(f"[{room}] {data}")
            except RuntimeError:  # it closed meanwhile: its on_disconnect removes it
                continue

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        ROOMS.get(websocket.path_params["room"], set()).discard(websocket)


app = Starlette(routes=[WebSocketRoute("/ws/{room}", RoomChat)])
