"""``concurrent_safe`` scheduling under pytest-xdist, applied to pytest's items.

The rule itself is `pytest_ws_resilience.plugin.xdist_groups`; this module applies it.
No hooks here: the role objects call these steps, each from the hook and at the moment
that matters (`pytest_ws_resilience.plugin.session`):

- where tests are collected (an xdist worker, or a run with xdist loaded and ``-n 0``),
  `mark_groups` adds ``xdist_group(SERIAL_GROUP)`` to connection tests not marked
  ``concurrent_safe``, before xdist's worker reads the group markers in its own
  ``pytest_collection_modifyitems`` (it appends ``@group`` to each node id, which
  ``--dist loadgroup`` then splits). That worker plugin is registered after ours and
  pytest calls later plugins first, so the step runs before the ``yield`` of a
  ``wrapper=True`` hook: in a plain hook it would come too late and xdist would never
  see the marker (pytest-xdist #1241, #1253);
- on a ``--dist loadgroup`` worker, `repair_loadgroup_ids` (after that ``yield``, so
  after xdist's hook) checks that xdist's suffix took, and restores it where it did
  not: pytest 9.2's structured node ids ignore the field xdist 3.8 writes, so every
  group silently stops working (pytest-xdist #1386). Once xdist sets the suffix
  itself, it does nothing. A worker then counts what it did (`collected_tally`) and
  hands the tally to the controller;
- on the controller (which collects nothing), `RunScheduling` gives the report-header
  line saying what the ``--dist`` mode does with the group and, after the workers are
  done, one `WsSchedulingWarning` when the mode defeats it for tests that need it, and
  one naming unsafe tests that kept a group of their own.

Without pytest-xdist nothing here runs: every test runs one at a time anyway.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from pytest_ws_resilience.errors import WsSchedulingWarning
from pytest_ws_resilience.plugin.marker_walk import MarkerWalk
from pytest_ws_resilience.plugin.xdist_groups import (
    GroupPlacement,
    Schedule,
    SchedulingTally,
    decide,
    dist_warning,
    header_line,
    loadgroup_node_id,
    summary_line,
    tally_of,
    ungrouped_warning,
    user_group_names,
    user_group_warning,
)

__all__ = ["RunScheduling", "collected_tally", "mark_groups", "repair_loadgroup_ids"]

# Each test's placement with its node id as collected (xdist's loadgroup later adds
# "@group" to the node id; messages name the test as the user wrote it).
_PLACEMENT_KEY = pytest.StashKey[tuple[str, GroupPlacement]]()


def _user_groups(marks: Iterable[pytest.Mark]) -> tuple[str, ...]:
    """The names of the ``xdist_group`` markers among ``marks``."""
    return user_group_names((m.args, m.kwargs) for m in marks if m.name == "xdist_group")


def mark_groups(items: Sequence[pytest.Item]) -> None:
    """Place each test, and add the serial group's marker to those it serializes."""
    walk = MarkerWalk()
    for item in items:
        marks = walk.markers(item)  # the parents' read once for every item under them
        names = [mark.name for mark in marks]
        placement = decide(
            fixturenames=getattr(item, "fixturenames", ()),
            concurrent_safe="concurrent_safe" in names,
            markers=names,
            user_groups=_user_groups(marks),
        )
        if placement.schedule is Schedule.UNTOUCHED:
            continue  # most tests: nothing to count, nothing to add
        item.stash[_PLACEMENT_KEY] = (item.nodeid, placement)
        if placement.group is not None:
            item.add_marker(pytest.mark.xdist_group(placement.group))


def repair_loadgroup_ids(items: Sequence[pytest.Item]) -> int:
    """Give grouped tests xdist's loadgroup suffix where it did not take; the number of
    tests that could not get it."""
    ungrouped = 0
    for item in items:
        nodeid = loadgroup_node_id(item.nodeid, _user_groups(item.iter_markers("xdist_group")))
        if nodeid is not None and not _set_node_id(item, nodeid):
            ungrouped += 1
    return ungrouped


def _set_node_id(item: pytest.Item, nodeid: str) -> bool:
    """Give ``item`` the node id ``nodeid``; False when this pytest does not take it.

    pytest >= 9.2 keeps a structured ``_id`` (parsed back from the string); older ones
    a plain ``_nodeid``. Both are private, hence the check that it took.
    """
    structured = getattr(item, "_id", None)
    parse = getattr(type(structured), "parse", None)
    if structured is not None and callable(parse):
        setattr(item, "_id", parse(nodeid))  # noqa: B010 (a private attribute, on purpose)
    else:
        setattr(item, "_nodeid", nodeid)  # noqa: B010
    return item.nodeid == nodeid


def collected_tally(items: Sequence[pytest.Item], *, ungrouped_ids: int) -> SchedulingTally:
    """What the collection did, counted after ``-m``/``-k`` deselection and the plugin's
    skip markers: tests skipped outright (``ws_env``, ``websocket_security``) run
    nothing, so need no serializing either."""
    tally = tally_of(
        item.stash[_PLACEMENT_KEY]
        for item in items
        if _PLACEMENT_KEY in item.stash and item.get_closest_marker("skip") is None
    )
    tally.ungrouped_ids = ungrouped_ids
    return tally


class RunScheduling:
    """On the xdist controller: the header line, the workers' tallies, the warnings and
    the summary line."""

    def __init__(self, dist: str) -> None:
        self.dist = dist
        self.tally: SchedulingTally | None = None
        self.workers = 0
        # Warnings turned into errors by the user's filters.
        self.errors: list[str] = []

    def header_lines(self) -> list[str]:
        line = header_line(self.dist)
        return [line] if line else []

    def add_worker(self, data: dict[str, Any] | None) -> None:
        """A worker went down, with its tally (None: it crashed, or collected nothing)."""
        self.workers += 1
        if data is None:
            return
        tally = SchedulingTally.from_dict(data)
        if self.tally is None:
            self.tally = tally
        else:
            self.tally.merge(tally)

    def warn(self, session: pytest.Session) -> None:
        """Issue the run's scheduling warnings (from within ``pytest_sessionfinish``).

        Inside pytest's warning capture of sessionfinish: the warnings go to the
        warnings summary, and -W / filterwarnings apply to them.
        """
        if self.tally is None:
            return
        messages = [
            dist_warning(self.dist, self.tally),
            ungrouped_warning(self.tally) if self.dist == "loadgroup" else None,
            # Under a mode that ignores groups, the dist warning already says it all.
            user_group_warning(self.tally.user_group) if self.dist == "loadgroup" else None,
        ]
        for message in messages:
            if message is None:
                continue
            try:
                # Located at the plugin, not at a line of ours: no source line to show.
                warnings.warn_explicit(
                    WsSchedulingWarning(message),
                    category=None,
                    filename="pytest-ws-resilience",
                    lineno=0,
                )
            except WsSchedulingWarning as err:
                # -W error::...WsSchedulingWarning (e.g. in CI): a failed run and one
                # line, not a traceback from inside pytest.
                self.errors.append(str(err))
                if session.exitstatus == pytest.ExitCode.OK:
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def write_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The summary line, and the warnings the user's filters made errors."""
        if self.tally is None:
            return
        line = summary_line(self.dist, self.tally, self.workers)
        if line is not None:
            terminalreporter.write_line(line)
        for error in self.errors:
            terminalreporter.write_line(f"ERROR: WsSchedulingWarning: {error}", red=True)
