"""Loop-bound load fixtures (``ws_storm``, ``ws_benchmark``). STUB: filled by the load work."""

from __future__ import annotations

from types import ModuleType

__all__ = ["loop_scoped_load_fixtures"]


def loop_scoped_load_fixtures(loop_scope: str) -> ModuleType:
    """The load fixtures built for ``loop_scope`` (as `fixtures.loop_scoped_fixtures`)."""
    return ModuleType(f"pytest_ws_resilience.load.fixtures[{loop_scope}]")
