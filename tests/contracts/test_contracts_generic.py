"""The contracts package is generic: no module of it names one of the reference
server's message types (its vocabulary lives with it, in `testing/vocabulary.py`).

That every contracts module is pure, and imports nothing of the reference server, is
checked for the whole package by `tests/layout/test_import_graph.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest_ws_resilience.contracts
from pytest_ws_resilience.testing import vocabulary


def test_no_contracts_module_names_a_message_type_of_the_reference_server() -> None:
    package = Path(pytest_ws_resilience.contracts.__file__).parent
    words = {getattr(vocabulary, name) for name in vocabulary.__all__}
    message_types = {word for word in words if isinstance(word, str)}
    assert "agent_started" in message_types
    for path in sorted(package.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert [t for t in sorted(message_types) if f'"{t}"' in source] == [], path.name
