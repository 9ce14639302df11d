"""`WsWorker`: the plugin object of an xdist worker (pytest-xdist's ``WorkerInteractor``).

A worker runs tests as a process without xdist would, with three differences:

- it does not own the run: the controller reaps leftovers and removes the run's
  services, the worker never does (its `RunHandoff`, received from the controller,
  names the run);
- on ``--dist loadgroup`` it makes sure grouped tests carry xdist's ``@group`` node-id
  suffix (`pytest_ws_resilience.plugin.scheduling.repair_loadgroup_ids`);
- it writes no report and prints no summary: at session end it hands its records and
  its scheduling tally to the controller in ``workeroutput`` (`WorkerResults`).

It declares no xdist hook: ``workerinput`` and ``workeroutput`` are attributes of its
config.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ws_resilience.plugin.handoff import WorkerResults
from pytest_ws_resilience.plugin.scheduling import collected_tally, repair_loadgroup_ids
from pytest_ws_resilience.plugin.session import WsSession

__all__ = ["WsWorker"]


class WsWorker(WsSession):
    """An xdist worker's hooks (see the module's docstring)."""

    owns_run = False

    #: Tests whose node id could not get its loadgroup suffix (pytest-xdist #1386).
    ungrouped_ids = 0
    #: What the collection did, counted once it is done (``SchedulingTally.as_dict``).
    scheduling_tally: dict[str, Any] | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Counted here, after -m/-k deselection and the plugin's skip markers.
        if self.marks_groups:
            tally = collected_tally(session.items, ungrouped_ids=self.ungrouped_ids)
            self.scheduling_tally = tally.as_dict()

    def _role_after_collection(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        # xdist sets `loadgroup` on the workers of a --dist loadgroup run; its own hook,
        # which writes the suffix, has run by now.
        if getattr(config.option, "loadgroup", False):
            self.ungrouped_ids = repair_loadgroup_ids(items)

    def _role_finish_report(self, session: pytest.Session) -> None:
        own = self.report.own_source(
            chaos_seed=self.run.chaos_seed, services_started=self.services.started
        )
        workeroutput: dict[str, Any] = getattr(self.config, "workeroutput", {})
        WorkerResults(report=own.to_payload(), scheduling=self.scheduling_tally).to_workeroutput(
            workeroutput
        )
