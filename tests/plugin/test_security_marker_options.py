"""The ``websocket_security`` marker's arguments (`plugin.markers.security_marker_options`):
the closest marker wins, a bad argument is one line naming the test; pure."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.plugin.markers import (
    MARKERS,
    security_marker_options,
    security_nothing_checked,
)


def test_a_bare_marker_has_default_options() -> None:
    options = security_marker_options([((), {})], test="test_x")
    assert options.taint is None and options.allow == ()


def test_the_closest_marker_wins() -> None:
    module, function = ((), {"taint": False, "allow": ["a"]}), ((), {"taint": True})
    options = security_marker_options([module, function], test="test_x")
    assert options.taint is True and options.allow == ("a",)


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ([(("strict",), {})], "test_x: websocket_security takes options by name only"),
        ([((), {"tanit": False})], "test_x: websocket_security marker: unknown isolation"),
        ([((), {"taint": "off"})], "test_x: websocket_security marker: taint must be True"),
    ],
)
def test_bad_arguments_name_the_test_and_the_argument(
    marks: list[tuple[tuple[object, ...], dict[str, object]]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        security_marker_options(marks, test="test_x")


def test_the_registered_help_lists_the_options() -> None:
    assert (
        "websocket_security(taint=True, identity=True, allow=[...]" in MARKERS["websocket_security"]
    )


def test_a_security_test_that_checked_frames_or_was_refused_is_quiet() -> None:
    assert security_nothing_checked("t", checks=3, clients=2, connected=2) is None
    assert security_nothing_checked("t", checks=0, clients=2, connected=0) is None


def test_a_security_test_that_checked_nothing_says_why() -> None:
    no_client = security_nothing_checked("test_x", checks=0, clients=0, connected=0)
    assert no_client is not None
    assert no_client.startswith("test_x: the isolation detector: nothing was checked: ")
    assert "a WsClient made by hand is not watched" in no_client
    silent = security_nothing_checked("test_x", checks=0, clients=1, connected=1)
    assert silent is not None and "its 1 connection(s) received no frame" in silent
    blind = security_nothing_checked(
        "test_x", checks=4, clients=2, connected=2, nothing_to_look_for="no marker"
    )
    assert (
        blind
        == "test_x: the isolation detector: nothing was checked: 4 frame(s) scanned, but no marker"
    )
