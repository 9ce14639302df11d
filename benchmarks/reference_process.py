"""The reference server in a process of its own, for the benchmarks that must not share
their CPU with it (``benchmarks/storm.py``, ``benchmarks/suite_overhead.py``)."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator, Sequence

__all__ = ["server_process"]

#: Bound on the server's start (it prints its URL once it listens).
SERVER_START_S = 15.0


@contextlib.contextmanager
def server_process(secret_env: str, secret: str, extra: Sequence[str] = ()) -> Iterator[str]:
    """A ``python -m pytest_ws_resilience.testing`` subprocess reading its HS256 secret
    from ``$secret_env``; yields its URL once it listens (bounded), stops it after."""
    env = {**os.environ, secret_env: secret}
    command = [sys.executable, "-m", "pytest_ws_resilience.testing", "--secret-env", secret_env]
    proc = subprocess.Popen([*command, *extra], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=SERVER_START_S):
                raise SystemExit(f"server did not start within {SERVER_START_S:g} s")
        line = proc.stdout.readline().strip()
        if " listening on " not in line:
            raise SystemExit(f"server did not start: {line!r}")
        yield line.rsplit(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
