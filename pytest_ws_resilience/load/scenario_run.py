"""The in-process runner of a `Scenario`: many users, each playing it on its own
`WsClient` in this event loop, measured into one `StormResult` (``Storm.run``).

Why a module of its own: `Storm` opens connections and measures the handshake and a
reply; a scenario says what each user does, and `pytest_ws_resilience.load.player.play`
plays it. This module only arranges the users' arrivals and turns each `StepOutcome`
into the storm's figures, so a scenario counts the same whether it runs here or in
Locust workers (which use the same player):

- ``connect`` -> ``connect_ms`` (and ``opened_s``);
- ``rt:<label>`` -> ``round_trip_ms`` (a reply received);
- ``contract:<label>`` -> ``contracts_checked`` (a broken contract is an error of kind
  ``contract``);
- every passing timed step -> ``step_ms[name]``; a failing one -> ``errors[kind]``;
- a user succeeds when every step of its scenario passed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.config.bounds import MAX_CONNECTIONS, check_count, check_rate
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.load.arrivals import arrive
from pytest_ws_resilience.load.collector import collector_paused
from pytest_ws_resilience.load.fd_limit import ensure_fd_limit
from pytest_ws_resilience.load.player import StepOutcome, play
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.load.rss import current_rss_bytes
from pytest_ws_resilience.load.scenario import Hold, Scenario, Think, check_scenario

__all__ = ["ScenarioRun"]


class ScenarioRun:
    """One run of ``scenario`` by ``users`` users, checked before anything opens.

    Args:
        scenario: what each user does (`check_scenario` refuses a bad one).
        users: how many users, each a fresh connection.
        spawn_rate: users arriving per second, on the clock (an open model: a slow
            user does not delay the next); None: all at once.
        label: names the run in reports; default from the scenario and the numbers.

    Raises:
        ValueError: a bad scenario, user count or rate (one line naming it).
    """

    def __init__(
        self,
        scenario: Scenario,
        users: int,
        spawn_rate: float | None = None,
        label: str | None = None,
    ) -> None:
        check_scenario(scenario)
        self.scenario = scenario
        self.users = check_count("users", users, minimum=1, maximum=MAX_CONNECTIONS)
        self.spawn_rate = (
            None if spawn_rate is None else check_rate("spawn_rate", spawn_rate, count=self.users)
        )
        if label is None:
            pace = "all at once" if self.spawn_rate is None else f"at {self.spawn_rate:g}/s"
            label = f"scenario {scenario.name} users={self.users} {pace}"
        self.label = label
        lasting = any(isinstance(step, Think | Hold) for step in scenario.steps)
        #: The users arrive at once and nothing waits on purpose: a storm's length.
        self.brief = self.spawn_rate is None and not lasting

    def __repr__(self) -> str:
        return f"ScenarioRun({self.scenario.name!r}, users={self.users}, label={self.label!r})"

    async def run(
        self,
        make_client: Callable[[int], WsClient],
        close: Callable[[Sequence[WsClient]], Awaitable[None]],
        settings: WsSettings,
    ) -> StormResult:
        """Make a client per user (``make_client(index)``, before the clock starts), play,
        then close them all with ``close`` (concurrent, bounded: `Storm`'s), even when
        the run is cancelled.

        The collector is paused as in a storm (`pytest_ws_resilience.load.collector`:
        why) when the users arrive at once and neither think nor hold; a run that may
        last (a spawn rate, a think, a hold) keeps it on, as cycles do: minutes without
        it would let cyclic garbage pile up."""
        with collector_paused() if self.brief else contextlib.nullcontext():
            ensure_fd_limit(self.users)  # before anything opens: one clear error, not EMFILEs
            clients = [make_client(index) for index in range(self.users)]
            try:
                return await self.play(clients, settings)
            finally:
                await close(clients)

    async def play(self, clients: Sequence[WsClient], settings: WsSettings) -> StormResult:
        """Play the scenario once on each of ``clients`` (one per user, not connected).

        The clients are left as the scenario leaves them (closed by its close step or
        its failure); the caller closes them all afterwards. A bug in a scenario's own
        function (a message factory) cancels every user and propagates.
        """
        result = StormResult("scenario", self.label, attempted=len(clients))
        rss_before = current_rss_bytes()
        ok = [False] * len(clients)
        started = time.monotonic()

        def sent() -> None:
            result.messages_sent += 1

        async def user(index: int) -> None:
            result.started_s.append(time.monotonic() - started)
            record = _recorder(result, clients[index], started)
            ok[index] = await play(
                self.scenario,
                clients[index],
                report=record,
                settings=settings,
                index=index,
                on_send=sent,
            )

        await arrive(
            len(clients),
            self.spawn_rate,
            user,
            name="scenario user",
            cancel_wait=settings.close_timeout.value + 1.0,
        )
        result.duration_s = time.monotonic() - started
        after = current_rss_bytes()
        result.rss_growth_bytes = (
            None if rss_before is None or after is None else after - rss_before
        )
        result.succeeded = sum(ok)
        return result


def _recorder(
    result: StormResult, client: WsClient, started: float
) -> Callable[[StepOutcome], None]:
    """The report callback of one user: each outcome into ``result``."""

    def record(outcome: StepOutcome) -> None:
        if outcome.error is not None:
            text = str(outcome.error) or type(outcome.error).__name__
            result.record_error(outcome.error_kind or "other", _named(client, outcome, text))
            return
        result.step_ms.setdefault(outcome.name, []).append(outcome.elapsed_ms)
        if outcome.kind == "connect":
            result.opened_s.append(time.monotonic() - started)
            result.connect_ms.append(outcome.elapsed_ms)
        elif outcome.kind == "rt":
            result.replies_received += 1
            result.round_trip_ms.append(outcome.elapsed_ms)
        elif outcome.kind == "contract":
            result.replies_received += 1
            result.contracts_checked += 1

    return record


def _named(client: WsClient, outcome: StepOutcome, text: Any) -> str:
    """``<client> <step>: <error>``: which user failed which step."""
    head = f"{outcome.name}: {text}"
    return head if client.name in head else f"{client.name} {head}"
