"""The isolation package is pure: each of its modules, imported alone in a fresh
interpreter, loads no I/O module, neither pyjwt nor the asyncio client."""

from __future__ import annotations

import subprocess
import sys

import pytest

NAMES = ("markers", "frames", "index", "violation", "detector", "guard")
MODULES = [f"pytest_ws_resilience.isolation.{name}" for name in NAMES]
#: Modules that do I/O (pyjwt's import loads urllib and socket).
IO_MODULES = ("asyncio", "socket", "subprocess", "pytest", "docker", "uvicorn",
              "websockets.asyncio", "jwt")  # fmt: skip


def loaded_by(module: str) -> set[str]:
    """Every module in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    code = f"import sys, {module}; print(*sorted(sys.modules), sep='\\n')"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(run.stdout.split())


@pytest.mark.parametrize("module", MODULES)
def test_an_isolation_module_loads_no_io_and_not_the_client(module: str) -> None:
    loaded = loaded_by(module)
    assert module in loaded
    assert [name for name in IO_MODULES if name in loaded] == []
    assert "pytest_ws_resilience.client.client" not in loaded
    assert "pytest_ws_resilience.client.tokens" not in loaded
