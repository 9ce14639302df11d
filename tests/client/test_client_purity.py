"""The client's pure modules stay pure: imported alone, in a fresh interpreter, none of
them loads an event loop, a socket, a subprocess, pytest or websockets (whose package
import pulls in sockets). So their rules are testable, and cheap to import, anywhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "pytest_ws_resilience.client.auth_methods",
    "pytest_ws_resilience.client.bounds",
    "pytest_ws_resilience.client.eventlog",
    "pytest_ws_resilience.client.fallback",
    "pytest_ws_resilience.client.greeting",
    "pytest_ws_resilience.client.logs",
    "pytest_ws_resilience.client.matching",
    "pytest_ws_resilience.client.metrics",
    "pytest_ws_resilience.client.observers",
]
IO_MODULES = ("asyncio", "socket", "subprocess", "pytest", "docker", "uvicorn", "websockets")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_client_module_imports_no_io(module: str) -> None:
    probe = f"import sys, {module}; print(sorted(n for n in {IO_MODULES!r} if n in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", f"{module} loads {result.stdout.strip()}"
