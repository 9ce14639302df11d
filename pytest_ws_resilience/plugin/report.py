"""The run report's collector: per-test records, one summary, the ``--ws-report`` file.

Every process that runs tests records them (at each test's teardown report, when its
clients are closed); a test that passed using no more than clients is only added to the
tally (`pytest_ws_resilience.report.tally`), unless ``--ws-report`` asks for every
test. A worker hands its records and tally to the controller when it finishes
(`pytest_ws_resilience.plugin.handoff.WorkerResults`); the controller adds each worker's
as it goes down, then prints one summary for the whole run and writes the report file,
once. Without xdist the same path runs with one source. No
hooks here: the role objects (`pytest_ws_resilience.plugin.session`, ``controller``,
``worker``) call these steps.
The figures and texts come from the pure modules of `pytest_ws_resilience.report`.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.client.auth_methods import describe_auth
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.plugin.options import report_option
from pytest_ws_resilience.plugin.stash import SERVER_URLS_KEY
from pytest_ws_resilience.plugin.watch import WATCH_KEY, TestWatch
from pytest_ws_resilience.report.aggregate import RunSummary, Source, summarize
from pytest_ws_resilience.report.document import build_document, dumps, is_html_path
from pytest_ws_resilience.report.records import (
    ClientUsage,
    IsolationRecord,
    PhaseResult,
    TestRecord,
    build_record,
    client_usage,
)
from pytest_ws_resilience.report.server_info import server_line, server_record
from pytest_ws_resilience.report.summary import summary_lines
from pytest_ws_resilience.report.tally import Tally

__all__ = ["ReportCollector", "check_report_path", "phase_result"]


def check_report_path(raw: str, cwd: Path) -> Path:
    """The ``--ws-report`` file as an absolute path, or a one-line error.

    The check writes: a probe file beside the report (removed at once), or the existing
    report opened for appending, because permission bits do not tell (root passes every
    ``os.access`` check, and ``/proc`` refuses files whatever its bits say).

    Raises:
        pytest.UsageError: the path is empty, a directory or not a regular file, or its
            directory is missing or not writable.
    """
    where = f"--ws-report={raw}"
    if not raw.strip():
        raise pytest.UsageError(
            f"{where} is empty: give a file path, e.g. --ws-report=ws-report.html (or .json)"
        )
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = cwd / path
    if path.is_dir():
        raise pytest.UsageError(f"{where} is a directory: give a file path, e.g. {raw}/report.html")
    parent = path.parent
    if not parent.is_dir():
        raise pytest.UsageError(
            f"{where}: directory {parent} does not exist (create it, or pick another path)"
        )
    if path.exists() and not path.is_file():
        raise pytest.UsageError(f"{where} is not a regular file: give a file path to write")
    exists = path.exists()
    try:
        if exists:
            with path.open("a"):
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".ws-report-probe-"):
                pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        what = f"cannot write {path}" if exists else f"cannot create a file in {parent}"
        raise pytest.UsageError(f"{where}: {what} ({reason})") from None
    return path


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


def _passed(report: pytest.TestReport) -> bool:
    return report.passed and not hasattr(report, "wasxfail")


def _usages(watch: TestWatch) -> list[ClientUsage]:
    """What each client of the test did in it."""
    return [
        client_usage(c.name, c.metrics, baseline=watch.baselines.get(id(c)), since=watch.started_at)
        for c in watch.seen_clients
    ]


def _record_of(
    item: pytest.Item, phases: list[PhaseResult], worker: str, watch: TestWatch | None
) -> TestRecord:
    """A finished test's record: its phases and what its watch saw (if it had one)."""
    if watch is None:  # the test never used the plugin's fixtures
        return build_record(item.nodeid, phases, worker=worker)
    guard = watch.guard
    return build_record(
        item.nodeid,
        phases,
        worker=worker,
        clients=_usages(watch),
        isolation=(
            IsolationRecord(
                guard.checks,
                guard.violation_count,
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


def _release(item: pytest.Item, watch: TestWatch) -> None:
    """The test is counted: the item lives on to the end of the session, its watch,
    clients and proxies must not."""
    watch.release()
    del item.stash[WATCH_KEY]


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "pytest": pytest.__version__}
    for name in ("pytest-ws-resilience", "websockets", "pytest-xdist"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class ReportCollector:
    """The records of this process's tests, and the run's report where it ends.

    Args:
        config: this process's config (its invocation, for the report's run info).
        settings: the run's settings.
        path: the ``--ws-report`` file (checked by `check_report_path`); None for none,
            and always None on a worker.
        name: this process in the report ("main", "controller", "gw0", ...).
        worker: the xdist worker id on a worker, else None.
    """

    def __init__(
        self,
        config: pytest.Config,
        settings: WsSettings,
        *,
        path: Path | None,
        name: str,
        worker: str | None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.path = path
        self.name = name
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
        #: A report file was asked for (``--ws-report``): it lists every test, so every
        #: test is recorded, on the xdist workers too (which write no file themselves).
        self.record_every_test = path is not None or report_option(config) is not None
        #: Tests added up but not recorded (`record`).
        self.tally = Tally()
        # By item, not node id: an item's node id is built anew at every read.
        self._reports: dict[pytest.Item, list[pytest.TestReport]] = {}

    def header_lines(self) -> list[str]:
        """The report-header line naming the report file (none without one)."""
        if self.path is None:
            return []
        kind = "HTML" if is_html_path(self.path.name) else "JSON"
        return [f"ws-resilience report: {self.path} ({kind})"]

    def start_clock(self) -> None:
        """The session starts: the run's start time in the report."""
        self.started_at = time.time()

    def record(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """One phase report of ``item``; the test is recorded at its teardown report.

        A test that passed using no more of the plugin than clients is only added to
        the tally when no report file asks for every test: the summary needs no more
        of it, and most tests of a suite are such tests
        (``benchmarks/suite_overhead.py``).
        """
        reports = self._reports.setdefault(item, [])
        reports.append(report)
        if report.when != "teardown":
            return
        # Teardown is last: the test's clients are closed, its watch complete.
        del self._reports[item]
        watch = item.stash.get(WATCH_KEY, None)
        if not self.record_every_test and all(map(_passed, reports)):
            if watch is None:
                self.tally.passed += 1
                return
            if watch.only_clients:
                self.tally.add_usage(_usages(watch))
                _release(item, watch)
                return
        phases = [phase_result(r) for r in reports]
        self.records.append(_record_of(item, phases, self.worker or "main", watch))
        if watch is not None:
            _release(item, watch)

    def own_source(self, *, chaos_seed: int | None, services_started: Sequence[str]) -> Source:
        """This process's part of the report: its records, what it started, and the URL
        its ``ws_server`` served (the fixture keeps it in ``SERVER_URLS_KEY``)."""
        served: list[str] = self.config.stash.get(SERVER_URLS_KEY, [])
        return Source(
            worker=self.name,
            records=tuple(self.records),
            services_started=tuple(services_started),
            chaos_seed=chaos_seed,
            started_at=self.started_at,
            finished_at=time.time(),
            server_urls=tuple(served),
            tally=self.tally,
        )

    def server(self, urls: Sequence[str]) -> dict[str, Any]:
        """The server really tested (`server_info.server_record`)."""
        return server_record(
            self.settings.server, urls=urls, services=tuple(self.settings.services.specs)
        )

    def add_worker_payload(self, worker: str, payload: dict[str, Any] | None) -> None:
        """A worker's records arrived (or not: it crashed before handing them over)."""
        if payload is None:
            self.lost_workers.append(worker)
        else:
            self.sources.append(Source.from_payload(payload))

    def finish(self, own: Source, exitstatus: int) -> None:
        """The run's end (not on a worker): the summary of every source, and the file."""
        sources = [*self.sources, own]
        self.summary = summarize(sources)
        if self.path is not None:
            self.report_status = self._write(sources, own, exitstatus)

    def _run_info(self, own: Source, exitstatus: int) -> dict[str, Any]:
        settings = self.settings
        server = self.server(summarize([*self.sources, own]).server_urls)
        return {
            "exit_status": exitstatus,
            "env": settings.env,
            # One phrase (kept for readers of schema 1); ``server`` has the parts.
            "url": server_line(server),  # redacted with the whole document
            "server": server,
            "timeouts": {
                name: {"value": None, "source": "default"}
                if t is None
                else {"value": t.value, "source": t.source}
                for name, t in settings.timeouts.items()
            },
            "auth": describe_auth(settings),
            "chaos_seed": own.chaos_seed,
            "started_at": self.started_at,
            "finished_at": own.finished_at,
            "args": list(self.config.invocation_params.args),
            "rootdir": str(self.config.rootpath),
            "platform": sys.platform,
            "versions": _versions(),
            "lost_workers": list(self.lost_workers),
        }

    def _write(self, sources: list[Source], own: Source, exitstatus: int) -> str:
        assert self.path is not None
        document = build_document(run=self._run_info(own, exitstatus), sources=sources)
        from pytest_ws_resilience.report.html import render_html  # only with an .html path

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

    def write_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """The ``ws-resilience`` section of the terminal summary (the run's end only)."""
        if self.worker is not None or self.summary is None:
            return
        if not (self.summary.used or self.path is not None or self.lost_workers):
            return  # a suite that never connects gets no section
        terminalreporter.write_sep("-", "ws-resilience")
        server = server_line(self.server(self.summary.server_urls))
        for line in summary_lines(self.summary, report=self.report_status, server=server):
            terminalreporter.write_line(line)
        if self.lost_workers:
            terminalreporter.write_line(
                f"missing: the records of {', '.join(self.lost_workers)} (worker went down "
                "before finishing)"
            )
