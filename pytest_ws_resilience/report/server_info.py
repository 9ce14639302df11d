"""The server a run really tested, as the report and the summary name it. Pure.

A ``--ws-server-cmd`` run used to be reported as the "embedded reference server": a CI
artefact naming the wrong system under test. `server_record` is the one description,
built from the configuration (`ServerChoice`) and what the processes actually served
(the URLs their ``ws_server`` had, with the port the run drew); the report's JSON
holds it as ``run.server``, the HTML page and the terminal summary show `server_line`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ws_resilience.config.settings import ServerChoice
from pytest_ws_resilience.redaction import redact

__all__ = ["server_line", "server_record"]


def server_record(
    choice: ServerChoice, *, urls: Sequence[str] = (), services: Sequence[str] = ()
) -> dict[str, Any]:
    """The tested server as JSON data.

    Args:
        choice: the run's configured server (``settings.server``).
        urls: the URLs the processes' ``ws_server`` served (one per worker for a
            started server; empty when no test asked for it).
        services: the names of the configured services.

    Returns:
        ``kind`` ("url", "app", "command" or "embedded"), ``description`` (one
        phrase), ``url`` (the first served URL, else the configured one, else None),
        ``urls`` (every served URL), ``app`` and ``app_mode`` ("thread" or
        "subprocess") and ``app_lifespan``, ``command``, ``path``, ``services``.
    """
    seen = list(dict.fromkeys(urls))
    app = choice.app
    return {
        "kind": choice.kind,
        "description": choice.describe(),
        "url": seen[0] if seen else choice.url,
        "urls": seen,
        "url_source": choice.url_source,
        "app": app,
        "app_mode": None if app is None else ("subprocess" if choice.app_subprocess else "thread"),
        "app_lifespan": None if app is None else choice.app_lifespan,
        "command": choice.command,
        "path": choice.path,
        "services": list(services),
    }


def server_line(record: Mapping[str, Any]) -> str:
    """The record in one line, e.g. ``command 'daphne -p {port} ...' at
    ws://127.0.0.1:PORT/ws/chat/; services: redis`` (secrets redacted)."""
    kind = record.get("kind")
    url = record.get("url")
    urls = record.get("urls") or []
    if kind == "app":
        mode = " in a subprocess" if record.get("app_mode") == "subprocess" else ""
        what = f"app {record.get('app')} (uvicorn{mode}, lifespan {record.get('app_lifespan')})"
    elif kind == "command":
        what = f"command {record.get('command')!r}"
    elif kind == "embedded":
        what = "embedded reference server"
    else:
        what = str(url or "-")
        url = None
    if url:
        what += f" at {url}"
        if len(urls) > 1:
            what += f" (+{len(urls) - 1} more, one per worker)"
    services = record.get("services") or []
    if services:
        what += "; services: " + ", ".join(str(s) for s in services)
    return redact(what)
