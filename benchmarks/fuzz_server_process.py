"""The fuzzing benchmarks' servers: ``tests/fuzz/fuzz_servers.py`` in a process of its own.

A subprocess, not a thread: the server's work then runs on its own interpreter (its
own GIL), so what is measured in the benchmark's process is the client side only.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["fuzz_server"]

SERVERS = Path(__file__).resolve().parent.parent / "tests" / "fuzz" / "fuzz_servers.py"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def fuzz_server(bug: str) -> Iterator[str]:
    """Run the server with ``bug`` ("surrogate", "nesting", "none"); yield its URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVERS), "--port", str(port), "--bug", bug],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"fuzz server ({bug}) did not listen on {port}") from None
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
