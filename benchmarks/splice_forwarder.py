"""The fastest plain TCP forwarder this machine allows, as a ceiling for the chaos proxy.

Usage: ``python benchmarks/splice_forwarder.py UPSTREAM_PORT`` prints the port it listens
on (loopback), then forwards every connection to ``127.0.0.1:UPSTREAM_PORT`` until killed.

Why it exists: issue 16 asks the toxic-free chaos proxy for raw bytes at 0.8x of a
direct connection. Any TCP proxy doubles the kernel's socket work (client -> proxy ->
server and back, against client -> server and back), so on a machine where that work is
the bottleneck no proxy design reaches a fixed ratio. This forwarder is the design with
nothing left to remove: its own process (no GIL or event loop shared with the client),
one blocking thread per direction, and splice(2) through a pipe of the fast path's size
(`pytest_ws_resilience.chaos.splice.PIPE_SIZE`), so the bytes never enter user space.
`benchmarks/chaos_proxy.py` measures it beside the proxy's fast path; the gap between
the two is what the proxy's design still costs. (A C version of the same loop measured
within noise of this one: the time is the kernel's.)

Linux only (``os.splice``). Not part of the package: it has no toxics, no control API
and no bounded teardown, and is killed by the benchmark that starts it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import threading

from pytest_ws_resilience.chaos.splice import PIPE_SIZE  # the fast path's own pipe

HOST = "127.0.0.1"
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _pump(source: socket.socket, dest: socket.socket) -> None:
    """Move source's bytes to dest, kernel to kernel, until EOF; then half-close dest."""
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # the system's cap: the 64 KiB default pipe still works, only slower
    try:
        while moved := os.splice(source.fileno(), write_end, PIPE_SIZE, flags=os.SPLICE_F_MOVE):
            while moved:
                moved -= os.splice(read_end, dest.fileno(), moved, flags=os.SPLICE_F_MOVE)
        dest.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # a peer went away: the other direction sees it too
    finally:
        os.close(read_end)
        os.close(write_end)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: splice_forwarder.py UPSTREAM_PORT", file=sys.stderr)
        return 2
    upstream = int(argv[0])
    listener = socket.create_server((HOST, 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        server = socket.create_connection((HOST, upstream), timeout=10)
        server.settimeout(None)
        for source, dest in ((client, server), (server, client)):
            threading.Thread(target=_pump, args=(source, dest), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
