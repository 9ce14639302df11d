"""Releasing many clients' steps together: one barrier, then each client's own delay.

The asyncio half of `pytest_ws_resilience.client.jitter`: the one place where N
coroutines are lined up and let go at the same instant, used by
``ws_client_factory.many`` (handshakes) and ``ws_isolation.race`` (handshakes, then the
actions). Everything that can be prepared (clients built, tokens minted) is done before
the barrier, so the only thing between the release and the step is the seeded delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_ws_resilience.errors import WsTimeoutError

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.config.settings import WsSettings

__all__ = ["connect_together", "options_at", "release_together"]

T = TypeVar("T")


def options_at(options: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The client options of client ``index``: ``path_params`` may be a factory of the
    index (per-client rooms: ``lambda i: {"room": f"r{i % 5}"}``), as storms take it."""
    chosen = dict(options)
    params = chosen.get("path_params")
    if callable(params):
        chosen["path_params"] = params(index)
    return chosen


async def release_together(
    steps: Sequence[Callable[[], Awaitable[T]]],
    delays: Sequence[float],
    *,
    timeout: float,  # noqa: ASYNC109 - the bound of the whole release is the point
    what: str = "step",
) -> list[T | BaseException]:
    """Run every step at once: all wait at one barrier, then step ``i`` starts
    ``delays[i]`` seconds after the release.

    Returns each step's result or exception, in order (a step's failure does not stop
    the others). A step still running ``timeout`` seconds after the release is
    cancelled and its result is a `WsTimeoutError`.
    """
    if len(delays) != len(steps):
        raise ValueError(f"{len(steps)} steps but {len(delays)} delays")
    if not steps:
        return []
    loop = asyncio.get_running_loop()
    barrier = asyncio.Barrier(len(steps))
    released: list[float] = []  # the release instant, noted by the first step through

    async def run(index: int) -> T:
        await barrier.wait()
        if not released:
            released.append(loop.time())
        wait = released[0] + delays[index] - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return await steps[index]()

    tasks = [asyncio.ensure_future(run(index)) for index in range(len(steps))]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
    outcomes: list[T | BaseException] = []
    for index, task in enumerate(tasks):
        if task in pending or task.cancelled():
            outcomes.append(
                WsTimeoutError(f"{what} {index} did not finish within {timeout:g}s of the release")
            )
        elif (error := task.exception()) is not None:
            outcomes.append(error)
        else:
            outcomes.append(task.result())
    return outcomes


async def connect_together(
    clients: Sequence[WsClient], delays: Sequence[float], settings: WsSettings
) -> list[BaseException | None]:
    """Connect ``clients`` released by one barrier, each after its delay: each one's
    failure, or None, in order. Bounded by every attempt's connect timeout."""
    bound = settings.connect_timeout.value * (settings.connect_retries + 1) + 1.0
    outcomes = await release_together(
        [client.connect for client in clients], delays, timeout=bound, what="connect"
    )
    return [o if isinstance(o, BaseException) else None for o in outcomes]
