"""Report-side hooks: secrets are redacted from everything pytest prints or writes.

Tokens are redacted at the source (reprs, error messages, the package's logs); these
hooks are the net under that: failure tracebacks, assertion diffs, captured output and
log records of any logger, before terminal, junitxml or xdist see them.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_ws_resilience.plugin.stash import CHAOS_KEY, CHAOS_SEED_KEY, ISOLATION_REPORT_KEY
from pytest_ws_resilience.redaction import RedactingFilter, redact

__all__ = ["chaos_replay_hint", "pytest_runtest_makereport", "pytest_sessionstart"]

_LOG_HANDLERS = ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    redact_report(report)
    isolation = item.stash.get(ISOLATION_REPORT_KEY, None)
    if report.failed and report.when == "call" and isolation is not None:
        report.sections.append(("ws-isolation", redact(isolation)))
    if report.failed and item.stash.get(CHAOS_KEY, None):
        report.sections.append(("ws-chaos", chaos_replay_hint(item)))
    return report


def chaos_replay_hint(item: pytest.Item) -> str:
    """How to replay a failed test's chaos: the run seed and the command."""
    run_seed = item.config.stash.get(CHAOS_SEED_KEY, None)
    proxy_seeds = ", ".join(str(s) for s in item.stash.get(CHAOS_KEY, []))
    return (
        f"chaos seed {run_seed} (proxy seeds {proxy_seeds}); replay with: "
        f"pytest --ws-chaos-seed={run_seed} '{item.nodeid}'"
    )


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


def pytest_sessionstart(session: pytest.Session) -> None:
    """Redact log records of every logger, as pytest's logging plugin captures them."""
    logging_plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    if logging_plugin is None:
        return
    redacting = RedactingFilter()
    for name in _LOG_HANDLERS:
        handler = getattr(logging_plugin, name, None)
        if handler is not None:
            handler.addFilter(redacting)
