"""The asyncio runs behind ``ws_isolation.differential`` and ``ws_isolation.race``.

What to compare and how to report it is pure (`isolation/differential.py`,
`isolation/races.py`); this module makes the clients (through a `ClientSource` the
plugin gives the guard: users from ``ws_user_factory``, the server under test, the
settings, every client tracked by the test's watch so the detector and rules see it),
runs the scenario or the action, waits for the streams to go quiet, and closes the
clients, bounded, after each run. Every wait is bounded by the settings' timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pytest_ws_resilience.client.jitter import jitter_schedule, round_seed
from pytest_ws_resilience.client.release import connect_together, options_at, release_together
from pytest_ws_resilience.config.bounds import check_count
from pytest_ws_resilience.errors import WsResilienceError
from pytest_ws_resilience.isolation.differential import (
    COUNTER_KEYS,
    DifferentialResult,
    FrameNormaliser,
    StreamDiff,
    StreamOutcome,
    normalise_stream,
)
from pytest_ws_resilience.isolation.races import RaceResult, RoundOutcome
from pytest_ws_resilience.isolation.rules import receiver_of
from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser
    from pytest_ws_resilience.config.settings import WsSettings

__all__ = [
    "Action",
    "ClientSource",
    "Scenario",
    "run_differential",
    "run_race",
    "wait_quiet",
]

#: ``async def scenario(client, index)``: what user ``index`` does on its connection.
Scenario = Callable[["WsClient", int], Awaitable[Any]]
#: ``async def action(client, index)``: what each racing client does once released.
Action = Callable[["WsClient", int], Awaitable[Any]]

# Most users in one differential run or race round (each is a real connection).
MAX_RUN_USERS = 1000
MAX_ROUNDS = 10_000


class ClientSource(Protocol):
    """How the guard gets clients: the plugin's ``ws_isolation`` gives one."""

    @property
    def settings(self) -> WsSettings:
        """The run's settings (timeouts bound every wait)."""

    def new_user(self) -> TestUser:
        """A fresh user (``ws_user_factory()``)."""

    def make(self, user: TestUser, options: Mapping[str, Any]) -> WsClient:
        """A client for ``user`` to the server under test, not connected yet, watched
        by the test (detector, rules); ``options`` as ``ws_client_factory`` takes them."""

    async def retire(self, clients: Sequence[WsClient]) -> None:
        """Close ``clients`` (bounded) and stop watching them."""


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return redact(f"{type(error).__name__}: {first}" if first else type(error).__name__)


