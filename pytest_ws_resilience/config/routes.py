"""Routes: the URL of one endpoint of the server under test, from a path template.

Servers with many routes (``/ws/chat/<room>/``, ``/chat/{room}``) are reached by the same
rule everywhere: `ws_server.url_for`, ``ws_client_factory(path=...)`` and
``ws_storm.connect(path=...)`` all call `url_for`. Pure: strings in, a string out.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["fill_path", "route_url", "url_for"]


def fill_path(template: str, params: Mapping[str, Any] | None = None) -> str:
    """``template`` with each ``{name}`` replaced by ``params[name]``, percent-quoted.

    Raises:
        ValueError: a path not starting with "/", a placeholder with no value, a value
            given for no placeholder, or a malformed template.
    """
    if not template.startswith("/"):
        raise ValueError(f"path {template!r} must start with '/'")
    values = dict(params or {})
    try:
        names = [
            field for _, field, _, _ in string.Formatter().parse(template) if field is not None
        ]
    except ValueError as exc:
        raise ValueError(f"path template {template!r} is malformed: {exc}") from None
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"path template {template!r}: {{{name}}} is not a name")
    missing = [name for name in dict.fromkeys(names) if name not in values]
    if missing:
        raise ValueError(
            f"path template {template!r} needs a value for {', '.join(missing)} "
            f"(e.g. path_params={{{missing[0]!r}: ...}})"
        )
    unused = sorted(set(values) - set(names))
    if unused:
        raise ValueError(f"path {template!r} has no placeholder for {', '.join(unused)}")
    return template.format_map({name: quote(str(values[name]), safe="") for name in names})


def url_for(base_url: str, path: str, params: Mapping[str, Any] | None = None) -> str:
    """The ws:// URL of ``path`` (a template, see `fill_path`) on ``base_url``'s server.

    The scheme, host and port come from ``base_url``; its own path and query are
    replaced, so any endpoint of the server can be reached from the one configured.
    A ``path`` with a query (``/ws?room=1``) keeps it.
    """
    filled = fill_path(path, params)
    target = urlsplit(filled)
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, target.path, target.query, ""))


def route_url(
    base_url: str, url: str | None, path: str | None, path_params: Mapping[str, Any] | None
) -> str:
    """The URL a client connects to: ``url`` (default ``base_url``), with its path
    replaced by ``path`` filled from ``path_params`` (`url_for`).

    Raises:
        ValueError: ``path_params`` without ``path``, or a bad template (one line).
    """
    target = url or base_url
    if path is None:
        if path_params:
            raise ValueError("path_params= needs path= (a template such as '/chat/{room}')")
        return target
    return url_for(target, path, path_params)
