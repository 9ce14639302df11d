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
  defeats it.

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

__all__ = ["WsController"]


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

    # -- xdist's hooks -----------------------------------------------------------------

    def pytest_configure_node(self, node: Any) -> None:
        self.run.to_workerinput(node.workerinput)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        results = WorkerResults.from_workeroutput(getattr(node, "workeroutput", None))
        worker = worker_id_in(getattr(node, "workerinput", {}))
        self.report.add_worker_payload(worker, results.report if results else None)
        self.scheduling.add_worker(results.scheduling if results else None)

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
