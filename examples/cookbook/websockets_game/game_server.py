"""A game server on the plain ``websockets`` library, after its tutorial's Connect Four.

One endpoint (``/``), JSON text frames:

- ``{"type": "init"}`` starts a game: ``{"type": "init", "join": KEY, "player": "red"}``.
- ``{"type": "join", "join": KEY}`` joins it: ``{"type": "init", "join": KEY,
  "player": "yellow"}``.
- ``{"type": "play", "column": C}`` (an integer, 0-6; red first, then in turn) drops a
  disc: every player of that game receives ``{"type": "play", "game": KEY, "move": N,
  "player": ..., "column": C, "row": R}``.
- Anything wrong (unknown key, not your turn, a full or unknown column, not JSON):
  ``{"type": "error", "message": ...}`` to the sender only; the connection stays open.

``GAME_BROKEN=1`` injects the bug the isolation test catches: a move is sent to the
players of every game. Run by hand with ``python game_server.py --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

__all__ = ["BROKEN_ENV", "COLUMNS", "ROWS", "Game", "handler", "main"]

BROKEN_ENV = "GAME_BROKEN"
COLUMNS, ROWS = 7, 6
PLAYERS = ("red", "yellow")

GAMES: dict[str, Game] = {}


@dataclass
class Game:
    """One game: its board (discs per column), its moves, its connections by player."""

    key: str
    heights: list[int] = field(default_factory=lambda: [0] * COLUMNS)
    moves: int = 0
    connections: dict[str, ServerConnection] = field(default_factory=dict)

    def play(self, player: str, column: Any) -> dict[str, Any]:
        """The move's event, or ValueError saying why it is not allowed."""
        if PLAYERS[self.moves % 2] != player:
            raise ValueError("it is not your turn")
        if isinstance(column, bool) or not isinstance(column, int) or not 0 <= column < COLUMNS:
            raise ValueError(f"column must be an integer from 0 to {COLUMNS - 1}")
        if self.heights[column] >= ROWS:
            raise ValueError(f"column {column} is full")
        row = self.heights[column]
        self.heights[column] += 1
        self.moves += 1
        return {
            "type": "play",
            "game": self.key,
            "move": self.moves,
            "player": player,
            "column": column,
            "row": row,
        }


def audience(game: Game) -> list[ServerConnection]:
    """Who sees a move of ``game``: its players (every game's, when broken)."""
    games = GAMES.values() if os.environ.get(BROKEN_ENV) == "1" else [game]
    return [conn for g in games for conn in g.connections.values()]


async def error(websocket: ServerConnection, message: str) -> None:
    await websocket.send(json.dumps({"type": "error", "message": message}))


async def handler(websocket: ServerConnection) -> None:
    """A connection: first init or join, then moves until it closes."""
    game: Game | None = None
    player = ""
    try:
        async for raw in websocket:
            try:
                event = json.loads(raw)
                kind = event["type"]
            except (ValueError, TypeError, KeyError):
                await error(websocket, "expected a JSON object with a type")
                continue
            if game is None and kind == "init":
                game, player = Game(secrets.token_urlsafe(12)), "red"
                GAMES[game.key] = game
            elif game is None and kind == "join":
                game = GAMES.get(event.get("join", ""))
                if game is None or "yellow" in game.connections:
                    await error(websocket, "no such game, or it is full")
                    continue
                player = "yellow"
            elif game is not None and kind == "play":
                try:
                    move = game.play(player, event.get("column"))
                except ValueError as err:
                    await error(websocket, str(err))
                    continue
                broadcast(audience(game), json.dumps(move))
                continue
            else:
                await error(websocket, f"unexpected {kind!r}")
                continue
            game.connections[player] = websocket
            await websocket.send(json.dumps({"type": "init", "join": game.key, "player": player}))
    finally:
        if game is not None:
            game.connections.pop(player, None)
            if not game.connections:
                GAMES.pop(game.key, None)


async def serve_forever(host: str, port: int) -> None:
    async with serve(handler, host, port) as server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    asyncio.run(serve_forever(args.host, args.port))


if __name__ == "__main__":
    main()
