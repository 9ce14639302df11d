"""Servers with the bugs fuzzing must find, and one without, on loopback.

Each speaks a small JSON protocol (``ping`` -> ``pong``, ``user_message`` with a
``text`` -> ``ack``, anything else -> an ``error`` frame) on a real websockets server,
and has one bug a user never thought to test:

- `surrogate_server`: stores a message's ``text`` as UTF-8, so a lone surrogate in that
  field (``"\\ud800"`` in JSON, a valid escape) raises ``UnicodeEncodeError`` in the
  handler: websockets closes the connection with 1011;
- `nesting_server`: checks every message with a recursive walk that fails past
  `NESTING_LIMIT` levels of containers: 1011 as well;
- `naive_decoder_server`: catches what ``json.loads`` raises for bad JSON
  (`ValueError`) but not the `RecursionError` of JSON nested past the decoder's depth,
  the bug fuzzing found in our reference server: 1011 too;
- `clean_server`: the same protocol with none of these bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

__all__ = [
    "NESTING_LIMIT",
    "FuzzServer",
    "clean_server",
    "container_depth",
    "naive_decoder_server",
    "nesting_server",
    "serving",
    "surrogate_server",
]

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 2.0
#: Containers a message may nest before the nesting server's walk fails.
NESTING_LIMIT = 64

# websockets logs each handler's traceback at ERROR: expected here, and noisy.
logging.getLogger("fuzz_servers").setLevel(logging.CRITICAL)


def container_depth(value: Any) -> int:
    """How many lists/objects are nested in ``value`` (iteratively: any depth)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend(
                (child, depth) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


def _walk(value: Any, depth: int = 0) -> None:
    """The nesting bug: a recursive check with a hard limit nobody handles."""
    if isinstance(value, dict | list):
        depth += 1
        if depth > NESTING_LIMIT:
            raise RecursionError(f"message nested deeper than {NESTING_LIMIT}")
        for child in value.values() if isinstance(value, dict) else value:
            _walk(child, depth)


def _answer(data: Any, *, store: Callable[[str], object]) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return {"type": "error", "error": "expected an object with a string 'type'"}
    kind = data["type"]
    if kind == "ping":
        return {"type": "pong"}
    if kind == "user_message":
        text = data.get("text")
        if not isinstance(text, str):
            return {"type": "error", "error": "user_message needs a string 'text'"}
        store(text)
        return {"type": "ack", "length": len(text)}
    return {"type": "error", "error": "unknown type"}


def _handler(
    *, surrogate_bug: bool, nesting_bug: bool, decoder_bug: bool = False
) -> Callable[[ServerConnection], Any]:
    def store(text: str) -> object:
        if surrogate_bug:
            return text.encode("utf-8")  # UnicodeEncodeError on a lone surrogate
        return text.encode("utf-8", "surrogatepass")

    async def handle(connection: ServerConnection) -> None:
        async for message in connection:
            if isinstance(message, bytes):
                await connection.send(json.dumps({"type": "error", "error": "binary"}))
                continue
            # The decoder bug: RecursionError is not caught, so the handler raises.
            caught = ValueError if decoder_bug else (ValueError, RecursionError)
            try:
                data = json.loads(message)
            except caught as exc:
                await connection.send(json.dumps({"type": "error", "error": type(exc).__name__}))
                continue
            if nesting_bug:
                _walk(data)
            await connection.send(json.dumps(_answer(data, store=store)))

    return handle


@dataclass
class FuzzServer:
    url: str = ""


@contextlib.asynccontextmanager
async def serving(
    *, surrogate_bug: bool = False, nesting_bug: bool = False, decoder_bug: bool = False
) -> AsyncIterator[FuzzServer]:
    """A server on a free loopback port, stopped (bounded) on exit."""
    handler = _handler(
        surrogate_bug=surrogate_bug, nesting_bug=nesting_bug, decoder_bug=decoder_bug
    )
    server = await serve(handler, HOST, 0, logger=logging.getLogger("fuzz_servers"))
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield FuzzServer(url=f"ws://{HOST}:{port}/")
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT_S)


def surrogate_server() -> contextlib.AbstractAsyncContextManager[FuzzServer]:
    return serving(surrogate_bug=True)


def nesting_server() -> contextlib.AbstractAsyncContextManager[FuzzServer]:
    return serving(nesting_bug=True)


def naive_decoder_server() -> contextlib.AbstractAsyncContextManager[FuzzServer]:
    return serving(decoder_bug=True)


def clean_server() -> contextlib.AbstractAsyncContextManager[FuzzServer]:
    return serving()


async def _serve_forever(port: int, bug: str) -> None:
    handler = _handler(surrogate_bug=bug == "surrogate", nesting_bug=bug == "nesting")
    async with serve(handler, HOST, port, logger=logging.getLogger("fuzz_servers")) as server:
        await server.serve_forever()


if __name__ == "__main__":  # for --ws-server-cmd: python fuzz_servers.py --port {port} --bug B
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bug", choices=("surrogate", "nesting", "none"), default="none")
    arguments = parser.parse_args()
    asyncio.run(_serve_forever(arguments.port, arguments.bug))
