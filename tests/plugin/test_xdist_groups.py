"""The scheduling rule (pure): which tests are serialized, which spread, what is said."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.plugin.xdist_groups import (
    CONNECTION_FIXTURES,
    CONNECTION_MARKERS,
    RECOMMENDED_ADDOPTS,
    SERIAL_GROUP,
    GroupPlacement,
    Schedule,
    SchedulingTally,
    decide,
    dist_problem,
    dist_warning,
    header_line,
    loadgroup_node_id,
    summary_line,
    tally_of,
    ungrouped_warning,
    user_group_names,
    user_group_warning,
)

# -- decide ----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(CONNECTION_FIXTURES))
def test_every_connection_fixture_serializes_an_unmarked_test(fixture: str) -> None:
    placement = decide(fixturenames=["request", fixture], concurrent_safe=False)
    assert placement == GroupPlacement(
        Schedule.SERIALIZED, group=SERIAL_GROUP, connection_fixtures=(fixture,)
    )


def test_connection_fixtures_are_the_documented_ones() -> None:
    assert {
        "ws_client",
        "ws_client_factory",
        "ws_pool",
        "ws_chaos",
        "ws_storm",
        "ws_benchmark",
        "ws_services",
        "ws_service_factory",
    } == CONNECTION_FIXTURES


def test_a_ws_services_marker_makes_a_connection_test() -> None:
    """Services named by the marker start at run time, outside the fixture closure."""
    assert CONNECTION_MARKERS == {"ws_services"}
    placement = decide(fixturenames=["request"], concurrent_safe=False, markers=["ws_services"])
    assert placement == GroupPlacement(
        Schedule.SERIALIZED, group=SERIAL_GROUP, connection_fixtures=("ws_services",)
    )
    other = decide(fixturenames=["request"], concurrent_safe=False, markers=["performance"])
    assert other.schedule is Schedule.UNTOUCHED


@pytest.mark.parametrize(
    "fixtures", [[], ["tmp_path"], ["ws_server", "ws_user", "ws_tokens", "ws_settings"]]
)
def test_a_test_without_connections_is_left_alone(fixtures: list[str]) -> None:
    placement = decide(fixturenames=fixtures, concurrent_safe=False, user_groups=["db"])
    assert placement.schedule is Schedule.UNTOUCHED
    assert placement.group is None
    assert placement.user_groups == ("db",)


def test_concurrent_safe_connection_test_gets_no_group() -> None:
    placement = decide(fixturenames=["ws_pool", "ws_client"], concurrent_safe=True)
    assert placement == GroupPlacement(
        Schedule.CONCURRENT, connection_fixtures=("ws_client", "ws_pool")
    )


def test_concurrent_safe_wins_over_a_user_group() -> None:
    placement = decide(fixturenames=["ws_client"], concurrent_safe=True, user_groups=["db"])
    assert placement.schedule is Schedule.CONCURRENT
    assert placement.group is None


def test_a_user_group_on_an_unsafe_test_is_kept_not_overwritten() -> None:
    placement = decide(fixturenames=["ws_chaos"], concurrent_safe=False, user_groups=["db"])
    assert placement == GroupPlacement(
        Schedule.USER_GROUP, group=None, connection_fixtures=("ws_chaos",), user_groups=("db",)
    )


def test_fixture_closure_is_any_iterable() -> None:
    closure = (name for name in ("event_loop_policy", "ws_client_factory"))
    assert decide(fixturenames=closure, concurrent_safe=False).group == SERIAL_GROUP


# -- user groups, as xdist reads them --------------------------------------------------


def test_user_group_names_read_like_xdist() -> None:
    marks = [(("db",), {}), ((), {"name": "cache"}), ((), {}), (("db",), {}), ((3,), {})]
    assert user_group_names(marks) == ("db", "cache", "default", "3")
    assert user_group_names([]) == ()


# -- loadgroup node ids ----------------------------------------------------------------


def test_loadgroup_node_id_appends_sorted_joined_groups() -> None:
    assert loadgroup_node_id("t.py::test_a", ["b", "a", "b"]) == "t.py::test_a@a_b"
    assert loadgroup_node_id("t.py::test_p[x@y]", ["g"]) == "t.py::test_p[x@y]@g"


def test_loadgroup_node_id_none_without_groups_or_when_already_suffixed() -> None:
    assert loadgroup_node_id("t.py::test_a", []) is None
    assert loadgroup_node_id("t.py::test_a@a_b", ["a", "b"]) is None


# -- dist modes ------------------------------------------------------------------------


@pytest.mark.parametrize("dist", ["loadgroup", "no"])
def test_modes_that_keep_tests_apart_have_no_problem(dist: str) -> None:
    assert dist_problem(dist) is None


@pytest.mark.parametrize(
    ("dist", "why"),
    [
        ("load", "ignores xdist_group (it is what -n alone means)"),
        ("worksteal", "has no xdist_group support"),
        ("loadscope", "ignores xdist_group"),
        ("loadfile", "ignores xdist_group"),
        ("each", "every test on every worker"),
        ("futuremode", "is not known to honour xdist_group"),
    ],
)
def test_modes_that_defeat_the_group_say_why(dist: str, why: str) -> None:
    problem = dist_problem(dist)
    assert problem is not None
    assert why in problem


def test_dist_warning_names_mode_count_and_fix() -> None:
    message = dist_warning("load", SchedulingTally(serialized=7, user_group=["t::x (group 'a')"]))
    assert message is not None
    assert message.startswith("--dist load sends any test to any free worker")
    assert "8 tests using WebSocket connections without @pytest.mark.concurrent_safe" in message
    assert "--dist loadgroup" in message
    assert RECOMMENDED_ADDOPTS in message
    assert "\n" not in message


def test_dist_warning_is_silent_when_nothing_needs_serializing() -> None:
    """No noise for a suite marked concurrent_safe throughout."""
    assert dist_warning("load", SchedulingTally(concurrent=40)) is None
    assert dist_warning("loadgroup", SchedulingTally(serialized=3)) is None


def test_dist_warning_singular() -> None:
    message = dist_warning("worksteal", SchedulingTally(serialized=1))
    assert message is not None
    assert "so 1 test using" in message


# -- user-group and ungrouped warnings --------------------------------------------------


def test_user_group_warning_names_each_test_and_group() -> None:
    message = user_group_warning(["t.py::test_a (group 'db')", "t.py::test_b (group 'x', 'y')"])
    assert message is not None
    assert "t.py::test_a (group 'db'), t.py::test_b (group 'x', 'y')" in message
    assert SERIAL_GROUP in message
    assert "concurrent_safe" in message
    assert user_group_warning([]) is None


def test_user_group_warning_caps_the_list() -> None:
    names = [f"t.py::test_{n} (group 'g')" for n in range(25)]
    message = user_group_warning(names)
    assert message is not None
    assert "t.py::test_9 (group 'g'), and 15 more" in message
    assert "test_10 " not in message


def test_ungrouped_warning_points_at_the_upstream_issue() -> None:
    assert ungrouped_warning(SchedulingTally(serialized=3)) is None
    message = ungrouped_warning(SchedulingTally(serialized=3, ungrouped_ids=4))
    assert message is not None
    assert "4 tests in a group" in message
    assert "#1386" in message


# -- tally -----------------------------------------------------------------------------


def test_tally_counts_decisions() -> None:
    tally = tally_of(
        [
            ("a", decide(fixturenames=["ws_client"], concurrent_safe=False)),
            ("b", decide(fixturenames=["ws_client"], concurrent_safe=False)),
            ("c", decide(fixturenames=["ws_pool"], concurrent_safe=True)),
            ("d", decide(fixturenames=["tmp_path"], concurrent_safe=False)),
            ("e", decide(fixturenames=["ws_chaos"], concurrent_safe=False, user_groups=["x"])),
        ]
    )
    assert tally == SchedulingTally(serialized=2, concurrent=1, user_group=["e (group 'x')"])
    assert tally.unsafe == 3


def test_tally_round_trips_through_plain_data_and_merges() -> None:
    first = SchedulingTally(serialized=2, concurrent=5, user_group=["a (group 'x')"])
    data = first.as_dict()
    assert SchedulingTally.from_dict(data) == first
    assert SchedulingTally.from_dict({}) == SchedulingTally()
    # Every worker collects the same tests: a merge takes maxima and unites names.
    first.merge(SchedulingTally(serialized=2, concurrent=5, user_group=["a (group 'x')"]))
    first.merge(SchedulingTally(serialized=1, ungrouped_ids=3, user_group=["b (group 'y')"]))
    assert first == SchedulingTally(
        serialized=2, concurrent=5, user_group=["a (group 'x')", "b (group 'y')"], ungrouped_ids=3
    )


# -- header and summary ----------------------------------------------------------------


def test_header_line() -> None:
    assert header_line("no") is None
    good = header_line("loadgroup")
    assert good is not None
    assert "one at a time" in good
    assert SERIAL_GROUP in good
    bad = header_line("load")
    assert bad is not None
    assert "NOT serialized (use --dist loadgroup)" in bad


def test_summary_line() -> None:
    assert summary_line("loadgroup", SchedulingTally(), 2) is None
    assert summary_line("loadgroup", SchedulingTally(serialized=8, concurrent=3), 2) == (
        "ws-resilience scheduling: 8 connection tests serialized (xdist_group "
        "ws_resilience_serial), 3 concurrent_safe spread over 2 workers"
    )
    kept = summary_line("loadgroup", SchedulingTally(serialized=1, user_group=["a"]), 2)
    assert kept is not None
    assert "1 in their own xdist_group" in kept
    bad = summary_line("load", SchedulingTally(serialized=8), 2)
    assert bad is not None
    assert "8 connection tests without concurrent_safe NOT serialized (--dist load)" in bad
