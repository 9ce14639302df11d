"""A conftest for pytester suites that writes each test's storm results (what its
`TestWatch` keeps for the reports) to a JSON-lines file the outer test reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

__all__ = ["read_storms", "record_storms"]

_CONFTEST = """
import json
import pytest
from pytest_ws_resilience.plugin.watch import test_watch

@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    with open({path!r}, "a") as fh:
        fh.write(json.dumps({{"test": item.name, "storms": test_watch(item).storms}}) + "\\n")
"""


def record_storms(pytester: pytest.Pytester, path: Path) -> None:
    """Make the inner suite write its storms to ``path``, one line per test."""
    pytester.makeconftest(_CONFTEST.format(path=str(path)))


def read_storms(path: Path) -> list[dict[str, Any]]:
    """The lines `record_storms` wrote: ``{"test": name, "storms": [...]}`` each."""
    return [json.loads(line) for line in path.read_text().splitlines()]
