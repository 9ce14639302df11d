"""The ``--ws-report`` document: run info, summary and per-test records as JSON data.

One document feeds both formats: the JSON file is this document, and the HTML page is
rendered from it (and embeds it), so whatever the page shows can be recomputed from the
JSON. Every string goes through `redaction.redact` here, the one exit of report data.
Pure: writing the file is the pytest glue's job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.report.aggregate import Source, merge_records, summarize

__all__ = ["SCHEMA_VERSION", "build_document", "dumps", "is_html_path", "redact_tree"]

#: Bumped when a field changes meaning or goes away (new fields keep the version).
SCHEMA_VERSION = 1


def is_html_path(path: str) -> bool:
    """``--ws-report`` writes HTML when the path ends in ``.html`` / ``.htm``."""
    return path.lower().endswith((".html", ".htm"))


def redact_tree(value: Any) -> Any:
    """A copy of JSON data with every string (keys too) redacted, and non-finite numbers
    (not valid JSON) as None."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_document(*, run: Mapping[str, Any], sources: Sequence[Source]) -> dict[str, Any]:
    """The report of a run.

    Args:
        run: facts about the run (env, url, seed, timeouts, started/finished, args...);
            ``workers`` is added from the sources.
        sources: one per process that contributed (xdist workers, or the only process).
    """
    summary = summarize(sources)
    document = {
        "schema_version": SCHEMA_VERSION,
        "generator": "pytest-ws-resilience",
        "run": {**run, "workers": list(summary.workers)},
        "summary": summary.as_dict(),
        "tests": [r.as_dict() for r in merge_records(sources)],
    }
    redacted: dict[str, Any] = redact_tree(document)
    return redacted


def dumps(document: Mapping[str, Any]) -> str:
    """The document as JSON text (indented: people read these files too)."""
    return json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"
