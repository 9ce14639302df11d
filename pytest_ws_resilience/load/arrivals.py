"""When the users of a storm or a scenario run arrive: all at once, or on the clock.

With a rate, arrival ``i`` starts at ``i / rate`` seconds after the first, whatever the
earlier ones are doing (an open model, like k6's constant-arrival-rate): a slow
handshake does not delay the next user, so a slow server meets the load it would meet
in production instead of a politely reduced one. `Storm` and the scenario runner both
arrive this way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["arrive"]


async def arrive(
    count: int,
    rate: float | None,
    arrival: Callable[[int], Coroutine[Any, Any, None]],
    *,
    name: str,
    cancel_wait: float,
) -> None:
    """Start ``arrival(i)`` for each of ``count`` users (at once, or ``rate`` per second
    on the clock) and wait for them all.

    On an error or a cancellation, the arrivals still running are cancelled and waited
    for, at most ``cancel_wait`` seconds, and the error propagates: the caller closes
    what they opened.
    """
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    first_due = loop.time()
    try:
        for index in range(count):
            if rate is not None:
                delay = first_due + index / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(arrival(index), name=f"{name} {index}"))
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=cancel_wait)
        raise
