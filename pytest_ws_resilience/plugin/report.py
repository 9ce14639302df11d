"""pytest glue of the run report: collect per-test records, merge xdist workers, print
the ``ws-resilience`` terminal section and write ``--ws-report``.

Every process that runs tests records them (at each test's teardown report, when its
clients are closed). A worker hands its records to the controller through xdist's
``workeroutput`` at session finish; the controller receives them in
``pytest_testnodedown`` (a hook declared only where xdist is installed, so it lives in
a class registered only on an xdist controller), then prints one summary for the whole
run and writes the report file, once. Without xdist the same path runs with one source.
The figures and texts come from the pure modules beside this one.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Generator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.plugin.controller import is_xdist_controller
from pytest_ws_resilience.plugin.stash import (
    CHAOS_SEED_KEY,
    SERVICES_STARTED_KEY,
    SETTINGS_KEY,
    WATCH_KEY,
)
from pytest_ws_resilience.report.aggregate import RunSummary, Source, summarize
from pytest_ws_resilience.report.document import build_document, dumps, is_html_path
from pytest_ws_resilience.report.html import render_html
from pytest_ws_resilience.report.records import (
    IsolationRecord,
    PhaseResult,
    TestRecord,
    build_record,
    client_usage,
)
from pytest_ws_resilience.report.summary import summary_lines

__all__ = [
    "WORKER_OUTPUT_KEY",
    "ReportCollector",
    "XdistReportHooks",
    "check_report_path",
    "configure",
    "phase_result",
]

#: The key of a worker's records in xdist's ``workeroutput``.
WORKER_OUTPUT_KEY = "ws_resilience_report"


def configure(config: pytest.Config) -> None:
    """Called by the plugin's pytest_configure: registers the report hooks.

    Raises:
        pytest.UsageError: ``--ws-report`` names a path that cannot be written, said
            now rather than after the whole run.
    """
    raw = config.getoption("ws_report", None)
    worker = _worker_id(config)
    path = None
    if raw and worker is None:
        path = check_report_path(raw, config.invocation_params.dir)
    collector = ReportCollector(config, path=path, worker=worker)
    config.pluginmanager.register(collector, "ws_resilience.report")
    if config.pluginmanager.hasplugin("xdist") and is_xdist_controller(config):
        config.pluginmanager.register(XdistReportHooks(collector), "ws_resilience.report_xdist")


def check_report_path(raw: str, cwd: Path) -> Path:
    """The ``--ws-report`` file as an absolute path, or a one-line error.

    Raises:
        pytest.UsageError: the path is a directory, or its directory is missing or not
            writable.
    """
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = cwd / path
    where = f"--ws-report={raw}"
    if path.is_dir():
        raise pytest.UsageError(f"{where} is a directory: give a file path, e.g. {raw}/report.html")
    parent = path.parent
    if not parent.is_dir():
        raise pytest.UsageError(
            f"{where}: directory {parent} does not exist (create it, or pick another path)"
        )
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise pytest.UsageError(f"{where}: cannot write there (permission denied)")
    return path


def _worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id ("gw0", ...) in a worker process, else None."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput.get("workerid", "worker"))


def phase_result(report: pytest.TestReport) -> PhaseResult:
    """The plain facts of one phase report."""
    reason = None
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    return PhaseResult(
        when=report.when,
        outcome=report.outcome,
        start=float(getattr(report, "start", 0.0)),
        stop=float(getattr(report, "stop", 0.0)),
        duration=float(report.duration),
        skip_reason=reason,
        xfail=hasattr(report, "wasxfail"),
    )


def _record_of(item: pytest.Item, phases: list[PhaseResult], worker: str) -> TestRecord:
    """A finished test's record: its phases and what its watch saw (if it had one)."""
    watch = item.stash.get(WATCH_KEY, None)
    if watch is None:  # the test never used the plugin's fixtures
        return build_record(item.nodeid, phases, worker=worker)
    guard = watch.guard
    return build_record(
        item.nodeid,
        phases,
        worker=worker,
        clients=[
            client_usage(
                c.name, c.metrics, baseline=watch.baselines.get(id(c)), since=watch.started_at
            )
            for c in watch.seen_clients
        ],
        isolation=(
            IsolationRecord(
                guard.checks,
                guard.detector.violation_count,
                strict=guard.strict,
                expected=guard.expecting_violations,
            )
            if guard is not None
            else None
        ),
        chaos_faults=[proxy.stats["faults"] for proxy in watch.proxies],
        services=watch.services,
        pool_hits=watch.pool_hits,
        pool_misses=watch.pool_misses,
        storms=watch.storms,
    )


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "pytest": pytest.__version__}
    for name in ("pytest-ws-resilience", "websockets", "pytest-xdist"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class ReportCollector:
    """Per-process report hooks: records tests, finishes the run's report."""

    def __init__(self, config: pytest.Config, *, path: Path | None, worker: str | None) -> None:
        self.config = config
        self.path = path
        #: None on the controller or without xdist; "gw0"... in a worker.
        self.worker = worker
        self.records: list[TestRecord] = []
        #: Sources received from xdist workers (controller only).
        self.sources: list[Source] = []
        #: Workers that went down without handing over their records.
        self.lost_workers: list[str] = []
        self.summary: RunSummary | None = None
        #: What became of the report file: "written to PATH" or the error.
        self.report_status: str | None = None
        self.started_at = time.time()
        self._phases: dict[str, list[PhaseResult]] = {}

    @property
    def _own_name(self) -> str:
        if self.worker is not None:
            return self.worker
        return "controller" if is_xdist_controller(self.config) else "main"

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        if self.path is None:
            return []
        kind = "HTML" if is_html_path(self.path.name) else "JSON"
        return [f"ws-resilience report: {self.path} ({kind})"]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started_at = time.time()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        phases = self._phases.setdefault(item.nodeid, [])
        phases.append(phase_result(report))
        if report.when == "teardown":
            # Teardown is last: the test's clients are closed, its watch complete.
            del self._phases[item.nodeid]
            self.records.append(_record_of(item, phases, self.worker or "main"))
        return report

    def own_source(self) -> Source:
        seed = self.config.stash.get(CHAOS_SEED_KEY, None)
        services: list[str] = self.config.stash.get(SERVICES_STARTED_KEY, [])
        return Source(
            worker=self._own_name,
            records=tuple(self.records),
            services_started=tuple(services),
            chaos_seed=seed,
            started_at=self.started_at,
            finished_at=time.time(),
        )

    def add_worker_payload(self, worker: str, payload: dict[str, Any] | None) -> None:
        """A worker's records arrived (or not: it crashed before handing them over)."""
        if payload is None:
            self.lost_workers.append(worker)
        else:
            self.sources.append(Source.from_payload(payload))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        source = self.own_source()
        if self.worker is not None:
            workeroutput: dict[str, Any] = getattr(self.config, "workeroutput", {})
            workeroutput[WORKER_OUTPUT_KEY] = source.to_payload()
            return
        sources = [*self.sources, source]
        self.summary = summarize(sources)
        if self.path is not None:
            self.report_status = self._write(sources, source, int(session.exitstatus))

    def _run_info(self, own: Source, exitstatus: int) -> dict[str, Any]:
        settings = self.config.stash.get(SETTINGS_KEY, None)
        info: dict[str, Any] = {"exit_status": exitstatus}
        if settings is not None:
            if settings.server.app is not None:
                url = f"app {settings.server.app}"
            elif settings.server.url is None:
                url = "embedded reference server"
            else:
                url = settings.server.url  # redacted with the whole document
            info.update(
                env=settings.env,
                url=url,
                timeouts={
                    name: {"value": None, "source": "default"}
                    if t is None
                    else {"value": t.value, "source": t.source}
                    for name, t in settings.timeouts.items()
                },
            )
        info.update(
            chaos_seed=own.chaos_seed,
            started_at=self.started_at,
            finished_at=own.finished_at,
            args=list(self.config.invocation_params.args),
            rootdir=str(self.config.rootpath),
            platform=sys.platform,
            versions=_versions(),
            lost_workers=list(self.lost_workers),
        )
        return info

    def _write(self, sources: list[Source], own: Source, exitstatus: int) -> str:
        assert self.path is not None
        document = build_document(run=self._run_info(own, exitstatus), sources=sources)
        text = render_html(document) if is_html_path(self.path.name) else dumps(document)
        try:
            # Write beside the target, then rename: a reader never sees half a report.
            fd, tmp = tempfile.mkstemp(prefix=".ws-report-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as err:
            return f"NOT written to {self.path}: {err.strerror or err}"
        return f"written to {self.path}"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.worker is not None or self.summary is None:
            return
        if not (self.summary.used or self.path is not None or self.lost_workers):
            return  # a suite that never connects gets no section
        terminalreporter.write_sep("-", "ws-resilience")
        for line in summary_lines(self.summary, report=self.report_status):
            terminalreporter.write_line(line)
        if self.lost_workers:
            terminalreporter.write_line(
                f"missing: the records of {', '.join(self.lost_workers)} (worker went down "
                "before finishing)"
            )


class XdistReportHooks:
    """xdist controller hooks: receive each worker's records when it finishes."""

    def __init__(self, collector: ReportCollector) -> None:
        self.collector = collector

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        workeroutput = getattr(node, "workeroutput", None) or {}
        worker = str(getattr(node, "workerinput", {}).get("workerid", "worker"))
        self.collector.add_worker_payload(worker, workeroutput.get(WORKER_OUTPUT_KEY))
