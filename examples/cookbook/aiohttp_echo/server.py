"""An aiohttp WebSocket server: a text echo and chat rooms, behind an Origin check.

Written as an aiohttp service would be, not for the tests:

- ``/echo``: each text frame comes back as it is ("hello" -> "hello"), each binary frame
  too.
- ``/chat/{room}``: JSON text frames; ``{"text": "..."}`` from one member reaches every
  member of the room, the sender included, as ``{"room": "<room>", "text": "..."}``.
- Both refuse the handshake with ``403`` unless the ``Origin`` header is one of
  ``$ECHO_ALLOWED_ORIGINS`` (comma separated; default ``http://localhost``): a page of
  another site may not use them (cross-site WebSocket hijacking).

``ECHO_BROKEN=1`` injects the bug the isolation tests catch: a chat message goes to
every room. Run by hand with ``python server.py --port 8080``.
"""

from __future__ import annotations

import argparse
import json
import os

from aiohttp import WSMsgType, web

__all__ = ["BROKEN_ENV", "ORIGINS_ENV", "allowed_origins", "main", "make_app"]

ORIGINS_ENV = "ECHO_ALLOWED_ORIGINS"
BROKEN_ENV = "ECHO_BROKEN"
ROOMS = web.AppKey("rooms", dict[str, set[web.WebSocketResponse]])


def allowed_origins() -> set[str]:
    """The origins a handshake may come from."""
    raw = os.environ.get(ORIGINS_ENV, "http://localhost")
    return {origin.strip() for origin in raw.split(",") if origin.strip()}


def check_origin(request: web.Request) -> None:
    """Refuse (403) a handshake from an origin that is not allowed, or without one."""
    if request.headers.get("Origin") not in allowed_origins():
        raise web.HTTPForbidden(text="origin not allowed\n")


async def echo(request: web.Request) -> web.WebSocketResponse:
    check_origin(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def chat(request: web.Request) -> web.WebSocketResponse:
    check_origin(request)
    room = request.match_info["room"]
    rooms = request.app[ROOMS]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    rooms.setdefault(room, set()).add(ws)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                text = json.loads(msg.data)["text"]
            except (ValueError, KeyError, TypeError):
                await ws.send_str(json.dumps({"error": 'expected {"text": ...}'}))
                continue
            frame = json.dumps({"room": room, "text": text})
            for peer in list(listeners(rooms, room)):
                if not peer.closed:
                    await peer.send_str(frame)
    finally:
        rooms[room].discard(ws)
    return ws


def listeners(
    rooms: dict[str, set[web.WebSocketResponse]], room: str
) -> set[web.WebSocketResponse]:
    """Who hears a message said in ``room``: its members (everyone, when broken)."""
    if os.environ.get(BROKEN_ENV) == "1":
        return set().union(*rooms.values())
    return set(rooms.get(room, ()))


def make_app() -> web.Application:
    app = web.Application()
    app[ROOMS] = {}
    app.router.add_get("/echo", echo)
    app.router.add_get("/chat/{room}", chat)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
