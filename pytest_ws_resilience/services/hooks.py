"""pytest glue of the services (``ws_services`` fixture and marker, --ws-require-services,
--ws-server-cmd). STUB: filled by the services work."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.settings import WsSettings

__all__ = ["configure"]


def configure(config: pytest.Config, settings: WsSettings) -> WsSettings:
    """Called by the plugin's pytest_configure before the settings are stored; returns
    the settings (possibly changed, e.g. by --ws-server-cmd) and registers the services'
    hook objects."""
    return settings
