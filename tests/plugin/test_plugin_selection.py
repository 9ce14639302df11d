"""Selecting and skipping tests, as users combine it: categories with ``-m`` beyond
single markers (tests/test_plugin_markers.py has those), and the plugin's skip reasons
as shown under pytest-xdist, where skips happen in workers and reasons reach the
controller."""

from __future__ import annotations

import pytest

CATEGORIES = """
import pytest

pytestmark = pytest.mark.websocket_integration


def test_module_level():
    pass


@pytest.mark.websocket_resilience
class TestRecovery:
    @pytest.mark.reconnection
    def test_resume_after_drop(self):
        pass

    def test_server_restart(self):
        pass


@pytest.mark.parametrize(
    "users",
    [
        1,
        pytest.param(50, marks=pytest.mark.performance),
        pytest.param(2, marks=pytest.mark.websocket_unit),
    ],
)
def test_users(users):
    pass
"""


@pytest.fixture
def categories(ws_pytester: pytest.Pytester) -> pytest.Pytester:
    ws_pytester.makepyfile(test_categories=CATEGORIES)
    return ws_pytester


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        # A module's pytestmark reaches every test in it.
        (
            "websocket_integration",
            [
                "test_module_level",
                "TestRecovery::test_resume_after_drop",
                "TestRecovery::test_server_restart",
                "test_users[1]",
                "test_users[50]",
                "test_users[2]",
            ],
        ),
        # A class marker reaches its methods; markers combine with and / or / not.
        ("websocket_resilience and not reconnection", ["TestRecovery::test_server_restart"]),
        ("websocket_resilience and reconnection", ["TestRecovery::test_resume_after_drop"]),
        # A marker on one parameter selects that case only.
        ("performance or websocket_unit", ["test_users[50]", "test_users[2]"]),
        (
            "websocket_integration and not (performance or websocket_resilience)",
            ["test_module_level", "test_users[1]", "test_users[2]"],
        ),
    ],
)
def test_category_expressions_select_through_modules_classes_and_params(
    categories: pytest.Pytester, expression: str, selected: list[str]
) -> None:
    result = categories.runpytest("-p", "ws_resilience", "--strict-markers", "-v", "-m", expression)
    result.assert_outcomes(passed=len(selected), deselected=6 - len(selected))
    escaped = [name.replace("[", "[[]") for name in selected]
    result.stdout.fnmatch_lines_random([f"*test_categories.py::{name} PASSED*" for name in escaped])


SKIPPED_UNDER_XDIST = """
import pytest


@pytest.mark.ws_env("staging")
@pytest.mark.asyncio
async def test_staging_only(ws_client):
    raise AssertionError("must not run")


@pytest.mark.websocket_security
@pytest.mark.asyncio
async def test_needs_auth(ws_client):
    raise AssertionError("must not run")


def test_runs():
    pass
"""


def test_skip_reasons_reach_the_controller_under_xdist(ws_pytester: pytest.Pytester) -> None:
    """Against an external server without auth, on a port where nothing listens: a
    skipped test that started ws_client would error, not skip."""
    pytest.importorskip("xdist")
    ws_pytester.makepyfile(test_skips=SKIPPED_UNDER_XDIST)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", "-n", "2", "-rs", "--ws-url=ws://127.0.0.1:9/"
    )
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] test_skips.py:*: runs only under --ws-env staging (current: local)",
            "SKIPPED [[]1[]] test_skips.py:*: websocket_security needs authentication: "
            "set jwt_secret_env (HS256) or jwt_private_key_env (RS256)*",
        ]
    )
    # Skipped connection tests run nothing, so they need no serializing: no warning
    # although -n 2 alone means --dist load.
    assert "WsSchedulingWarning" not in result.stdout.str()


SELECTED_UNDER_XDIST = """
import pytest


@pytest.mark.performance
@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_storm(ws_client, n):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")


@pytest.mark.websocket_unit
@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(5))
async def test_unit(ws_client, n):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
"""


def test_m_selection_under_xdist_counts_only_the_selected(ws_pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    ws_pytester.makepyfile(test_selected=SELECTED_UNDER_XDIST)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", "-n", "2", "--dist", "loadgroup", "-m", "performance"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "ws-resilience scheduling: 3 connection tests serialized "
            "(xdist_group ws_resilience_serial), 0 concurrent_safe spread over 2 workers"
        ]
    )
