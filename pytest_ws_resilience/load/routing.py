"""Where each connection of a storm goes: the storm's URL, another one, or a path
template filled per connection (per-client rooms).

Pure: URLs only (`config.routes` fills the template). One rule for every storm, the
scenario runs of ``Storm.run`` included: a bad URL or template is refused the same way
by all of them, before any connection opens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pytest_ws_resilience.config.routes import route_url
from pytest_ws_resilience.redaction import redact

__all__ = ["PathParams", "storm_route"]

#: The values of a path template's placeholders: one mapping for every connection, or a
#: factory called with the connection's index (per-client rooms: ``lambda i: {"room":
#: f"r{i % 10}"}``).
PathParams = Mapping[str, Any] | Callable[[int], Mapping[str, Any]] | None


def storm_route(
    base: str, url: str | None, path: str | None, params: PathParams
) -> Callable[[int], str]:
    """Connection index -> the URL it connects to: ``url`` (default ``base``), its path
    replaced by ``path`` filled from ``params`` (`config.routes.url_for`).

    Raises:
        ValueError: at once, for the first connection: ``params`` without ``path``, a
            non-ws URL, or a bad template.
    """
    target = url or base
    parts = urlsplit(target)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"storm url must be ws:// or wss://, got {redact(target)!r}")
    if path is None:
        if params is not None:  # a callable or an empty mapping is a mistake here too
            raise ValueError("path_params= needs path= (a template such as '/chat/{room}')")
        return lambda _: target

    def route(index: int) -> str:
        return route_url(target, None, path, params(index) if callable(params) else params)

    route(0)  # a bad template fails before any connection is made
    return route
