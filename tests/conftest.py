"""Shared helpers for the project's own tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

#: ini lines every pytester project gets, so inner runs behave like a user's strict setup.
PYTESTER_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""


@pytest.fixture(autouse=True)
def _recursion_limit_kept() -> Iterator[None]:
    """Fail a test that leaves the interpreter's recursion limit changed.

    The limit is the worker's, not the test's: on Python 3.11 it sets how deep JSON
    decodes, so a test that raised it and never put it back changed what every later
    test in its worker saw (it failed CI once, far from the test that leaked it).
    """
    before = sys.getrecursionlimit()
    yield
    after = sys.getrecursionlimit()
    if after != before:
        sys.setrecursionlimit(before)
        pytest.fail(f"the test left the recursion limit at {after:,} (it was {before:,})")


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's ``pytester``, its inner runs in file order even where pytest-randomly is
    installed (its plugin loads itself into every run): many inner suites check, in a
    later test, what an earlier one left (a stopped proxy, a failed app's one report).
    Pytester has just removed the outer run's ``PYTEST_ADDOPTS``; this is the inner's."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester


@pytest.fixture
def ws_pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project configured like a user's strict-mode suite.

    The inner run is a top-level run even when this suite runs under xdist: without the
    worker's variables, plugins that read them (pytest-benchmark) see no xdist. It is a
    developer's run even in CI: ``CI`` and ``WS_FUZZ_PROFILE`` choose ``ws_fuzz``'s budget,
    so an inner run that checks the default profile must not see this run's.
    """
    for name in (
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_XDIST_TESTRUNUID",
        "CI",
        "WS_FUZZ_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(PYTESTER_INI)
    return pytester
