"""Keys of the state the plugin keeps on pytest's stashes, shared by its modules.

The one place where the role objects, the feature parts and the fixtures meet: a
fixture module imports this module (and `pytest_ws_resilience.plugin.watch`), never
another piece of glue. The types behind the keys are imported for the type checker
only, so importing the keys loads none of the modules that fill them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_ws_resilience.config.settings import WsSettings
    from pytest_ws_resilience.load.bench import ReplayTimer
    from pytest_ws_resilience.plugin.handoff import RunHandoff
    from pytest_ws_resilience.plugin.services import ServicesRuntime
    from pytest_ws_resilience.plugin.session_defaults import SessionDefaults

__all__ = [
    "CHAOS_KEY",
    "DEFAULTS_KEY",
    "REPLAY_TIMER_KEY",
    "RUN_KEY",
    "SERVER_URLS_KEY",
    "SERVICES_KEY",
    "SETTINGS_KEY",
    "CurrentTest",
]


class CurrentTest:
    """The test this process is setting up, running or tearing down (None between
    tests), for the session-wide parts that serve it without pytest's ``request``: the
    services and the client fixtures.

    The session's setup hook sets it before pytest fills the test's fixtures; its
    report hook clears it at the teardown's report, once the last fixture has finished.
    """

    __slots__ = ("item",)

    def __init__(self) -> None:
        self.item: pytest.Item | None = None

    def require(self, what: str) -> pytest.Item:
        """The current test, for ``what``; an error naming ``what`` between tests."""
        item = self.item
        if item is None:
            raise RuntimeError(f"{what} ran outside a test's setup, call or teardown")
        return item


# -- on config.stash: one per process --------------------------------------------------

#: The run's resolved settings, loaded once at configure time, never changed after.
SETTINGS_KEY: pytest.StashKey[WsSettings] = pytest.StashKey()

#: What every process of the run agrees on (run id, chaos seed, ...): drawn by the
#: run's first process, received by xdist workers.
RUN_KEY: pytest.StashKey[RunHandoff] = pytest.StashKey()

#: The services of this process (specs, handles, failures, the run's chores).
SERVICES_KEY: pytest.StashKey[ServicesRuntime] = pytest.StashKey()

#: The session's own settings, tokens and server, which the client fixtures use when
#: no conftest overrides them (`pytest_ws_resilience.plugin.session_defaults`).
DEFAULTS_KEY: pytest.StashKey[SessionDefaults] = pytest.StashKey()

#: The URL(s) this process's ``ws_server`` served: the report names the server tested.
SERVER_URLS_KEY: pytest.StashKey[list[str]] = pytest.StashKey()

# -- on item.stash: one per test ---------------------------------------------------------

#: Seeds of the chaos proxies a test made (printed when it fails, for replay).
CHAOS_KEY: pytest.StashKey[list[int]] = pytest.StashKey()

#: The clock a test's ``benchmark`` fixture reads when the test uses ``ws_benchmark``.
REPLAY_TIMER_KEY: pytest.StashKey[ReplayTimer] = pytest.StashKey()
