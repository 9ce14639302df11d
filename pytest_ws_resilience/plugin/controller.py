"""One ASGI app for all xdist workers (``app_share``): the controller serves it.

By default each xdist worker serves its own copy of the app (apps keep in-memory
state). With ``--ws-app-share`` / ``app_share = true`` the controller starts the app
once, before any worker exists, hands its URL to every worker through xdist's
``workerinput``, and stops it after all workers have finished: no worker ever starts or
stops it. Registered only on an xdist controller, so xdist's hooks are never declared
where xdist is absent.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsResilienceError
from pytest_ws_resilience.servers.under_test import (
    ServerUnderTest,
    open_server_under_test,
    token_factory_for,
)

__all__ = [
    "RunSeedController",
    "SharedAppController",
    "is_xdist_controller",
    "shared_app_url",
    "worker_chaos_seed",
]

#: The key under which workers find the shared app's URL in ``config.workerinput``.
WORKER_INPUT_KEY = "ws_resilience_shared_app_url"
#: The key under which workers find the run's chaos seed.
SEED_INPUT_KEY = "ws_resilience_chaos_seed"


def is_xdist_controller(config: pytest.Config) -> bool:
    """True in the process that distributes tests to xdist workers."""
    dist = getattr(config.option, "dist", "no")
    return dist != "no" and not hasattr(config, "workerinput")


def shared_app_url(config: pytest.Config) -> str | None:
    """On a worker of a shared-app run: the URL of the app the controller serves."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    url = workerinput.get(WORKER_INPUT_KEY)
    return url if isinstance(url, str) else None


class SharedAppController:
    """xdist controller hooks: serve the app before the workers, stop it after them."""

    def __init__(self, settings: WsSettings) -> None:
        self.settings = settings
        self.server: ServerUnderTest | None = None

    @pytest.hookimpl(tryfirst=True)  # before xdist's own sessionstart spawns the workers
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            self.server = open_server_under_test(self.settings, token_factory_for(self.settings))
        except WsResilienceError as err:
            pytest.exit(
                f"the ASGI app under test (shared by the xdist workers) failed to start:\n{err}",
                returncode=pytest.ExitCode.TESTS_FAILED,
            )

    def pytest_configure_node(self, node: Any) -> None:
        if self.server is not None:
            node.workerinput[WORKER_INPUT_KEY] = self.server.url

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.server is not None:
            self.server.close(timeout=self.settings.close_timeout.value)
            self.server = None


def worker_chaos_seed(config: pytest.Config) -> int | None:
    """On an xdist worker: the run's chaos seed, drawn once by the controller."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    seed = workerinput.get(SEED_INPUT_KEY)
    return seed if isinstance(seed, int) else None


class RunSeedController:
    """xdist controller hook: every worker gets the controller's chaos seed, so a run has
    one seed (printed once, replayable with ``--ws-chaos-seed``) however many workers."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[SEED_INPUT_KEY] = self.seed
