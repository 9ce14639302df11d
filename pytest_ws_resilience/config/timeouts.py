"""The one timeout resolver: explicit > server-negotiated > profile > built-in default.

Pure logic. The loader resolves the configured layers once (profile, pyproject, command
line: `pytest_ws_resilience.config.loading`); `resolve_timeout` adds the two layers only
a connection knows (an explicit argument, a value the server negotiated). Each value
remembers where it came from, so a header line or an error can say
"recv_timeout=300s (profile staging)" instead of leaving users to guess which of four
places won. A loaded timeout is always a number: no caller needs a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_ws_resilience.config.bounds import check_seconds

__all__ = ["Source", "TimeoutValue", "resolve_timeout", "shown"]


class Source:
    """Names of the places a timeout can come from, highest precedence first."""

    EXPLICIT = "explicit"
    SERVER = "server"
    # Configured values carry a more precise source, e.g. "profile staging" or
    # "pyproject [tool.ws_resilience.envs.staging]"; DEFAULT is the built-in fallback.
    DEFAULT = "default"


@dataclass(frozen=True)
class TimeoutValue:
    """A timeout in seconds and the place it came from."""

    value: float
    source: str

    def __str__(self) -> str:
        return f"{self.value:g}s ({self.source})"


def shown(value: TimeoutValue | None) -> str:
    """A timeout as headers print it; an optional one that is not set reads
    ``unset (default)``."""
    return f"unset ({Source.DEFAULT})" if value is None else str(value)


def resolve_timeout(
    configured: TimeoutValue,
    *,
    explicit: float | None = None,
    negotiated: float | None = None,
    name: str = "timeout",
) -> TimeoutValue:
    """Pick the effective timeout by precedence.

    Args:
        configured: the value from the settings (profile, pyproject, or default),
            already carrying its own source.
        explicit: a value passed directly by the caller (wins over everything).
        negotiated: a value the server announced (e.g. ``recv_timeout`` in
            ``connection_established``); wins over the configured value.
        name: how an explicit value is named in its error.

    Raises:
        ValueError: an explicit value that is not a finite number of seconds within
            `pytest_ws_resilience.config.bounds` (one line naming ``name``).
    """
    if explicit is not None:
        return TimeoutValue(check_seconds(name, explicit), Source.EXPLICIT)
    if negotiated is not None:
        return TimeoutValue(float(negotiated), Source.SERVER)
    return configured
