"""`WsSession`: the plugin object of a pytest process, with the hooks every process runs.

The entry point (`pytest_ws_resilience.plugin.entry`) registers one role object per
process: this class in a run without xdist (or with ``-n 0``), its subclasses
`pytest_ws_resilience.plugin.controller.WsController` on an xdist controller and
`pytest_ws_resilience.plugin.worker.WsWorker` on a worker (as pytest-xdist's
``DSession`` and ``WorkerInteractor``). Each hook is implemented once, here, and calls the
feature parts in the order that matters; a role changes a step by overriding one of the
``_role`` methods at the bottom, never a hook, so a hook's options (``tryfirst``,
``wrapper``) are written once.

The feature parts keep their logic: the services runtime
(`pytest_ws_resilience.plugin.services`), the report collector
(`pytest_ws_resilience.plugin.report`), scheduling (`pytest_ws_resilience.plugin.
scheduling`), redaction (`pytest_ws_resilience.plugin.redacting`) and the marker rules
(`pytest_ws_resilience.plugin.markers`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.client.auth_methods import describe_auth
from pytest_ws_resilience.config.heartbeat import heartbeat_problem
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import shown
from pytest_ws_resilience.errors import WsHeartbeatWarning
from pytest_ws_resilience.plugin import options
from pytest_ws_resilience.plugin.early_close import close_early
from pytest_ws_resilience.plugin.fixtures import (
    add_test_start,
    arm_replay_timer,
    check_nothing_unchecked,
    plan_test,
)
from pytest_ws_resilience.plugin.handoff import RunHandoff
from pytest_ws_resilience.plugin.marker_walk import MarkerWalk
from pytest_ws_resilience.plugin.markers import (
    security_marker_options,
    security_skip_reason,
    ws_env_names,
    ws_env_skip_reason,
)
from pytest_ws_resilience.plugin.redacting import (
    add_failure_sections,
    quiet_pass,
    redact_logs,
    redact_report,
    redact_warning,
)
from pytest_ws_resilience.plugin.report import ReportCollector
from pytest_ws_resilience.plugin.roles import process_name, worker_id, xdist_loaded
from pytest_ws_resilience.plugin.scheduling import mark_groups
from pytest_ws_resilience.plugin.service_rules import services_marker_names
from pytest_ws_resilience.plugin.services import ServicesRuntime
from pytest_ws_resilience.plugin.session_defaults import close_session_defaults
from pytest_ws_resilience.plugin.stash import CurrentTest
from pytest_ws_resilience.plugin.watch import WATCH_KEY
from pytest_ws_resilience.redaction import redact

__all__ = ["WsSession", "settings_header_lines", "warn_heartbeat"]

#: Markers whose arguments are checked at collection: marker name -> its validator
#: (called with the marker's arguments, the test's name and the known envs).
_MARKER_ARGUMENT_CHECKS: dict[str, Callable[..., tuple[str, ...]]] = {
    "ws_env": ws_env_names,
    "ws_services": lambda args, *, test, known: services_marker_names(args, test=test),
}
#: The markers whose arguments collection checks.
_CHECKED_MARKERS = frozenset({*_MARKER_ARGUMENT_CHECKS, "websocket_security"})


def settings_header_lines(settings: WsSettings, run: RunHandoff, *, seed_given: bool) -> list[str]:
    """The report-header lines of the run's settings: env, server, auth, timeouts, chaos
    seed."""
    server = settings.server
    if server.app is not None:
        how = " in a subprocess" if server.app_subprocess else ""
        url = f"app {server.app} (served by uvicorn{how})"
    elif server.command is not None:
        url = f"command {redact(server.command)!r} (--ws-server-cmd)"
    elif server.url is None:
        url = "embedded reference server"
    else:
        url = f"{redact(server.url)} ({server.url_source})"
    path = f", path={server.path}" if server.path != "/" else ""
    timeouts = ", ".join(
        f"{name.removesuffix('_timeout')}={shown(value)}"
        for name, value in settings.timeouts.items()
    )
    return [
        f"ws-resilience: env={settings.env} ({settings.env_source}), url={url}{path}",
        f"ws-resilience auth: {describe_auth(settings)}",
        f"ws-resilience timeouts: {timeouts}",
        f"ws-resilience chaos seed: {run.chaos_seed} "
        f"({'--ws-chaos-seed' if seed_given else 'random'})",
    ]


def warn_heartbeat(config: pytest.Config, settings: WsSettings) -> None:
    """Warn once, at start-up, when the heartbeat would not beat the idle timeout
    (`pytest_ws_resilience.config.heartbeat`); ``-W error::...WsHeartbeatWarning`` turns
    it into a usage error (one line, exit code 4)."""
    problem = heartbeat_problem(settings.idle_timeout, settings.heartbeat_interval)
    if problem is None:
        return
    warning = WsHeartbeatWarning(f"ws-resilience (env {settings.env}): {problem}")
    try:
        config.issue_config_time_warning(warning, stacklevel=2)
    except WsHeartbeatWarning as err:
        raise pytest.UsageError(str(err)) from None


class WsSession:
    """The plugin's hooks in one process of the run: the only one, without xdist.

    Args:
        config: this process's config.
        settings: the run's settings, loaded once by the entry point.
        run: what every process of the run agrees on (`RunHandoff`).
        report_path: the ``--ws-report`` file, checked; None for none (always on a
            worker, which hands its records to the controller instead).
    """

    #: Whether this process reaps leftovers at the start and removes the run's
    #: services at the end (a worker leaves that to the controller).
    owns_run = True

    def __init__(
        self,
        config: pytest.Config,
        settings: WsSettings,
        run: RunHandoff,
        *,
        report_path: Path | None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.run = run
        #: The test being set up, run or torn down: the services and the client
        #: fixtures serve it.
        self.current_test = CurrentTest()
        self.services = ServicesRuntime(
            settings, run, owns_run=self.owns_run, current=self.current_test
        )
        self.report = ReportCollector(
            config,
            settings,
            path=report_path,
            name=process_name(config),
            worker=worker_id(config),
        )
        #: Scheduling groups are added where tests are collected with xdist loaded
        #: (a worker, or ``-n 0``): without xdist every test runs one at a time anyway.
        self.marks_groups = xdist_loaded(config)
        #: The collector's pass over the items' markers (each parent read once).
        self._collect_walk = MarkerWalk()
        if self.owns_run:  # once per run: never on a worker
            warn_heartbeat(config, settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_id={self.run.run_id})"

    # -- session -----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # before xdist's sessionstart spawns the workers
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._role_open_run()
        self.services.reap_at_start()
        redact_logs(session.config)
        self.report.start_clock()

    # pytest prints header lines in the reverse order of the calls: trylast puts the
    # block first, under the platform line, where the settings lines always were.
    @pytest.hookimpl(trylast=True)
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [
            *settings_header_lines(
                self.settings,
                self.run,
                seed_given=options.chaos_seed_option(config) is not None,
            ),
            *self.services.header_lines(),
            *self._role_header_lines(),
            *self.report.header_lines(),
        ]

    @pytest.hookimpl(trylast=True)  # after xdist's own: every worker has finished
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        close_session_defaults(self.config)  # the session's server: every test is done
        self._role_finish_report(session)
        self.services.finish()  # the run's owner only: a worker never removes a service

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        self.report.write_summary(terminalreporter)
        self._role_write_summary(terminalreporter)
        for line in self.services.summary_lines():
            terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        close_session_defaults(config)  # a run that ended before sessionfinish
        self._role_close_run()
        self.services.close()  # finishes a run that ended before sessionfinish

    @pytest.hookimpl(tryfirst=True)  # before the terminal and xdist's worker read it
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        redact_warning(warning_message)

    # -- collection --------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Module | pytest.Class, name: str, obj: object
    ) -> Generator[None, Any, Any]:
        """Turn a malformed ``ws_env``, ``ws_services`` or ``websocket_security`` marker
        into a collection error naming the test."""
        result = yield
        for item in result if isinstance(result, list) else [result]:
            if not isinstance(item, pytest.Item):
                continue
            # The item's markers, closest first (its parents' read once for the whole
            # collection: `MarkerWalk`); most tests carry none of ours and are done here.
            ours = [m for m in self._collect_walk.markers(item) if m.name in _CHECKED_MARKERS]
            if not ours:
                continue
            for marker in ours:
                check = _MARKER_ARGUMENT_CHECKS.get(marker.name)
                if check is None:
                    continue
                try:
                    check(marker.args, test=item.name, known=self.settings.known_envs)
                except ValueError as err:
                    raise collector.CollectError(str(err)) from None
            security = [(m.args, m.kwargs) for m in ours if m.name == "websocket_security"]
            try:
                security_marker_options(security[::-1], test=item.name)
            except ValueError as err:
                raise collector.CollectError(str(err)) from None
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        """Before every other plugin: the scheduling groups, so that xdist's worker,
        which reads them in its own hook, sees them. After every other plugin: the
        skips, and the role's repairs."""
        self._collect_walk = MarkerWalk()  # collection is over: a new one reads afresh
        if self.marks_groups:
            mark_groups(items)
        yield
        self._skip_unrunnable(items)
        self._role_after_collection(config, items)

    def _skip_unrunnable(self, items: list[pytest.Item]) -> None:
        """Skip ``ws_env`` tests of other envs, and ``websocket_security`` tests without
        auth.

        For ``ws_env`` the closest marker wins. A skip marker, rather than `pytest.skip`
        in a hook, so that ``-rs`` points at the test and the skip happens before any
        fixture starts.
        """
        security_reason = security_skip_reason(
            server_kind=self.settings.server.kind,
            auth_configured=self.settings.keys.configured,
            unauthenticated=self.settings.unauthenticated,
        )
        walk = MarkerWalk()
        for item in items:
            plan = plan_test(item, walk)
            if security_reason and plan.strict:
                item.add_marker(pytest.mark.skip(reason=security_reason))
            marker = plan.ws_env
            if marker is None:
                continue
            try:
                names = ws_env_names(marker.args, test=item.name)
            except ValueError:
                continue  # reported by pytest_runtest_setup
            reason = ws_env_skip_reason(names, self.settings.env)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))

    # -- one test ----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.current_test.item = item  # before pytest fills the test's fixtures
        arm_replay_timer(item)  # before pytest-benchmark builds the benchmark fixture
        plan = plan_test(item)
        add_test_start(item, plan)  # before pytest fills the test's fixtures
        # A malformed ws_env marker on an item the Python collector did not check.
        marker = plan.ws_env
        if marker is not None:
            try:
                ws_env_names(marker.args, test=item.name, known=self.settings.known_envs)
            except ValueError as err:
                pytest.fail(str(err), pytrace=False)

    # Plain hooks where a hook must only act after pytest's own (a wrapper costs every
    # test the making and the resuming of a generator in pluggy, three times a test for
    # the report's): a plain implementation marked trylast runs after pytest's, and only
    # when pytest's did not raise.

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """The test body passed: fail it if its users saw each other's data (the report
        once), else start closing the clients nothing can use any more
        (`pytest_ws_resilience.plugin.early_close`). A body that failed on its own gets
        the report added to its failure instead (`pytest_runtest_makereport`)."""
        watch = item.stash.get(WATCH_KEY, None)
        if watch is None:
            return
        if watch.guard is not None:
            report = watch.guard.verdict()
            if report is not None:
                pytest.fail(report, pytrace=False)
        close_early(item, watch)  # the server answers while pytest reports the body

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        """Every fixture of the test has finished: what it armed and never exercised."""
        check_nothing_unchecked(item)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        when = report.when
        isolation = None
        if when == "call" and call.excinfo is not None:
            # The body raised (a failure, a skip, an xfail): the isolation report joins
            # its failure, not a second error.
            watch = item.stash.get(WATCH_KEY, None)
            if watch is not None and watch.guard is not None:
                isolation = watch.guard.verdict()
        elif when == "teardown":
            self.current_test.item = None  # the test's last fixture has finished
        if not quiet_pass(report):
            self.services.annotate_report(item, report)
            redact_report(report)  # everything above included
            add_failure_sections(item, report, isolation)
        self.report.record(item, report)
        return report

    # -- what a role changes ---------------------------------------------------------------

    def _role_open_run(self) -> None:
        """At session start, before anything else of ours (and before xdist's)."""

    def _role_header_lines(self) -> list[str]:
        """Report-header lines of the role, after the services line."""
        return []

    def _role_after_collection(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """After every plugin's ``pytest_collection_modifyitems``."""

    def _role_finish_report(self, session: pytest.Session) -> None:
        """The end of the run's report: here, its summary and file."""
        own = self.report.own_source(
            chaos_seed=self.run.chaos_seed, services_started=self.services.started
        )
        self.report.finish(own, int(session.exitstatus))

    def _role_write_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Terminal-summary lines of the role, after the report's section."""

    def _role_close_run(self) -> None:
        """At unconfigure, before the services runtime closes."""
