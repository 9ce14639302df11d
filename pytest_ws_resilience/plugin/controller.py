"""`WsController`: the plugin object of the xdist controller (pytest-xdist's ``DSession``).

The controller runs no test. Its part of the run:

- hands every worker the run's `RunHandoff` in ``pytest_configure_node`` (the one
  ``workerinput`` payload: run id, owner pid, state directory, secret, chaos seed, the
  shared app's URL), built once by the entry point and completed here once the shared
  app is up;
- with ``--ws-app-share`` / ``app_share = true``, serves the one ASGI app of all
  workers: started at session start, before xdist's own ``pytest_sessionstart`` spawns
  the workers, stopped at unconfigure, after they are all gone; no worker starts or
  stops it;
- receives each worker's `WorkerResults` in ``pytest_testnodedown`` (its report records
  and its scheduling tally), then prints one summary and writes one report;
- says in the header what ``--dist`` does with the scheduling group, and warns when it
  defeats it;
- stops the run when a worker crashes in a test under a scheduling by scope (``--dist
  loadgroup``, ``loadscope``, ``loadfile``), with one line naming the worker, the test
  and its group (`lost_worker_message`). pytest-xdist puts the crashed test's whole
  work unit, the crashed test included, back in the queue: a replacement worker runs
  the crash again, and again, up to ``--max-worker-restart`` (4 per worker) times, each
  after a full collection: on a large suite the run looks hung for many minutes, and
  the rest of the group never runs anyway.

Registered only on a controller, so xdist's hooks are never declared where xdist is
absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsResilienceError
from pytest_ws_resilience.plugin.handoff import RunHandoff, WorkerResults
from pytest_ws_resilience.plugin.roles import worker_id_in
from pytest_ws_resilience.plugin.scheduling import RunScheduling
from pytest_ws_resilience.plugin.session import WsSession
from pytest_ws_resilience.plugin.stash import RUN_KEY
from pytest_ws_resilience.servers.under_test import (
    ServerUnderTest,
    open_server_under_test,
    token_factory_for,
)

__all__ = ["SCOPED_DISTS", "WsController", "lost_worker_message"]

#: The ``--dist`` modes that schedule whole scopes (pytest-xdist's LoadScopeScheduling
#: and its subclasses), where a crash is rescheduled with its scope.
SCOPED_DISTS = ("loadgroup", "loadscope", "loadfile")


def lost_worker_message(worker: str, crashitem: str, dist: str, error: str | None) -> str:
    """The one line that ends a run whose worker crashed in ``crashitem``."""
    test, _, group = crashitem.partition("@")
    scope = f"xdist_group {group!r}" if group else f"scope {test.split('::')[0]!r}"
    why = f" ({' '.join(error.split())})" if error else ""
    return (
        f"ws-resilience: xdist worker {worker} crashed{why} while running {test} of "
        f"{scope}; under --dist {dist} a replacement worker would run that crash again "
        f"with the rest of its group: run stopped (run that test alone to see why)"
    )


class WsController(WsSession):
    """The xdist controller's hooks (see the module's docstring)."""

    def __init__(
        self,
        config: pytest.Config,
        settings: WsSettings,
        run: RunHandoff,
        *,
        report_path: Path | None,
    ) -> None:
        super().__init__(config, settings, run, report_path=report_path)
        self.scheduling = RunScheduling(str(config.getoption("dist")))
        #: The app served to every worker (``app_share``), while it runs.
        self.shared_app: ServerUnderTest | None = None
        #: Why each worker went down, by worker id (``pytest_testnodedown``'s error).
        self.node_errors: dict[str, str] = {}
        #: The line that stopped the run after a worker crashed, if one did.
        self.lost_worker: str | None = None

    # -- xdist's hooks -----------------------------------------------------------------

    def pytest_configure_node(self, node: Any) -> None:
        self.run.to_workerinput(node.workerinput)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        results = WorkerResults.from_workeroutput(getattr(node, "workeroutput", None))
        worker = worker_id_in(getattr(node, "workerinput", {}))
        if error:
            self.node_errors[str(worker)] = str(error)
        self.report.add_worker_payload(worker, results.report if results else None)
        self.scheduling.add_worker(results.scheduling if results else None)

    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """A worker crashed in ``crashitem``: stop the run rather than let xdist run the
        crash again (see the module's docstring)."""
        dist = str(self.config.getoption("dist"))
        if dist not in SCOPED_DISTS or self.lost_worker is not None:
            return
        node = getattr(report, "node", None)
        worker = str(getattr(getattr(node, "gateway", None), "id", None) or "?")
        self.lost_worker = lost_worker_message(
            worker, crashitem, dist, self.node_errors.get(worker)
        )
        report.longrepr = self.lost_worker
        dsession = self.config.pluginmanager.getplugin("dsession")
        if dsession is not None:
            # xdist's loop shuts every worker down and ends the run as interrupted.
            dsession.shouldstop = self.lost_worker

    # -- the role's steps --------------------------------------------------------------

    def _role_open_run(self) -> None:
        """Serve the shared app before the workers exist; they get its URL."""
        server = self.settings.server
        if server.app is None or not server.app_share:
            return
        try:
            self.shared_app = open_server_under_test(
                self.settings, token_factory_for(self.settings)
            )
        except WsResilienceError as err:
            pytest.exit(
                f"the ASGI app under test (shared by the xdist workers) failed to start:\n{err}",
                returncode=pytest.ExitCode.TESTS_FAILED,
            )
        self.run = self.run.with_shared_app(self.shared_app.url)
        self.config.stash[RUN_KEY] = self.run

    def _role_header_lines(self) -> list[str]:
        return self.scheduling.header_lines()

    def _role_finish_report(self, session: pytest.Session) -> None:
        # Within pytest's warning capture of sessionfinish, before the report records
        # the exit status the warnings may change.
        self.scheduling.warn(session)
        super()._role_finish_report(session)

    def _role_write_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        self.scheduling.write_summary(terminalreporter)

    def _role_close_run(self) -> None:
        """Stop the shared app, after every worker is gone."""
        if self.shared_app is not None:
            self.shared_app.close(timeout=self.settings.close_timeout.value)
            self.shared_app = None
