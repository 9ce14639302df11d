"""Redaction of what pytest prints or writes: test reports and captured log records.

Tokens are redacted at the source (reprs, error messages, the package's logs); this is
the net under that: failure tracebacks, assertion diffs, captured output and log records
of any logger, before terminal, junitxml or xdist see them. The rule itself is
`pytest_ws_resilience.redaction.redact`; here it is applied to pytest's objects. The
role objects call these steps from their hooks (``pytest_sessionstart``,
``pytest_runtest_makereport``).
"""

from __future__ import annotations

import pytest

from pytest_ws_resilience.plugin.stash import CHAOS_KEY, ISOLATION_REPORT_KEY, RUN_KEY
from pytest_ws_resilience.redaction import RedactingFilter, redact

__all__ = ["add_failure_sections", "chaos_replay_hint", "redact_logs", "redact_report"]

_LOG_HANDLERS = ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler")


def redact_report(report: pytest.TestReport) -> None:
    """Replace secrets in a report's failure text and captured sections, in place."""
    if isinstance(report.longrepr, tuple):  # a skip: (path, lineno, reason)
        path, lineno, reason = report.longrepr
        report.longrepr = (path, lineno, redact(reason))
    elif report.longrepr is not None:
        text = str(report.longrepr)
        cleaned = redact(text)
        if cleaned != text:
            # The structured repr is replaced by its redacted text: less colour, no leak.
            report.longrepr = cleaned
    report.sections = [(title, redact(content)) for title, content in report.sections]


def add_failure_sections(item: pytest.Item, report: pytest.TestReport) -> None:
    """Add to a failed test's report its isolation report and how to replay its chaos."""
    isolation = item.stash.get(ISOLATION_REPORT_KEY, None)
    if report.failed and report.when == "call" and isolation is not None:
        report.sections.append(("ws-isolation", redact(isolation)))
    if report.failed and item.stash.get(CHAOS_KEY, None):
        report.sections.append(("ws-chaos", chaos_replay_hint(item)))


def chaos_replay_hint(item: pytest.Item) -> str:
    """How to replay a failed test's chaos: the run seed and the command."""
    run = item.config.stash.get(RUN_KEY, None)
    run_seed = run.chaos_seed if run is not None else None
    proxy_seeds = ", ".join(str(s) for s in item.stash.get(CHAOS_KEY, []))
    return (
        f"chaos seed {run_seed} (proxy seeds {proxy_seeds}); replay with: "
        f"pytest --ws-chaos-seed={run_seed} '{item.nodeid}'"
    )


def redact_logs(config: pytest.Config) -> None:
    """Redact log records of every logger, as pytest's logging plugin captures them."""
    logging_plugin = config.pluginmanager.get_plugin("logging-plugin")
    if logging_plugin is None:
        return
    redacting = RedactingFilter()
    for name in _LOG_HANDLERS:
        handler = getattr(logging_plugin, name, None)
        if handler is not None:
            handler.addFilter(redacting)
