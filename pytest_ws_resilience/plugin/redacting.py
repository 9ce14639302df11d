"""Redaction of what pytest prints or writes: every output, through one rule.

Tokens are redacted at the source (reprs, error messages, the package's logs); this is
the net under that, for what pytest itself writes: failure tracebacks, assertion diffs
and the short-summary line built from them, ``--showlocals``, captured output, JUnit
properties (``record_property``), log records of any logger, the warnings summary and
the ``--debug`` trace file, before terminal, junitxml or xdist see them. What is hidden
(registered secrets and their segments, JWTs, URL passwords) is
`pytest_ws_resilience.redaction.redact`'s rule; here is only where it is applied. The
role objects call these steps from their hooks (``pytest_sessionstart``,
``pytest_runtest_makereport``, ``pytest_warning_recorded``); the entry point calls
`redact_debug_log` as soon as the run's secret is registered.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pytest

from pytest_ws_resilience.plugin.stash import CHAOS_KEY, RUN_KEY
from pytest_ws_resilience.redaction import RedactingFilter, redact

__all__ = [
    "add_failure_sections",
    "chaos_replay_hint",
    "quiet_pass",
    "redact_debug_log",
    "redact_logs",
    "redact_report",
    "redact_warning",
]

# How deep `_redact_fields` walks: pytest's reprs are 4 or 5 levels deep.
_MAX_REPR_DEPTH = 12
_LOG_HANDLERS = ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler")


def quiet_pass(report: pytest.TestReport) -> bool:
    """A report that passed and carries no text: no failure, no captured output, no
    user property. Nothing to redact or add to it (nor to annotate): most reports of a
    run, which the report hook then leaves as they are."""
    return (
        report.outcome == "passed"
        and report.longrepr is None
        and not report.sections
        and not report.user_properties
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
            # pytest's repr objects are dataclasses of strings: redacted field by field
            # they keep their colour and the crash message the short summary shows.
            # Anything else (or a leak the walk missed) is replaced by its redacted text.
            _redact_fields(report.longrepr, depth=0)
            again = str(report.longrepr)
            if redact(again) != again:
                report.longrepr = cleaned
    if report.sections:  # most passing tests captured nothing: no list to rebuild
        report.sections = [(title, redact(content)) for title, content in report.sections]
    if report.user_properties:
        report.user_properties = [_redacted_property(p) for p in report.user_properties]


def _redact_fields(obj: object, *, depth: int) -> None:
    """Redact, in place, every string held by a dataclass object (pytest's reprs)."""
    if depth > _MAX_REPR_DEPTH or not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        cleaned = _redacted_value(value, depth=depth + 1)
        if cleaned is not value:
            try:
                setattr(obj, field.name, cleaned)
            except (AttributeError, TypeError):  # frozen: the text fallback covers it
                return


def _redacted_value(value: object, *, depth: int) -> object:
    """``value`` with its strings redacted: a new str/list/tuple, the same object else."""
    if isinstance(value, str):
        cleaned = redact(value)
        return value if cleaned == value else cleaned
    if isinstance(value, (list, tuple)) and depth <= _MAX_REPR_DEPTH:
        items = [_redacted_value(item, depth=depth + 1) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    _redact_fields(value, depth=depth)
    return value


def _redacted_property(prop: tuple[str, object]) -> tuple[str, object]:
    """A ``record_property`` pair as junitxml writes it (``str`` of the value), redacted;
    the value itself when it holds no secret, so other plugins still get its type."""
    name, value = prop
    shown = str(value)
    cleaned = redact(shown)
    return (redact(name), value if cleaned == shown else cleaned)


def redact_warning(warning_message: warnings.WarningMessage) -> None:
    """Replace secrets in a recorded warning's message, in place, before the terminal's
    warnings summary (and xdist's hand-over to the controller) format it.

    The category is kept (the summary shows its name); the message object becomes a
    plain instance of the category with the redacted text, or a `UserWarning` when the
    category cannot be built from one string.
    """
    message = warning_message.message
    text = str(message)
    cleaned = redact(text)
    if cleaned == text:
        return
    category = warning_message.category
    try:
        replacement = category(cleaned)
    except Exception:  # a category with its own constructor signature
        replacement = UserWarning(cleaned)
    if str(replacement) != cleaned:
        replacement = UserWarning(cleaned)
    warning_message.message = replacement


def add_failure_sections(
    item: pytest.Item, report: pytest.TestReport, isolation: str | None = None
) -> None:
    """Add to a failed test's report its isolation report (``isolation``: the guard's
    verdict on a body that failed on its own) and how to replay its chaos."""
    if not report.failed:
        return
    if isolation is not None:
        report.sections.append(("ws-isolation", redact(isolation)))
    if item.stash.get(CHAOS_KEY, None):
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


def redact_debug_log(config: pytest.Config) -> None:
    """Redact pytest's trace output (``--debug``'s file, ``PYTEST_DEBUG``'s stderr).

    pytest opens the trace writer before any plugin's ``pytest_configure``: the writer
    is wrapped so every later line is redacted, and what a ``--debug`` file holds already
    (the header with the command line) is rewritten redacted. Call it once the run's
    secrets are registered; the tracer's writer is pluggy's private ``_writer``, so a
    pluggy without it gets a warning rather than a silent leak.
    """
    root = config.trace.root
    if not hasattr(root, "_writer"):
        if config.getoption("debug", None):
            config.issue_config_time_warning(
                pytest.PytestWarning("ws-resilience cannot redact the --debug trace file"), 2
            )
        return
    writer = root._writer
    if writer is None or getattr(writer, "_ws_redacting", False):
        return
    _rewrite_redacted(getattr(writer, "__self__", None))

    def redacting_writer(text: str) -> Any:
        return writer(redact(text))

    redacting_writer._ws_redacting = True  # type: ignore[attr-defined]
    root.setwriter(redacting_writer)


def _rewrite_redacted(stream: object) -> None:
    """Rewrite what an open, seekable text file (the ``--debug`` file) holds, redacted."""
    name = getattr(stream, "name", None)
    seekable = getattr(stream, "seekable", None)
    if not isinstance(name, str) or seekable is None or not seekable():
        return  # stderr (PYTEST_DEBUG): what is printed is printed
    stream.flush()  # type: ignore[attr-defined]
    try:
        with open(name, encoding="utf-8") as written:
            text = written.read()
    except OSError:
        return
    cleaned = redact(text)
    if cleaned != text:
        stream.seek(0)  # type: ignore[attr-defined]
        stream.truncate()  # type: ignore[attr-defined]
        stream.write(cleaned)  # type: ignore[attr-defined]
