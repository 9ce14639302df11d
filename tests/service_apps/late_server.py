"""A misbehaving service, run as a real process or in a container by the service tests.

``python late_server.py PORT MODE [SECONDS]``, every mode on 127.0.0.1:PORT:

- ``ws``: wait SECONDS with the port closed, then serve a real WebSocket echo;
- ``silent-then-ws``: accept TCP connections and say nothing for SECONDS, then serve
  the real WebSocket echo on the same port (the "port open, app not ready" start);
- ``silent``: accept and say nothing, forever;
- ``http200``: answer every request ``HTTP/1.1 200 OK`` without upgrading, forever;
- ``bad-accept``: answer ``101`` with a wrong ``Sec-WebSocket-Accept``, forever;
- ``reset``: accept and reset every connection at once, forever;
- ``exit``: print a few log lines, wait SECONDS, exit with status 3.

It prints ``ws-listening <time.monotonic()>`` when the WebSocket endpoint is served
(the clock is the kernel's, the same for every process on the host), so a test can
compare it with when readiness was reported.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time

from websockets.asyncio.server import ServerConnection, serve

HOST = "127.0.0.1"


async def _echo(conn: ServerConnection) -> None:
    async for message in conn:
        await conn.send(message)


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up
    writer.close()


async def _http200(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


async def _bad_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: dGhpcyBpcyBub3QgdGhlIGtleQ==\r\n\r\n"
    )
    await writer.drain()
    await reader.read()
    writer.close()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    # SO_LINGER 0: close() sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _serve_ws(port: int) -> None:
    async with serve(_echo, HOST, port):
        print(f"ws-listening {time.monotonic():.6f}", flush=True)
        await asyncio.Future()


async def main(port: int, mode: str, seconds: float) -> int:
    print(f"late_server mode={mode} port={port}", flush=True)
    handlers = {"silent": _silent, "http200": _http200, "bad-accept": _bad_accept, "reset": _reset}
    if mode == "ws":
        await asyncio.sleep(seconds)
        await _serve_ws(port)
    elif mode == "silent-then-ws":
        server = await asyncio.start_server(_silent, HOST, port)
        print(f"tcp-listening {time.monotonic():.6f}", flush=True)
        await asyncio.sleep(seconds)
        server.close()
        await _serve_ws(port)
    elif mode in handlers:
        await asyncio.start_server(handlers[mode], HOST, port)
        print(f"tcp-listening {time.monotonic():.6f}", flush=True)
        await asyncio.Future()
    elif mode == "exit":
        for n in range(40):
            print(f"startup log line {n}", flush=True)
        print("fatal: cannot open the database (on purpose)", flush=True)
        await asyncio.sleep(seconds)
        return 3
    else:
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    port_arg, mode_arg = int(sys.argv[1]), sys.argv[2]
    seconds_arg = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    sys.exit(asyncio.run(main(port_arg, mode_arg, seconds_arg)))
