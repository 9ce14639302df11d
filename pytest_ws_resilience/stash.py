"""Keys for state kept on the pytest ``Config`` stash (shared by plugin and fixtures)."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.settings import WsSettings
from pytest_ws_resilience.watch import TestWatch

__all__ = ["SETTINGS_KEY", "WATCH_KEY"]

#: The run's resolved settings, stored by the plugin at configure time.
SETTINGS_KEY = pytest.StashKey[WsSettings]()

#: What the current test watches (its clients, and the isolation guard once on).
WATCH_KEY = pytest.StashKey[TestWatch]()
