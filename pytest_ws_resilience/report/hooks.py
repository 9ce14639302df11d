"""pytest glue of the run report. STUB: filled by the reporting work."""

from __future__ import annotations

import pytest

__all__ = ["configure"]


def configure(config: pytest.Config) -> None:
    """Called by the plugin's pytest_configure: registers the report hooks."""
