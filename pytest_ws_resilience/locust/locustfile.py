"""The locustfile of a distributed run: ``locust -f`` this module's path.

``ws_storm.distributed`` and ``ws-resilience-load`` start Locust with it; its one user
class plays the scenario of the run's spec (``--ws-spec``, from `SPEC_ENV` on the
master; the master hands it to the workers). A locustfile of your own can do the same
with its own `WsUser` subclasses (docs/distributed-load.md).
"""

from __future__ import annotations

from pytest_ws_resilience.locust.user import WsUser

__all__ = ["ScenarioUser"]


class ScenarioUser(WsUser):
    """Plays the run's scenario once per user."""
