"""Keys for state kept on the pytest ``Config`` stash (shared by plugin and fixtures)."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.plugin.watch import TestWatch

__all__ = [
    "CHAOS_KEY",
    "CHAOS_SEED_KEY",
    "ISOLATION_REPORT_KEY",
    "SERVICES_STARTED_KEY",
    "SETTINGS_KEY",
    "WATCH_KEY",
]

#: The run's resolved settings, stored by the plugin at configure time.
SETTINGS_KEY = pytest.StashKey[WsSettings]()

#: What the current test watches (its clients, and the isolation guard once on).
WATCH_KEY = pytest.StashKey[TestWatch]()

#: The run's chaos seed (``--ws-chaos-seed``, or drawn once at random).
CHAOS_SEED_KEY = pytest.StashKey[int]()

#: Seeds of the chaos proxies a test made (printed when it fails, for replay).
CHAOS_KEY = pytest.StashKey[list[int]]()

#: The isolation report of a test that failed on its own (added to its failure report).
ISOLATION_REPORT_KEY = pytest.StashKey[str]()

#: Services this process started (or adopted), one line each ("name: how"), for the
#: terminal summary and the report.
SERVICES_STARTED_KEY = pytest.StashKey[list[str]]()
