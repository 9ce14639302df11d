"""pytest glue of concurrent_safe scheduling under xdist. STUB: filled by the scheduling work."""

from __future__ import annotations

import pytest

__all__ = ["configure"]


def configure(config: pytest.Config) -> None:
    """Called by the plugin's pytest_configure: registers the scheduling hooks."""
