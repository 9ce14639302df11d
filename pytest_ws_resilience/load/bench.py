"""`AsyncBenchmark`: pytest-benchmark for coroutines (``ws_benchmark``).

pytest-benchmark times a *synchronous* call (pytest-benchmark #66): its ``benchmark``
fixture and ``pedantic`` mode call the target and read a clock around it. A coroutine
of the test cannot be driven that way from inside the test's running loop. So the rounds
run here, awaited in the test's own loop (where its connections live), each timed with
pytest-benchmark's timer; then the measured durations are handed to pytest-benchmark's
``pedantic`` mode through `ReplayTimer`, a clock that replays them. pytest-benchmark
keeps doing what it does well: statistics, the table, ``--benchmark-json``,
``--benchmark-compare``, ``--benchmark-disable``, ``--benchmark-skip``.

Trade-offs, as documented in docs/load.md: one iteration per round (no calibration
loop: an awaited round trip is far above the timer's resolution); the loop's other
tasks (client readers, keepalives) run during a round and count in it, as they would
in production; ``--benchmark-cprofile`` profiles the replay, not the coroutine.
When pytest-benchmark is disabled (``--benchmark-disable``, or under pytest-xdist where
it disables itself) the coroutine still runs once, untimed, so the test still checks
its result.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["AsyncBenchmark", "BenchmarkDisabledNote", "ReplayTimer"]

T = TypeVar("T")

#: What ``ws_benchmark`` says when it ran the coroutine once, untimed.
BenchmarkDisabledNote = (
    "ws_benchmark: pytest-benchmark is disabled ({why}): the coroutine ran once, untimed"
)


class ReplayTimer:
    """A clock for pytest-benchmark that replays durations measured elsewhere.

    pytest-benchmark reads the clock before and after each round; this clock advances
    by the next loaded duration between the two reads, so each round's duration is
    exactly one measured in the event loop.

    Args:
        measured_with: the timer the durations were measured with (named in reports).
    """

    def __init__(self, measured_with: Callable[[], float] = time.perf_counter) -> None:
        self.measured_with = measured_with
        self.__name__ = f"ws_benchmark[{getattr(measured_with, '__name__', measured_with)}]"
        self._pending: deque[float] = deque()
        self._now = 0.0
        self._in_round = False

    def __repr__(self) -> str:
        return f"ReplayTimer({self.__name__}, pending={len(self._pending)})"

    def load(self, durations: list[float]) -> None:
        self._pending.extend(durations)

    def __call__(self) -> float:
        if not self._in_round:
            self._in_round = True
            return self._now
        if not self._pending:
            raise RuntimeError(
                "the benchmark fixture's clock is driven by ws_benchmark in this test: "
                "use either benchmark or ws_benchmark, not both"
            )
        self._now += self._pending.popleft()
        self._in_round = False
        return self._now


class AsyncBenchmark:
    """The ``ws_benchmark`` fixture: ``result = await ws_benchmark(coro_fn, *args, **kwargs)``.

    Args:
        benchmark: pytest-benchmark's fixture for this test (built with ``timer``).
        timer: the `ReplayTimer` that fixture reads.
        min_rounds: rounds run at least, when ``rounds`` is not given.
        max_time: seconds spent in rounds (beyond ``min_rounds``), when ``rounds`` is
            not given.
        round_timeout: bound of one round (a hung coroutine fails, never hangs).
        on_disabled: called with a note when the coroutine ran once, untimed.
        disabled_reason: why pytest-benchmark is disabled, for that note.
    """

    def __init__(
        self,
        benchmark: Any,
        timer: ReplayTimer,
        *,
        min_rounds: int = 5,
        max_time: float = 1.0,
        round_timeout: float = 30.0,
        on_disabled: Callable[[str], None] | None = None,
        disabled_reason: str = "--benchmark-disable",
    ) -> None:
        self.benchmark = benchmark
        self.timer = timer
        self.min_rounds = min_rounds
        self.max_time = max_time
        self.round_timeout = round_timeout
        self.durations: list[float] = []
        self._on_disabled = on_disabled
        self._disabled_reason = disabled_reason

    def __repr__(self) -> str:
        return f"AsyncBenchmark(enabled={self.enabled}, rounds={len(self.durations)})"

    @property
    def enabled(self) -> bool:
        return not bool(self.benchmark.disabled)

    @property
    def stats(self) -> Any:
        """pytest-benchmark's statistics of this test (None when disabled)."""
        return self.benchmark.stats

    @property
    def extra_info(self) -> dict[str, Any]:
        """Saved with the benchmark (``--benchmark-json``), as pytest-benchmark's."""
        info: dict[str, Any] = self.benchmark.extra_info
        return info

    async def _timed(self, target: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T:
        clock = self.timer.measured_with
        async with asyncio.timeout(self.round_timeout):
            started = clock()
            result = await target(*args, **kwargs)
            self.durations.append(clock() - started)
        return result

    async def __call__(
        self,
        target: Callable[..., Awaitable[T]],
        *args: Any,
        rounds: int | None = None,
        warmup_rounds: int = 0,
        **kwargs: Any,
    ) -> T:
        """Await ``target(*args, **kwargs)`` round after round, in this event loop.

        Args:
            rounds: how many timed rounds; None: at least ``min_rounds`` and until
                ``max_time`` seconds were spent (pytest-benchmark's options and marker).
            warmup_rounds: untimed rounds first.

        Returns:
            The last round's result (the single run's when disabled).
        """
        if rounds is not None and (isinstance(rounds, bool) or rounds < 1):
            raise ValueError(f"rounds must be an int >= 1 or None, got {rounds!r}")
        if warmup_rounds < 0:
            raise ValueError(f"warmup_rounds must be >= 0, got {warmup_rounds!r}")
        if not self.enabled:
            async with asyncio.timeout(self.round_timeout):
                result = await target(*args, **kwargs)
            if self._on_disabled is not None:
                self._on_disabled(BenchmarkDisabledNote.format(why=self._disabled_reason))
            return self._replay(result, 1)
        for _ in range(warmup_rounds):
            async with asyncio.timeout(self.round_timeout):
                await target(*args, **kwargs)
        first = len(self.durations)
        result = await self._timed(target, args, kwargs)
        spent = self.durations[-1]
        planned = rounds if rounds is not None else self._auto_rounds(spent)
        for _ in range(planned - 1):
            result = await self._timed(target, args, kwargs)
        self.timer.load(self.durations[first:])
        return self._replay(result, planned)

    def _auto_rounds(self, first_round_s: float) -> int:
        """As pytest-benchmark: enough rounds to fill ``max_time``, at least ``min_rounds``."""
        if first_round_s <= 0:
            return self.min_rounds
        return max(self.min_rounds, math.ceil(self.max_time / first_round_s))

    def _replay(self, result: T, rounds: int) -> T:
        """Hand the measured rounds to pytest-benchmark (its stats, table and JSON)."""

        def replay() -> T:
            return result

        replayed: T = self.benchmark.pedantic(replay, rounds=rounds, iterations=1)
        return replayed
