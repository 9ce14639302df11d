"""Driving Hypothesis' engine over a real connection.

Hypothesis' engine is synchronous; connections live in the test's event loop. The
engine runs in a worker thread of its own (`FuzzRunner.run`); each example it draws is
sent from the test's loop (``asyncio.run_coroutine_threadsafe``), so the connection is
the test's own ``WsClient`` (its auth, its report line, its teardown) and the test's
loop stays free between examples. The test awaits the thread with a bound (the
profile's budget); past it, the engine is told to stop and the result says so.

Per example (`FuzzRunner.exchange`): reconnect if the last example closed the
connection (bounded), send the frame, wait for any frame (the answer or an error frame)
within the answer bound, send the health message and wait for its reply. What that saw
is judged by `pytest_ws_resilience.fuzz.properties.judge`; a broken property fails the
example, so Hypothesis shrinks it. The last failing example Hypothesis runs is the one
it shrank to: that is `FuzzResult.minimal`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis import strategies as st

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.errors import (
    WsConfigError,
    WsConnectError,
    WsConnectionClosedError,
    WsMessageTooLargeError,
    WsTimeoutError,
)
from pytest_ws_resilience.fuzz.frames import FuzzFrame, encode, shown
from pytest_ws_resilience.fuzz.properties import Exchange, judge
from pytest_ws_resilience.fuzz.result import FuzzFailure, FuzzResult
from pytest_ws_resilience.load.exchange import send_message

__all__ = ["DEFAULT_HEALTH", "FuzzRunner", "Health"]

#: Slack on top of one example's own bounds before the engine thread gives up on it.
_EXAMPLE_SLACK_S = 5.0


@dataclass(frozen=True)
class Health:
    """The health message sent after every example, and the reply it must get.

    Args:
        message: a JSON value sent as a text frame.
        reply: the fields the reply has (``{"type": "pong"}``), or a predicate on any
            frame.
    """

    message: Any
    reply: Mapping[str, Any] | Callable[[Any], bool]

    def matches(self, frame: Any) -> bool:
        if callable(self.reply):
            return bool(self.reply(frame))
        return isinstance(frame, dict) and all(
            key in frame and frame[key] == value for key, value in self.reply.items()
        )


#: The reference server's application ping.
DEFAULT_HEALTH = Health({"type": "ping"}, {"type": "pong"})


def _any_frame(frame: Any) -> bool:
    return True


class _Stop(BaseException):
    """Ends Hypothesis' run at once: Hypothesis shrinks `Exception`s, and lets a
    `BaseException` through (as it does KeyboardInterrupt)."""


class _PropertyBroken(AssertionError):
    """A fuzzed message broke a property (Hypothesis shrinks it)."""


def _closed(exc: WsConnectionClosedError, client: WsClient, health: str) -> Exchange:
    code = exc.code if exc.code is not None else (client.close_code or 1006)
    return Exchange(answered=False, close_code=code, close_reason=exc.reason, health=health)


class FuzzRunner:
    """Sends fuzzed frames over one connection and judges what each one led to.

    Args:
        connect: opens the connection (a connected `WsClient`, e.g. from the test's
            client factory); called once, later failures reconnect the same client.
        answer_timeout: bound of the answer wait and of the health reply, seconds.
        connect_bound: bound of one reconnection, seconds (for the engine's own bound).
        health: the health message and reply; None checks no health.
        allowed_close_codes: close codes that are not failures (the next example
            reconnects).
        expect_answer: every message must get an answer (a frame) of its own; False
            for a protocol where some messages get none (the health reply then shows
            the server read the message).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[WsClient]],
        *,
        answer_timeout: float,
        connect_bound: float,
        health: Health | None = DEFAULT_HEALTH,
        allowed_close_codes: Collection[int] = (),
        expect_answer: bool = True,
    ) -> None:
        self._connect = connect
        self._expect_answer = expect_answer
        self._answer_timeout = answer_timeout
        self._health = health
        self._allowed = frozenset(allowed_close_codes)
        self._client: WsClient | None = None
        self._reconnects = 0
        self._max_reconnects = 0
        self._stop: str | None = None
        # One example: a reconnection, the send, the answer, the health round trip.
        self._example_bound = connect_bound + 4 * answer_timeout + _EXAMPLE_SLACK_S

    @property
    def client(self) -> WsClient | None:
        """The connection examples go over (None before the first one)."""
        return self._client

    # -- one example, in the test's loop --------------------------------------------

    async def _ready(self) -> WsClient | str:
        """The open connection, or why there is none (a stop reason)."""
        client = self._client
        try:
            if client is None:
                self._client = client = await self._connect()
            elif not client.connected:
                if self._reconnects >= self._max_reconnects:
                    return f"{self._reconnects} reconnections (the profile's bound)"
                self._reconnects += 1
                await client.reconnect()
        except (WsConnectError, WsTimeoutError) as exc:
            return f"the server could not be reached again: {exc}"
        return client

    async def exchange(self, frame: FuzzFrame) -> Exchange | str | None:
        """Send ``frame`` and observe: an `Exchange`, a stop reason (no connection), or
        None when the frame is above the client's size limit (not sent)."""
        client = await self._ready()
        if isinstance(client, str):
            return client
        client.reset_log()  # frames left over from the last example are not its answer
        bound = self._answer_timeout
        try:
            await send_message(client, frame.wire)  # text or bytes, by its type
            if self._expect_answer:
                await client.expect(_any_frame, timeout=bound)
        except WsMessageTooLargeError:
            return None
        except WsTimeoutError:
            return Exchange(answered=False, health="not checked", answer_bound_s=bound)
        except WsConnectionClosedError as exc:
            return _closed(exc, client, "not checked")
        health = self._health
        if health is None:
            return Exchange(answered=True, health="not checked", answer_bound_s=bound)
        try:
            await self._health_round_trip(client, health)
        except WsTimeoutError:
            return Exchange(answered=True, health="no reply", answer_bound_s=bound)
        except WsConnectionClosedError as exc:
            return _closed(exc, client, "closed")
        return Exchange(answered=True, answer_bound_s=bound)

    async def _health_round_trip(self, client: WsClient, health: Health) -> None:
        await client.send_text(encode(health.message))
        await client.expect(health.matches, timeout=self._answer_timeout)

    async def check_health(self) -> None:
        """Check, before any fuzzing, that the health message gets its reply: a health
        message the server does not speak would fail every example after a whole recv
        timeout each.

        Raises:
            WsConfigError: no reply (one line: what was sent, what to change).
            WsConnectError: the server could not be reached.
        """
        health = self._health
        if health is None:
            return
        client = await self._ready()
        if isinstance(client, str):
            raise WsConnectError(f"ws_fuzz: {client}")
        try:
            await self._health_round_trip(client, health)
        except (WsTimeoutError, WsConnectionClosedError) as exc:
            reply = "a frame it accepts" if callable(health.reply) else repr(health.reply)
            raise WsConfigError(
                f"ws_fuzz: the health message {shown(FuzzFrame('json', health.message), 120)} "
                f"got no {reply} before any fuzzing ({type(exc).__name__}): pass "
                "health=... and health_reply=... that your server answers, or health=None"
            ) from None

    async def replay(self, frame: FuzzFrame) -> FuzzFailure | None:
        """Send one frame and judge it: the failure, or None when every property held.

        Raises:
            WsConnectError: the server could not be reached.
        """
        self._max_reconnects = max(self._max_reconnects, self._reconnects + 1)
        seen = await self.exchange(frame)
        if isinstance(seen, str):
            raise WsConnectError(f"ws_fuzz.replay: {seen}")
        if seen is None:
            return FuzzFailure(frame, "not sent: above the client's max message size")
        problem = judge(seen, allowed_close_codes=self._allowed)
        return None if problem is None else FuzzFailure(frame, problem)

    # -- the engine, in a thread of its own -------------------------------------------

    def _engine(
        self,
        strategy: st.SearchStrategy[FuzzFrame],
        loop: asyncio.AbstractEventLoop,
        result: FuzzResult,
    ) -> None:
        """Run Hypothesis (in the worker thread) until it is done or told to stop."""
        started = time.perf_counter()

        def fuzz_one(frame: FuzzFrame) -> None:
            if self._stop is not None:
                raise _Stop(self._stop)
            result.examples_run += 1
            future = asyncio.run_coroutine_threadsafe(self.exchange(frame), loop)
            try:
                seen = future.result(timeout=self._example_bound)
            except FutureTimeout:
                future.cancel()
                self._stop = f"one example outlasted its bound of {self._example_bound:g} s"
                raise _Stop(self._stop) from None
            if isinstance(seen, str):
                self._stop = seen
                raise _Stop(seen)
            if seen is None:
                hypothesis.reject()
            problem = judge(seen, allowed_close_codes=self._allowed)
            if problem is not None:
                failure = FuzzFailure(frame, problem)
                if result.first_failure_s is None:
                    result.first_failure_s = time.perf_counter() - started
                    result.first_failure_example = result.examples_run
                result.add_failure(failure)
                result.minimal = failure  # the last one run is the shrunk one
                raise _PropertyBroken(problem)

        test = hypothesis.settings(
            max_examples=result.max_examples,
            deadline=None,  # network time is not the engine's business: our bounds are
            database=None,  # no example database: xdist workers cannot collide on it
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            report_multiple_bugs=False,
            print_blob=False,
            verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck),
        )(hypothesis.seed(result.seed)(hypothesis.given(strategy)(fuzz_one)))
        try:
            test()
        except _Stop:
            pass
        except _PropertyBroken:
            pass
        except hypothesis.errors.Unsatisfiable:
            self._stop = self._stop or "no frame fitted the client's max message size"
        except BaseExceptionGroup as group:  # Hypothesis' FlakyFailure: shrunk, then passed
            if group.subgroup(_PropertyBroken) is None:
                raise
            result.stopped = "flaky: the minimal message failed once, then passed"

    async def run(
        self,
        strategy: st.SearchStrategy[FuzzFrame],
        *,
        max_examples: int,
        seed: int,
        budget_s: float,
        max_reconnects: int,
        profile: str = "",
        replay_hint: str = "",
    ) -> FuzzResult:
        """Fuzz: Hypothesis in a worker thread, each example over this connection.

        Raises:
            WsConfigError: the health message gets no reply before any fuzzing.
            WsConnectError: the server could not be reached.
            WsTimeoutError: the engine thread did not stop after the budget ran out
                (one example stuck past every bound).
        """
        result = FuzzResult(
            seed=seed,
            profile=profile,
            max_examples=max_examples,
            health_checked=self._health is not None,
            replay_hint=replay_hint,
        )
        self._stop = None
        self._max_reconnects = self._reconnects + max_reconnects
        reconnects_before = self._reconnects
        await self.check_health()
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ws_fuzz")
        engine = asyncio.wrap_future(pool.submit(self._engine, strategy, loop, result))
        try:
            done, _ = await asyncio.wait({engine}, timeout=budget_s)
            if not done:
                self._stop = f"the budget of {budget_s:g} s ran out"
                done, _ = await asyncio.wait({engine}, timeout=self._example_bound)
                if not done:
                    raise WsTimeoutError(
                        f"ws_fuzz: the engine did not stop within {self._example_bound:g} s "
                        "of its budget"
                    )
            engine.result()  # an error of the engine itself (not a failing example)
        finally:
            stop = self._stop
            if stop is None:
                self._stop = "cancelled"  # a cancelled test: the thread ends at once
            pool.shutdown(wait=False)
        result.elapsed_s = time.perf_counter() - started
        result.reconnects = self._reconnects - reconnects_before
        if stop is not None and result.stopped is None:
            result.stopped = stop
        return result
