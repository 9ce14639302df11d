"""pytest glue of ``concurrent_safe`` scheduling under pytest-xdist.

The rule itself is `pytest_ws_resilience.plugin.xdist_groups`; this module applies it:

- in every process that collects (an xdist worker, or a run with xdist loaded and
  ``-n 0``), a ``tryfirst`` ``pytest_collection_modifyitems`` adds
  ``xdist_group(SERIAL_GROUP)`` to connection tests not marked ``concurrent_safe``.
  ``tryfirst`` matters: xdist's worker reads the group markers in its own
  ``pytest_collection_modifyitems`` (it appends ``@group`` to each node id, which
  ``--dist loadgroup`` then splits), and that plugin is registered after ours, so
  without ``tryfirst`` it would run first and never see the marker (pytest-xdist
  #1241, #1253). A worker reports what it did through ``workeroutput``;
- on a ``--dist loadgroup`` worker, a ``trylast`` hook checks that xdist's suffix
  took, and restores it where it did not: pytest 9.2's structured node ids ignore
  the field xdist 3.8 writes, so every group silently stops working (pytest-xdist
  #1386). Once xdist sets the suffix itself, this does nothing;
- on the controller (which collects nothing), a report-header line says what the
  ``--dist`` mode does with the group, and after the workers are done one
  `WsSchedulingWarning` says so when the mode defeats it for tests that need it, and
  one names unsafe tests that kept a group of their own.

Every hook lives in a class registered only when xdist is loaded, so xdist's hooks
are never declared, nor xdist imported, where it is absent.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from pytest_ws_resilience.errors import WsSchedulingWarning
from pytest_ws_resilience.plugin.controller import is_xdist_controller
from pytest_ws_resilience.plugin.xdist_groups import (
    Decision,
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

__all__ = [
    "WORKER_OUTPUT_KEY",
    "CollectionScheduling",
    "ControllerScheduling",
    "LoadgroupIdRepair",
    "configure",
]

#: The key under which a worker's `SchedulingTally` travels in ``workeroutput``.
WORKER_OUTPUT_KEY = "ws_resilience_scheduling"

# Tests of a loadgroup worker whose node id could not get its group suffix.
_UNGROUPED_KEY = pytest.StashKey[int]()

# Each test's decision with its node id as collected (xdist's loadgroup later adds
# "@group" to the node id; messages name the test as the user wrote it).
_DECISION_KEY = pytest.StashKey[tuple[str, Decision]]()


def configure(config: pytest.Config) -> None:
    """Called by the plugin's pytest_configure: registers the scheduling hooks, only
    when pytest-xdist is loaded (without it every test runs one at a time anyway)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    config.pluginmanager.register(CollectionScheduling(), "ws_resilience.scheduling")
    if getattr(config.option, "loadgroup", False):  # set by xdist on loadgroup workers
        config.pluginmanager.register(LoadgroupIdRepair(), "ws_resilience.loadgroup_ids")
    if is_xdist_controller(config):
        dist = str(config.getoption("dist"))
        config.pluginmanager.register(
            ControllerScheduling(dist), "ws_resilience.scheduling_controller"
        )


class CollectionScheduling:
    """Where tests are collected: apply the rule, and tell the controller about it."""

    @pytest.hookimpl(tryfirst=True)  # before xdist's worker reads xdist_group markers
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            decision = decide(
                fixturenames=getattr(item, "fixturenames", ()),
                concurrent_safe=item.get_closest_marker("concurrent_safe") is not None,
                markers=(mark.name for mark in item.iter_markers()),
                user_groups=user_group_names(
                    (mark.args, mark.kwargs) for mark in item.iter_markers("xdist_group")
                ),
            )
            item.stash[_DECISION_KEY] = (item.nodeid, decision)
            if decision.group is not None:
                item.add_marker(pytest.mark.xdist_group(decision.group))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Counted here, after -m/-k deselection and the plugin's skip markers.
        workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
        if workeroutput is None:
            return
        # Tests skipped outright (ws_env, websocket_security) run nothing, so need no
        # serializing either.
        tally = tally_of(
            item.stash[_DECISION_KEY]
            for item in session.items
            if _DECISION_KEY in item.stash and item.get_closest_marker("skip") is None
        )
        tally.ungrouped_ids = session.config.stash.get(_UNGROUPED_KEY, 0)
        workeroutput[WORKER_OUTPUT_KEY] = tally.as_dict()


class LoadgroupIdRepair:
    """On a ``--dist loadgroup`` worker: make sure grouped tests carry xdist's suffix."""

    @pytest.hookimpl(trylast=True)  # after xdist's worker wrote (or failed to write) it
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        ungrouped = 0
        for item in items:
            groups = user_group_names(
                (mark.args, mark.kwargs) for mark in item.iter_markers("xdist_group")
            )
            nodeid = loadgroup_node_id(item.nodeid, groups)
            if nodeid is not None and not _set_node_id(item, nodeid):
                ungrouped += 1
        config.stash[_UNGROUPED_KEY] = ungrouped


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


class ControllerScheduling:
    """On the xdist controller: the header line, the summary line and the warnings."""

    def __init__(self, dist: str) -> None:
        self.dist = dist
        self.tally: SchedulingTally | None = None
        self.workers = 0
        # Warnings turned into errors by the user's filters.
        self.errors: list[str] = []

    def pytest_report_header(self) -> list[str]:
        line = header_line(self.dist)
        return [line] if line else []

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        self.workers += 1
        data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        if data is None:
            return  # a worker that crashed reports nothing
        tally = SchedulingTally.from_dict(data)
        if self.tally is None:
            self.tally = tally
        else:
            self.tally.merge(tally)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Inside pytest's warning capture of sessionfinish: the warnings go to the
        # warnings summary, and -W / filterwarnings apply to them.
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

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.tally is None:
            return
        line = summary_line(self.dist, self.tally, self.workers)
        if line is not None:
            terminalreporter.write_line(line)
        for error in self.errors:
            terminalreporter.write_line(f"ERROR: WsSchedulingWarning: {error}", red=True)
