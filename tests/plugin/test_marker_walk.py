"""`MarkerWalk` gives every item the markers ``item.iter_markers()`` gives, in the same
order, while reading each parent's once per pass (real items, collected by pytester)."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.plugin.marker_walk import MarkerWalk

SUITE = """
import pytest

pytestmark = [pytest.mark.ws_env("staging"), pytest.mark.websocket_unit]


def test_plain():
    pass


@pytest.mark.ws_services("redis")
@pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.concurrent_safe)])
def test_params(n):
    pass


@pytest.mark.xdist_group("mine")
class TestGrouped:
    @pytest.mark.ws_env("local")
    def test_closest_env(self):
        pass

    def test_inherits(self):
        pass
"""


def collected(pytester: pytest.Pytester) -> list[pytest.Item]:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "asyncio_default_test_loop_scope = function\n"
    )
    pytester.makepyfile(test_suite=SUITE)
    items, _ = pytester.inline_genitems("-p", "no:ws_resilience")
    return items


def _marks(marks: object) -> list[tuple[str, tuple[object, ...]]]:
    return [(m.name, m.args) for m in marks]  # type: ignore[attr-defined]


def test_every_item_gets_iter_markers_order(pytester: pytest.Pytester) -> None:
    items = collected(pytester)
    assert len(items) == 5
    walk = MarkerWalk()
    for item in items:
        assert _marks(walk.markers(item)) == _marks(item.iter_markers()), item.nodeid
    # Closest first: the class's test sees its own ws_env before the module's.
    closest = next(i for i in items if i.name == "test_closest_env")
    envs = [m.args for m in walk.markers(closest) if m.name == "ws_env"]
    assert envs == [("local",), ("staging",)]


def test_each_parent_is_read_once_per_pass(pytester: pytest.Pytester) -> None:
    items = collected(pytester)
    walk = MarkerWalk()
    for item in items:
        walk.markers(item)
    parents = {item.parent for item in items}
    assert len(walk._inherited) == len(parents) == 2  # the module and the class
