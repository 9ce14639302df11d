"""The plugin's markers through real pytest runs, plus the pure ``ws_env`` rule."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.plugin.markers import (
    CATEGORY_MARKERS,
    MARKERS,
    ws_env_names,
    ws_env_skip_reason,
)

PYTEST_TABLE = '[tool.pytest.ini_options]\nasyncio_default_fixture_loop_scope = "function"\n'

SPEC_MARKERS = {
    "concurrent_safe",
    "websocket_security",
    "ws_env",
    "ws_services",
    "websocket_unit",
    "websocket_integration",
    "websocket_resilience",
    "reconnection",
    "performance",
}


@pytest.fixture(autouse=True)
def _no_ws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_ENV", raising=False)


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml(PYTEST_TABLE)
    return pytester


# -- pure rules ------------------------------------------------------------------------


def test_every_spec_marker_has_a_registration_line() -> None:
    assert set(MARKERS) == SPEC_MARKERS
    for name, line in MARKERS.items():
        assert line.startswith((f"{name}:", f"{name}(")), line
    assert set(CATEGORY_MARKERS) <= SPEC_MARKERS


def test_skip_reason_names_allowed_envs_and_current() -> None:
    assert ws_env_skip_reason(("staging",), "staging") is None
    assert ws_env_skip_reason(("production", "staging"), "local") == (
        "runs only under --ws-env production, staging (current: local)"
    )


def test_ws_env_names_validates_arguments() -> None:
    assert ws_env_names(("staging", "production", "staging")) == ("staging", "production")
    with pytest.raises(ValueError, match=r"^test_x: the ws_env marker needs at least one env"):
        ws_env_names((), test="test_x")
    with pytest.raises(ValueError, match=r"must be env names \(strings\), got 3"):
        ws_env_names(("staging", 3))
    with pytest.raises(ValueError, match="got ''"):
        ws_env_names(("",))


# -- registration ----------------------------------------------------------------------


def test_every_marker_is_accepted_under_strict_markers(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_all="""
import pytest

@pytest.mark.concurrent_safe
@pytest.mark.websocket_security
@pytest.mark.ws_env("local")
@pytest.mark.ws_services("agent")
@pytest.mark.websocket_unit
@pytest.mark.websocket_integration
@pytest.mark.websocket_resilience
@pytest.mark.reconnection
@pytest.mark.performance
def test_marked():
    pass
"""
    )
    # --strict-markers rejects unknown markers at collection: collecting is the check
    # (running would need a service named "agent").
    result = inner.runpytest("--strict-markers", "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*1 test collected*"])


def test_markers_are_listed_with_help(inner: pytest.Pytester) -> None:
    result = inner.runpytest("--markers")
    result.stdout.fnmatch_lines_random([f"@pytest.mark.{line}" for line in MARKERS.values()])


def test_unregistered_marker_still_fails_strict_markers(inner: pytest.Pytester) -> None:
    """Control: the acceptance above is due to registration, not a lax run."""
    inner.makepyfile("import pytest\n\n@pytest.mark.ws_nonsense\ndef test_x():\n    pass\n")
    result = inner.runpytest("--strict-markers")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'ws_nonsense' not found in `markers` configuration option*"])


# -- ws_env ----------------------------------------------------------------------------

WS_ENV_TESTS = """
import pytest

from pytest_ws_resilience.plugin.stash import SETTINGS_KEY

@pytest.fixture
def must_not_start(pytestconfig):
    env = pytestconfig.stash[SETTINGS_KEY].env
    assert env in ("production", "staging"), "fixture set up for a test that must be skipped"

@pytest.mark.ws_env("production", "staging")
def test_remote_only(must_not_start):
    pass

@pytest.mark.ws_env("local")
def test_local_only():
    pass

def test_everywhere():
    pass

@pytest.mark.ws_env("staging")
class TestStaging:
    def test_one(self):
        pass

    @pytest.mark.ws_env("local")
    def test_closest_marker_wins(self):
        pass
"""


def test_ws_env_skips_functions_and_classes_with_reason(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_envs=WS_ENV_TESTS)
    result = inner.runpytest("-rs")
    result.assert_outcomes(passed=3, skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] test_envs.py*: runs only under --ws-env production, staging "
            "(current: local)",
            "SKIPPED [[]1[]] test_envs.py*: runs only under --ws-env staging (current: local)",
        ]
    )


def test_ws_env_runs_marked_tests_in_their_env(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_envs=WS_ENV_TESTS)
    result = inner.runpytest("-rs", "--ws-env=staging")
    result.assert_outcomes(passed=3, skipped=2)
    skipped = "SKIPPED [[]1[]] test_envs.py*: runs only under --ws-env local (current: staging)"
    result.stdout.fnmatch_lines([skipped, skipped])


def test_ws_env_on_a_module(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    inner.makepyfile(
        test_module="""
import pytest

pytestmark = pytest.mark.ws_env("production")

def test_a():
    pass

def test_b():
    pass
"""
    )
    inner.runpytest().assert_outcomes(skipped=2)
    monkeypatch.setenv("WS_ENV", "production")
    inner.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("ws_env", "test_bad: the ws_env marker needs at least one env name*"),
        ("ws_env()", "test_bad: the ws_env marker needs at least one env name*"),
        ('ws_env("staging", 3)', "test_bad: ws_env marker arguments must be env names*got 3"),
    ],
)
def test_malformed_ws_env_marker_is_a_collection_error(
    inner: pytest.Pytester, marker: str, message: str
) -> None:
    inner.makepyfile(
        test_bad_marker=f"import pytest\n\n@pytest.mark.{marker}\ndef test_bad():\n"
        "    pass\n\ndef test_fine():\n    pass\n"
    )
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_bad_marker.py*", message])
    assert "Traceback" not in result.stdout.str()


def test_malformed_ws_env_marker_on_a_class_is_a_collection_error(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(
        test_bad_class="""
import pytest

@pytest.mark.ws_env(None)
class TestBad:
    def test_method(self):
        pass
"""
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["test_method: ws_env marker arguments must be env names*None"])


# -- categories ------------------------------------------------------------------------

CATEGORY_TESTS = """
import pytest

@pytest.mark.websocket_unit
def test_unit():
    pass

@pytest.mark.websocket_integration
def test_integration():
    pass

@pytest.mark.websocket_resilience
@pytest.mark.reconnection
def test_reconnect_after_drop():
    pass

@pytest.mark.performance
def test_storm():
    pass
"""


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("websocket_unit", ["test_unit"]),
        ("websocket_integration", ["test_integration"]),
        ("websocket_resilience", ["test_reconnect_after_drop"]),
        ("reconnection", ["test_reconnect_after_drop"]),
        ("performance", ["test_storm"]),
        ("not performance", ["test_unit", "test_integration", "test_reconnect_after_drop"]),
    ],
)
def test_categories_are_selectable_with_m(
    inner: pytest.Pytester, expression: str, selected: list[str]
) -> None:
    inner.makepyfile(test_categories=CATEGORY_TESTS)
    result = inner.runpytest("--strict-markers", "-v", "-m", expression)
    result.assert_outcomes(passed=len(selected))
    for name in selected:
        result.stdout.fnmatch_lines([f"*::{name} PASSED*"])