async def wait_quiet(clients: Sequence[WsClient], settle: float, bound: float) -> bool:
    """Wait until no client received a frame for ``settle`` seconds; False when the
    streams were still busy after ``bound`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    seen = sum(c.metrics.received for c in clients)
    while True:
        await asyncio.sleep(max(0.0, min(settle, deadline - loop.time())))
        now = sum(c.metrics.received for c in clients)
        if now == seen:
            return True
        if loop.time() >= deadline:
            return False
        seen = now


class _Run:
    """One run of clients: made, connected together, then each does its part."""

    def __init__(
        self,
        source: ClientSource,
        users: Sequence[TestUser],
        options: Mapping[str, Any],
        indices: Sequence[int],
    ) -> None:
        self.source = source
        #: Each client's user index (its ``options_at`` index: per-user rooms).
        self.indices = indices
        self.clients = [
            source.make(user, options_at(options, index))
            for user, index in zip(users, indices, strict=True)
        ]

    async def connect(self, delays: Sequence[float]) -> list[BaseException | None]:
        return await connect_together(self.clients, delays, self.source.settings)

    async def act(
        self,
        step: Callable[[WsClient, int], Awaitable[Any]],
        delays: Sequence[float],
        timeout: float,  # noqa: ASYNC109
    ) -> list[BaseException | None]:
        def starter(client: WsClient, index: int) -> Callable[[], Awaitable[Any]]:
            return lambda: step(client, index)

        outcomes = await release_together(
            [starter(c, i) for c, i in zip(self.clients, self.indices, strict=True)],
            delays,
            timeout=timeout,
            what="user",
        )
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    async def settle(self, settle: float) -> str | None:
        bound = self.source.settings.recv_timeout.value
        if await wait_quiet(self.clients, settle, bound):
            return None
        return f"the streams were still busy after {bound:g}s (recv timeout); compared as they were"


def _step_bound(settings: WsSettings, timeout: float | None) -> float:
    # A scenario's own waits are bounded by the recv timeout: this outer bound leaves
    # them room to fail with their own message first.
    if timeout is not None:
        return timeout
    return settings.recv_timeout.value + settings.close_timeout.value


def _users(source: ClientSource, users: int | Sequence[TestUser]) -> list[TestUser]:
    if isinstance(users, int):  # a bool too: check_count refuses it in one line
        count = check_count("users", users, minimum=1, maximum=MAX_RUN_USERS)
        return [source.new_user() for _ in range(count)]
    chosen = list(users)
    if not chosen:
        raise ValueError("users is empty: give a number of users or at least one TestUser")
    return chosen


def _check_settle(settle: object) -> float:
    if isinstance(settle, bool) or not isinstance(settle, int | float) or not 0 < settle <= 60:
        raise ValueError(f"settle must be a number of seconds in (0, 60], got {settle!r}")
    return float(settle)


async def run_differential(
    source: ClientSource,
    scenario: Scenario,
    users: int | Sequence[TestUser],
    *,
    settle: float,
    normalise: FrameNormaliser | None = None,
    ignore: Iterable[str] = (),
    counter_keys: Sequence[str] = COUNTER_KEYS,
    timeout: float | None = None,  # noqa: ASYNC109
    options: Mapping[str, Any],
) -> DifferentialResult:
    """Run ``scenario`` for each user alone (one after another), then for all at once;
    return each user's concurrent stream compared with its solo stream.

    Raises:
        WsResilienceError: a solo run failed (its connect or the scenario): with no
            clean baseline there is nothing to compare with.
    """
    if not callable(scenario):
        raise ValueError(f"scenario must be an async function (client, index), got {scenario!r}")
    settle = _check_settle(settle)
    people = _users(source, users)
    ignored = tuple(ignore)
    bound = _step_bound(source.settings, timeout)
    name = getattr(scenario, "__name__", type(scenario).__name__)
    notes: list[str] = []

    def outcome(client: WsClient, index: int, error: BaseException | None) -> StreamOutcome:
        receiver, connection = receiver_of(client)
        frames = normalise_stream(
            (record.frame for record in client.log.records),
            normalise=normalise,
            ignore=ignored,
            counter_keys=counter_keys,
        )
        text = None if error is None else _one_line(error)
        return StreamOutcome(index, receiver, connection, tuple(frames), text)

    async def run(indices: Sequence[int], label: str) -> list[StreamOutcome]:
        one = _Run(source, [people[i] for i in indices], options, indices)
        try:
            connect_errors = await one.connect([0.0] * len(indices))
            failed = [(i, e) for i, e in zip(indices, connect_errors, strict=True) if e]
            if failed:
                index, error = failed[0]
                raise WsResilienceError(
                    f"differential '{name}': user {index} could not connect in the {label} "
                    f"run: {_one_line(error)}"
                )
            errors = await one.act(scenario, [0.0] * len(indices), bound)
            note = await one.settle(settle)
            if note is not None:
                notes.append(f"{label} run: {note}")
            return [outcome(c, i, e) for c, i, e in zip(one.clients, indices, errors, strict=True)]
        finally:
            await source.retire(one.clients)

    solo: list[StreamOutcome] = []
    for index in range(len(people)):
        (alone,) = await run([index], f"solo (user {index})")
        if alone.error is not None:
            raise WsResilienceError(
                f"differential '{name}': the scenario failed for user {index} alone, so "
                f"there is no baseline to compare with: {alone.error}"
            )
        solo.append(alone)
    crowd = await run(list(range(len(people))), "concurrent")
    streams = tuple(StreamDiff.of(s, c) for s, c in zip(solo, crowd, strict=True))
    return DifferentialResult(scenario=name, users=len(people), streams=streams, notes=tuple(notes))


async def run_race(
    source: ClientSource,
    action: Action,
    users: int | Sequence[TestUser],
    *,
    rounds: int,
    seed: int,
    jitter: float,
    settle: float,
    findings: Callable[[], int],
    report: Callable[[], str],
    timeout: float | None = None,  # noqa: ASYNC109
    options: Mapping[str, Any],
    on_round: Callable[[RoundOutcome], None] | None = None,
) -> RaceResult:
    """Round after round, release fresh clients' connects, then their actions, each
    client after its seeded jitter; wait for the streams to go quiet; stop at the first
    round in which ``findings()`` grew or a connect or an action failed.

    Args:
        findings: the guard's count of findings (detector and rules) so far.
        report: the guard's report, taken at the failing round.
        on_round: told of each round when it ends (progress, benchmarks).
    """
    if not callable(action):
        raise ValueError(f"action must be an async function (client, index), got {action!r}")
    rounds = check_count("rounds", rounds, minimum=1, maximum=MAX_ROUNDS)
    settle = _check_settle(settle)
    bound = _step_bound(source.settings, timeout)
    outcomes: list[RoundOutcome] = []
    for number in range(1, rounds + 1):
        this_seed = round_seed(seed, number)
        people = _users(source, users)
        before = findings()
        one = _Run(source, people, options, range(len(people)))
        errors: list[str] = []
        notes: list[str] = []
        try:
            count = len(people)
            connect_errors = await one.connect(jitter_schedule(this_seed, count, jitter, "connect"))
            errors.extend(
                f"user {i}: connect failed: {_one_line(e)}"
                for i, e in enumerate(connect_errors)
                if e is not None
            )
            if not errors:
                action_errors = await one.act(
                    action, jitter_schedule(this_seed, count, jitter, "action"), bound
                )
                errors.extend(
                    f"user {i}: action failed: {_one_line(e)}"
                    for i, e in enumerate(action_errors)
                    if e is not None
                )
                note = await one.settle(settle)
                if note is not None:
                    notes.append(note)
        finally:
            await source.retire(one.clients)
        done = RoundOutcome(number, this_seed, findings() - before, tuple(errors), tuple(notes))
        outcomes.append(done)
        if on_round is not None:
            on_round(done)
        if done.caught:
            return RaceResult(len(people), rounds, seed, jitter, tuple(outcomes), report=report())
    return RaceResult(_count(users), rounds, seed, jitter, tuple(outcomes))


def _count(users: int | Sequence[TestUser]) -> int:
    return users if isinstance(users, int) else len(users)
