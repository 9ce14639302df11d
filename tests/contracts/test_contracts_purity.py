"""The contracts package is pure and generic: each of its modules, imported alone in a
fresh interpreter, loads no I/O module and nothing of the reference server, and no
module of it names one of that server's message types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pytest_ws_resilience.contracts
from pytest_ws_resilience.testing import vocabulary

MODULES = [
    f"pytest_ws_resilience.contracts.{name}" for name in ("contract", "checker", "rules", "result")
]
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
def test_a_contracts_module_loads_no_io_and_nothing_of_the_reference_server(module: str) -> None:
    loaded = loaded_by(module)
    assert module in loaded
    assert [name for name in IO_MODULES if name in loaded] == []
    assert sorted(name for name in loaded if name.startswith("pytest_ws_resilience.testing")) == []


def test_no_contracts_module_names_a_message_type_of_the_reference_server() -> None:
    package = Path(pytest_ws_resilience.contracts.__file__).parent
    words = {getattr(vocabulary, name) for name in vocabulary.__all__}
    message_types = {word for word in words if isinstance(word, str)}
    assert "agent_started" in message_types
    for path in sorted(package.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert [t for t in sorted(message_types) if f'"{t}"' in source] == [], path.name
