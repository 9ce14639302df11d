"""Shared helpers for the project's own tests."""

from __future__ import annotations

import functools
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from leftovers import register as register_leftover_check

#: ini lines every pytester project gets, so inner runs behave like a user's strict setup.
PYTESTER_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""


#: Settings of the whole worker process that some test's outcome depends on, each with
#: the call that puts it back. A test that changes one changes every later test in its
#: worker, so which test fails depends on which tests xdist gave that worker, and when.
_PROCESS_SETTINGS: dict[str, tuple[Callable[[], object], Callable[[Any], object]]] = {
    # On Python 3.11 it sets how deep JSON decodes. The import-graph test once raised it
    # for good, and CI saw the ping-edge test fail, far from the leak.
    "recursion limit": (sys.getrecursionlimit, sys.setrecursionlimit),
    # It sets which integers JSON decodes (`tests/json_depth.py:undecodable_integer`).
    "int/str digit limit": (sys.get_int_max_str_digits, sys.set_int_max_str_digits),
    "default socket timeout": (socket.getdefaulttimeout, socket.setdefaulttimeout),
    "working directory": (os.getcwd, os.chdir),
}


#: Releases of our dependencies that leak on their own, each with the first one that
#: does not. Below them, ResourceWarning (an error in pyproject.toml) is only shown: the
#: floor check (.ci/floor-check) runs at these releases, to test our code, not theirs.
_LEAKY_BELOW = {
    # A sync test that calls asyncio.run() after an async test: pytest-asyncio installs
    # a new event loop for the next test and never closes it (seen at 1.1 to 1.3).
    "pytest-asyncio": "1.4",
    # --benchmark-json's file is never closed (seen at 5.2.2).
    "pytest-benchmark": "5.3",
}


@functools.cache  # read once per process: configure and the header both ask
def _leaky_here() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    leaky = []
    for name, fixed in _LEAKY_BELOW.items():
        try:
            here = version(name)
        except PackageNotFoundError:
            continue
        if Version(here) < Version(fixed):
            leaky.append(f"{name} {here} (< {fixed})")
    return leaky


def pytest_configure(config: pytest.Config) -> None:
    register_leftover_check(config)  # after the last test, nothing the tests made is left
    if _leaky_here():
        config.addinivalue_line("filterwarnings", "default::ResourceWarning")  # last wins


def pytest_report_header(config: pytest.Config) -> list[str]:
    if leaky := _leaky_here():
        return [
            "ResourceWarning is shown, not an error: these releases leak on their own: "
            + ", ".join(leaky)
        ]
    return []


@pytest.fixture(autouse=True)
def _process_settings_kept() -> Iterator[None]:
    """Fail a test that leaves a process-wide setting changed, and put it back."""
    before = {name: get() for name, (get, _) in _PROCESS_SETTINGS.items()}
    yield
    changed = []
    for name, (get, put) in _PROCESS_SETTINGS.items():
        if (now := get()) != before[name]:
            put(before[name])
            changed.append(f"{name} {before[name]!r} -> {now!r}")
    if changed:
        pytest.fail("the test left process-wide settings changed: " + "; ".join(changed))


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
