"""The scheduling rule under pytest-xdist: which tests run one at a time, which spread.

Pure policy, no pytest and no I/O: `decide` maps what a test uses (its fixture
closure), whether it is marked ``concurrent_safe`` and the ``xdist_group`` names the
user gave it to a `GroupPlacement` (which ``xdist_group`` the test is placed in, if
any, and why); `dist_problem` says whether an xdist ``--dist`` mode honours the group
at all; the rest builds the one-line messages the pytest glue
(`pytest_ws_resilience.plugin.scheduling`) shows.

The rule:

- a test whose fixture closure holds none of `CONNECTION_FIXTURES`, and that carries
  none of `CONNECTION_MARKERS`, is left alone;
- a connection test marked ``concurrent_safe`` gets no group, so xdist spreads it;
- any other connection test joins `SERIAL_GROUP`, one ``xdist_group`` that
  ``--dist loadgroup`` sends to a single worker, so those tests never overlap;
- unless the user gave it an ``xdist_group`` of their own: that one is kept (it may
  stand for a constraint we cannot see) and the test is reported, as it is then not
  serialized with the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CONNECTION_FIXTURES",
    "CONNECTION_MARKERS",
    "RECOMMENDED_ADDOPTS",
    "SERIAL_GROUP",
    "GroupPlacement",
    "Schedule",
    "SchedulingTally",
    "decide",
    "dist_problem",
    "dist_warning",
    "header_line",
    "loadgroup_node_id",
    "summary_line",
    "tally_of",
    "ungrouped_warning",
    "user_group_names",
    "user_group_warning",
]

#: The ``xdist_group`` that holds every connection test not marked ``concurrent_safe``.
SERIAL_GROUP = "ws_resilience_serial"

#: Fixtures that open (or drive) connections to the server under test. A test whose
#: fixture closure (``item.fixturenames``, so also through the user's own fixtures)
#: holds one of them "uses the plugin's connections". ``ws_server``, ``ws_user`` and
#: ``ws_tokens`` alone do not: they open nothing.
CONNECTION_FIXTURES: frozenset[str] = frozenset(
    {
        "ws_client",
        "ws_client_factory",
        "ws_pool",
        "ws_chaos",
        "ws_storm",
        "ws_benchmark",
        "ws_services",
        "ws_service_factory",
    }
)

#: Markers that make a test a connection test whatever its fixtures: ``ws_services``
#: starts (or reuses) its services through ``ws_services`` at run time, which the
#: static fixture closure does not show.
CONNECTION_MARKERS: frozenset[str] = frozenset({"ws_services"})

#: What the messages recommend: xdist's only mode that honours ``xdist_group``.
RECOMMENDED_ADDOPTS = 'addopts = "-n auto --dist loadgroup"'

# Why each xdist --dist mode defeats the serial group; loadgroup (and "no": not
# distributed) are absent because they do not. Read from xdist 3.8: only
# LoadGroupScheduling splits the "@group" suffix that workers add to node ids, and
# workers add it only under --dist loadgroup.
_DIST_PROBLEMS: Mapping[str, str] = {
    "load": "sends any test to any free worker and ignores xdist_group (it is what -n alone means)",
    "worksteal": "moves tests between workers and has no xdist_group support",
    "loadscope": "groups tests by module or class and ignores xdist_group",
    "loadfile": "groups tests by file and ignores xdist_group",
    "each": "runs every test on every worker at once",
}

# How many test names a message lists before "and N more".
_NAMES_SHOWN = 10


class Schedule(StrEnum):
    """What the rule does with one test."""

    #: Uses none of the plugin's connections: xdist schedules it as it likes.
    UNTOUCHED = "untouched"
    #: A connection test marked ``concurrent_safe``: no group, spread over workers.
    CONCURRENT = "concurrent"
    #: A connection test without ``concurrent_safe``: added to `SERIAL_GROUP`.
    SERIALIZED = "serialized"
    #: A connection test without ``concurrent_safe`` that keeps the user's group.
    USER_GROUP = "user_group"


@dataclass(frozen=True)
class GroupPlacement:
    """The rule's answer for one test: the ``xdist_group`` it is placed in, and why.

    Attributes:
        schedule: what happens to the test.
        group: the ``xdist_group`` to add (`SERIAL_GROUP` when serialized), else None.
        connection_fixtures: the `CONNECTION_FIXTURES` (and `CONNECTION_MARKERS`) the
            test uses, sorted.
        user_groups: the test's own ``xdist_group`` names, as given.
    """

    schedule: Schedule
    group: str | None = None
    connection_fixtures: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()


_UNTOUCHED = GroupPlacement(Schedule.UNTOUCHED)


def decide(
    *,
    fixturenames: Iterable[str],
    concurrent_safe: bool,
    user_groups: Sequence[str] = (),
    markers: Iterable[str] = (),
) -> GroupPlacement:
    """Apply the rule to one test.

    Args:
        fixturenames: the test's fixture closure (``item.fixturenames``).
        concurrent_safe: whether the test carries the ``concurrent_safe`` marker.
        user_groups: names of the ``xdist_group`` markers it already has (see
            `user_group_names`).
        markers: names of the test's markers (`CONNECTION_MARKERS` count as use).
    """
    fixtures = CONNECTION_FIXTURES.intersection(fixturenames)
    marked = CONNECTION_MARKERS.intersection(markers)
    groups = tuple(user_groups)
    if not fixtures and not marked:  # most tests, at every collection
        return GroupPlacement(Schedule.UNTOUCHED, user_groups=groups) if groups else _UNTOUCHED
    used = tuple(sorted(fixtures | marked))
    if concurrent_safe:
        return GroupPlacement(Schedule.CONCURRENT, connection_fixtures=used, user_groups=groups)
    if groups:
        return GroupPlacement(Schedule.USER_GROUP, connection_fixtures=used, user_groups=groups)
    return GroupPlacement(Schedule.SERIALIZED, group=SERIAL_GROUP, connection_fixtures=used)


def user_group_names(marks: Iterable[tuple[Sequence[Any], Mapping[str, Any]]]) -> tuple[str, ...]:
    """The group names of ``xdist_group`` markers given as (args, kwargs) pairs.

    Read as xdist reads them: the first positional argument, else ``name=``, else
    ``"default"``; repeated names once, in order.
    """
    names: list[str] = []
    for args, kwargs in marks:
        name = str(args[0] if args else kwargs.get("name", "default"))
        if name not in names:
            names.append(name)
    return tuple(names)


@dataclass
class SchedulingTally:
    """What one collection did, counted; sent from xdist workers to the controller.

    Attributes:
        serialized: tests added to `SERIAL_GROUP`.
        concurrent: connection tests marked ``concurrent_safe``.
        user_group: node ids of unsafe connection tests that kept their own group, each
            with its group names (``"path::test (group 'db')"``).
        ungrouped_ids: tests whose node id could not be given its loadgroup suffix, so
            ``--dist loadgroup`` cannot keep them together.
    """

    serialized: int = 0
    concurrent: int = 0
    user_group: list[str] = field(default_factory=list)
    ungrouped_ids: int = 0

    def add(self, nodeid: str, placement: GroupPlacement) -> None:
        """Count one selected test."""
        if placement.schedule is Schedule.SERIALIZED:
            self.serialized += 1
        elif placement.schedule is Schedule.CONCURRENT:
            self.concurrent += 1
        elif placement.schedule is Schedule.USER_GROUP:
            groups = ", ".join(repr(name) for name in placement.user_groups)
            self.user_group.append(f"{nodeid} (group {groups})")

    @property
    def unsafe(self) -> int:
        """Connection tests without ``concurrent_safe``, serialized or not."""
        return self.serialized + len(self.user_group)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for xdist's ``workeroutput`` (sent over execnet)."""
        return {
            "serialized": self.serialized,
            "concurrent": self.concurrent,
            "user_group": list(self.user_group),
            "ungrouped_ids": self.ungrouped_ids,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchedulingTally:
        return cls(
            serialized=int(data.get("serialized", 0)),
            concurrent=int(data.get("concurrent", 0)),
            user_group=[str(name) for name in data.get("user_group", ())],
            ungrouped_ids=int(data.get("ungrouped_ids", 0)),
        )

    def merge(self, other: SchedulingTally) -> None:
        """Fold in another worker's tally. Every worker collects the same tests, so
        counts take the maximum (not the sum) and names are united."""
        self.serialized = max(self.serialized, other.serialized)
        self.concurrent = max(self.concurrent, other.concurrent)
        self.user_group.extend(name for name in other.user_group if name not in self.user_group)
        self.ungrouped_ids = max(self.ungrouped_ids, other.ungrouped_ids)


def loadgroup_node_id(nodeid: str, groups: Iterable[str]) -> str | None:
    """The node id xdist's loadgroup mode gives a test in ``groups``, when ``nodeid``
    does not carry it yet; None when it does, or there are no groups.

    Workers of ``--dist loadgroup`` append ``@`` and the sorted group names joined by
    ``_`` to the node id, and the controller's scheduler keeps tests with the same
    suffix on one worker. pytest 9.2 made node ids structured and xdist 3.8's suffix
    no longer takes (pytest-xdist #1386): this is the id to restore.
    """
    names = sorted(set(groups))
    if not names:
        return None
    suffix = f"@{'_'.join(names)}"
    if nodeid.endswith(suffix):
        return None  # xdist did it
    return nodeid + suffix


def dist_problem(dist: str) -> str | None:
    """Why ``--dist <dist>`` defeats the serial group; None when it does not.

    ``loadgroup`` honours it; ``no`` (not distributed) runs every test in one process,
    one at a time. A mode unknown to us is treated as not honouring groups.
    """
    if dist in ("loadgroup", "no"):
        return None
    return _DIST_PROBLEMS.get(dist, "is not known to honour xdist_group")


def _tests(count: int) -> str:
    return f"{count} test{'s' if count != 1 else ''}"


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return f"{shown}, and {more} more" if more > 0 else shown


def dist_warning(dist: str, tally: SchedulingTally) -> str | None:
    """The controller's warning when ``--dist`` defeats serialization of tests that
    need it; None when the mode is fine or no test needs it (no noise for a suite
    marked ``concurrent_safe`` throughout)."""
    problem = dist_problem(dist)
    if problem is None or tally.unsafe == 0:
        return None
    return (
        f"--dist {dist} {problem}, so {_tests(tally.unsafe)} using WebSocket connections "
        f"without @pytest.mark.concurrent_safe may run at the same time on different "
        f"workers. Run with --dist loadgroup ({RECOMMENDED_ADDOPTS} under "
        f"[tool.pytest.ini_options]) to serialize them, or mark the tests that may "
        f"overlap concurrent_safe."
    )


def user_group_warning(names: Sequence[str]) -> str | None:
    """The warning naming unsafe connection tests that kept their own ``xdist_group``
    (so they may overlap with `SERIAL_GROUP`); None when there are none."""
    if not names:
        return None
    return (
        f"Tests using WebSocket connections without @pytest.mark.concurrent_safe keep "
        f"their own xdist_group, so they are not "
        f"serialized with the others (xdist_group {SERIAL_GROUP}) and may overlap them: "
        f"{_listed(names)}. Mark them concurrent_safe if that is fine, or drop their "
        f"xdist_group."
    )


def ungrouped_warning(tally: SchedulingTally) -> str | None:
    """The warning when workers could not give node ids their loadgroup suffix (a
    pytest / pytest-xdist pair where ``xdist_group`` silently has no effect)."""
    if tally.ungrouped_ids == 0:
        return None
    return (
        f"xdist_group has no effect with this pytest and pytest-xdist: "
        f"{_tests(tally.ungrouped_ids)} in a group could not be kept on one worker "
        f"(pytest-xdist #1386), so connection tests without concurrent_safe may overlap. "
        f"Upgrade pytest-xdist, or run with -n 0."
    )


def header_line(dist: str) -> str | None:
    """The report-header line of a distributed run (None when not distributed)."""
    if dist == "no":
        return None
    problem = dist_problem(dist)
    if problem is None:
        return (
            f"ws-resilience scheduling: --dist {dist}: connection tests without "
            f"concurrent_safe run one at a time (xdist_group {SERIAL_GROUP}), "
            f"concurrent_safe ones on all workers"
        )
    return (
        f"ws-resilience scheduling: --dist {dist} {problem}: connection tests are NOT "
        f"serialized (use --dist loadgroup)"
    )


def summary_line(dist: str, tally: SchedulingTally, workers: int) -> str | None:
    """The terminal-summary line of a distributed run; None without connection tests."""
    if tally.unsafe == 0 and tally.concurrent == 0:
        return None
    spread = f"{tally.concurrent} concurrent_safe spread over {workers} workers"
    if dist_problem(dist) is not None:
        return (
            f"ws-resilience scheduling: {tally.unsafe} connection tests without "
            f"concurrent_safe NOT serialized (--dist {dist}), {spread}"
        )
    kept = f", {len(tally.user_group)} in their own xdist_group" if tally.user_group else ""
    return (
        f"ws-resilience scheduling: {tally.serialized} connection tests serialized "
        f"(xdist_group {SERIAL_GROUP}){kept}, {spread}"
    )


def tally_of(placements: Iterable[tuple[str, GroupPlacement]]) -> SchedulingTally:
    """Count (nodeid, placement) pairs."""
    tally = SchedulingTally()
    for nodeid, placement in placements:
        tally.add(nodeid, placement)
    return tally
