"""The options of a test's isolation check (`isolation.options`): one reading for
``ws_isolation.configure`` and ``websocket_security`` arguments; pure."""

from __future__ import annotations

import re

import pytest

from pytest_ws_resilience.isolation.options import (
    ISOLATION_OPTIONS,
    IsolationOptions,
    read_isolation_options,
)


def test_no_options_leave_everything_as_it_is() -> None:
    assert read_isolation_options({}) == IsolationOptions()


def test_options_are_read_into_their_kinds() -> None:
    options = read_isolation_options(
        {
            "taint": False,
            "identity": True,
            "allow": "lobby",
            "allow_patterns": [r"room-\d+", re.compile("t-.*")],
            "markers": {"user-1": "zebra-project", "user-2": ["a-marker", "b-marker"]},
            "taint_min_length": 12,
            "untainted_keys": ["room"],
        }
    )
    assert options.taint is False and options.identity is True
    assert options.allow == ("lobby",)  # a lone string is one value
    assert [p.pattern for p in options.allow_patterns] == [r"room-\d+", "t-.*"]
    assert options.markers == (
        ("user-1", "zebra-project"),
        ("user-2", "a-marker"),
        ("user-2", "b-marker"),
    )
    assert options.taint_min_length == 12
    assert options.untainted_keys == frozenset({"room"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tanit": False}, "unknown isolation option 'tanit' \\(known: taint, identity"),
        ({"identity": 1}, "identity must be True or False, got 1"),
        ({"allow": {"a": 1}}, "allow must be a list of strings"),
        ({"allow_patterns": ["("]}, "allow_patterns: '\\(' is not a valid regex"),
        ({"allow_patterns": [re.compile(b"x")]}, "allow_patterns must be a list of regular"),
        ({"markers": {3: "x"}}, "markers keys must be users"),
        ({"taint_min_length": True}, "taint_min_length must be an int >= 1"),
        ({"untainted_keys": [""]}, "untainted_keys must be a list of key names"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        read_isolation_options(options)
    assert "\n" not in str(caught.value)


def test_every_option_is_documented_for_errors() -> None:
    assert set(ISOLATION_OPTIONS) == {
        "taint",
        "identity",
        "allow",
        "allow_patterns",
        "markers",
        "taint_min_length",
        "untainted_keys",
    }
