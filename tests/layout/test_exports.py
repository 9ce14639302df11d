"""The public surface is pinned: a refactor cannot drop or add a name quietly.

As websockets' ``tests/test_exports.py``: the package root exports exactly these
names (SPEC section 4 and 5, plus the typed errors), each one resolves, lazily, to the
object its defining module holds, and the type checker's view (the ``TYPE_CHECKING``
imports) agrees with the lazy table.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_ws_resilience

EXPORTED = [
    "AGENT_EVENTS",
    "Attempt",
    "Backoff",
    "ChaosProxy",
    "ConnectionPool",
    "ContractResult",
    "ContractViolation",
    "ContractViolationError",
    "DifferentialResult",
    "EventContract",
    "IsolationDetector",
    "IsolationViolation",
    "IsolationViolationError",
    "MessageFault",
    "NothingChecked",
    "PoolStats",
    "RaceResult",
    "ResourceSample",
    "ResumeResult",
    "RsaKeyPair",
    "Scenario",
    "ScopeRule",
    "ServerGrowth",
    "ServerResourcesUnavailableError",
    "ServiceHandle",
    "ServiceSpec",
    "Signal",
    "Storm",
    "StormResult",
    "StormThresholdError",
    "StreamRule",
    "TestUser",
    "TimeoutValue",
    "TokenFactory",
    "Toxic",
    "WsAuthError",
    "WsChaosWarning",
    "WsClient",
    "WsConfigError",
    "WsConnectError",
    "WsConnectionClosedError",
    "WsHeartbeatWarning",
    "WsMessageTooLargeError",
    "WsNothingCheckedWarning",
    "WsPoolExhaustedError",
    "WsResilienceError",
    "WsIsolationWarning",
    "WsSchedulingWarning",
    "WsSettings",
    "WsTimeoutError",
    "FuzzExtraMissingError",
    "FuzzFailure",
    "FuzzFrame",
    "FuzzResult",
    "WsFuzzError",
    "frame_strategy",
    "DistributedResult",
    "WorkerShare",
    "LocustExtraMissingError",
    "LocustRunError",
]


def test_the_root_exports_exactly_the_documented_names() -> None:
    assert sorted(pytest_ws_resilience.__all__) == sorted(EXPORTED)
    assert sorted(pytest_ws_resilience._EXPORTS) == sorted(EXPORTED)


@pytest.mark.parametrize("name", EXPORTED)
def test_each_name_is_the_object_of_its_defining_module(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An in-process pytester run (tests/test_readme.py) puts sys.modules back as it was,
    # so a module it imported first is imported anew here while the package keeps what
    # it cached then: read the name afresh, through the lazy export (restored after).
    monkeypatch.delitem(vars(pytest_ws_resilience), name, raising=False)
    module = importlib.import_module(pytest_ws_resilience._EXPORTS[name])
    assert getattr(pytest_ws_resilience, name) is getattr(module, name)
    assert name in dir(pytest_ws_resilience)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'WsClinet'"):
        _ = pytest_ws_resilience.WsClinet  # type: ignore[attr-defined]


def test_the_type_checkers_imports_match_the_lazy_table() -> None:
    tree = ast.parse(Path(pytest_ws_resilience.__file__).read_text())
    seen: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                for alias in stmt.names:
                    seen[alias.name] = stmt.module
    assert seen == pytest_ws_resilience._EXPORTS


def test_every_error_class_is_defined_in_errors_py() -> None:
    errors = importlib.import_module("pytest_ws_resilience.errors")
    for name in EXPORTED:
        obj = getattr(pytest_ws_resilience, name)
        if isinstance(obj, type) and issubclass(obj, (Exception, Warning)):
            assert obj.__module__ == errors.__name__, name


def test_a_warning_filter_can_name_the_scheduling_warning_by_the_root() -> None:
    """``-W error::pytest_ws_resilience.WsSchedulingWarning`` resolves through the
    lazy table, as Python's warning filters import the module and read the name."""
    code = (
        "import warnings, pytest_ws_resilience as p\n"
        "warnings.simplefilter('error', p.WsSchedulingWarning)\n"
        "try:\n    warnings.warn(p.WsSchedulingWarning('x'))\n"
        "except p.WsSchedulingWarning:\n    print('raised')\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error::pytest_ws_resilience.WsSchedulingWarning", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == "raised"
