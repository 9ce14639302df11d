"""``ws_fuzz``: what the fixture hands to a test.

`WsFuzz` turns one call's arguments into a strategy, a profile, a seed and a
`FuzzRunner` over one connection of the test, and keeps every result, so the fixture
can fail a test whose failing result nobody looked at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.fuzz.frames import FuzzFrame
from pytest_ws_resilience.fuzz.profiles import choose_profile
from pytest_ws_resilience.fuzz.result import FuzzFailure, FuzzResult
from pytest_ws_resilience.fuzz.runner import DEFAULT_HEALTH, FuzzRunner, Health
from pytest_ws_resilience.fuzz.strategies import frame_strategy

__all__ = ["WsFuzz"]

_DEFAULT: Any = object()


class WsFuzz:
    """The ``ws_fuzz`` fixture.

    ``result = await ws_fuzz(examples=[...], *, schema=None, health=..., ...)`` fuzzes
    the server under test over one connection and returns a `FuzzResult`;
    ``await ws_fuzz.replay(frame)`` sends one frame and judges it.

    Args:
        connect: opens the connection (the test's client factory, with options).
        settings: the run's settings (the recv timeout bounds each answer).
        seed_for: the seed of the n-th call when none is given (from the run's seed).
        option_profile: ``--ws-fuzz-profile``, if given.
        environ: the environment (``WS_FUZZ_PROFILE``, ``CI``).
        replay_hint: how to rerun the test (shown with a failure).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[WsClient]],
        settings: WsSettings,
        *,
        seed_for: Callable[[int], int],
        option_profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        replay_hint: str = "",
    ) -> None:
        self._connect = connect
        self._settings = settings
        self._seed_for = seed_for
        self._option_profile = option_profile
        self._environ = dict(environ or {})
        self._replay_hint = replay_hint
        self._runner: FuzzRunner | None = None
        #: Every result this test got, in order.
        self.results: list[FuzzResult] = []

    @property
    def client(self) -> WsClient | None:
        """The connection the last call fuzzed over (None before the first call); its
        ``events`` hold what the server answered to the last message."""
        return self._runner.client if self._runner is not None else None

    def _runner_for(
        self,
        health: Health | None,
        allowed_close_codes: Collection[int],
        answer_timeout: float | None,
        expect_answer: bool = True,
    ) -> FuzzRunner:
        runner = self._runner
        if runner is not None and runner.client is not None:
            connect: Callable[[], Awaitable[WsClient]] = _reuse(runner.client)
        else:
            connect = self._connect
        settings = self._settings
        self._runner = FuzzRunner(
            connect,
            answer_timeout=answer_timeout or settings.recv_timeout.value,
            connect_bound=settings.connect_timeout.value * (settings.connect_retries + 1),
            health=health,
            allowed_close_codes=allowed_close_codes,
            expect_answer=expect_answer,
        )
        return self._runner

    async def __call__(
        self,
        examples: Sequence[Any] = (),
        *,
        schema: Mapping[str, Any] | None = None,
        health: Any = _DEFAULT,
        health_reply: Mapping[str, Any] | Callable[[Any], bool] | None = None,
        max_examples: int | None = None,
        profile: str | None = None,
        seed: int | None = None,
        allowed_close_codes: Collection[int] = (),
        answer_timeout: float | None = None,
        binary: bool = True,
        expect_answer: bool = True,
    ) -> FuzzResult:
        """Fuzz the server with mutations of ``examples`` (and values of ``schema``).

        Args:
            examples: messages the client already sends (JSON values).
            schema: a JSON Schema of the messages (needs the extra ``schema``).
            health: the message sent after each example (default ``{"type": "ping"}``);
                None: no health check.
            health_reply: the fields its reply has, or a predicate on the reply
                (default ``{"type": "pong"}``; with your own ``health``: any frame).
            max_examples: overrides the profile's number of examples.
            profile: "local", "ci" or "nightly" (overrides the option and variables).
            seed: Hypothesis' seed (default: derived from the run's seed and the test,
                printed with a failure).
            allowed_close_codes: close codes that are no failure (e.g. 1003, 1008,
                1009 for a server that closes on bad input on purpose).
            answer_timeout: bound of each answer (default: the recv timeout).
            binary: also send binary frames.
            expect_answer: every message must get an answer of its own; False for a
                protocol where some messages get none (the health reply still must).

        Raises:
            ValueError: no examples and no schema, or an example that is not JSON.
            FuzzExtraMissingError: ``schema`` without hypothesis-jsonschema.
            WsConfigError: an unknown profile name, or a health message the server
                does not answer before any fuzzing.
        """
        strategy = frame_strategy(examples, schema=schema, binary=binary)
        chosen, source = choose_profile(
            explicit=profile,
            option=self._option_profile,
            environ=self._environ,
            ws_env=self._settings.env,
        )
        if max_examples is not None and max_examples < 1:
            raise ValueError(f"ws_fuzz(max_examples={max_examples}) must be at least 1")
        runner = self._runner_for(
            _health(health, health_reply), allowed_close_codes, answer_timeout
        )
        result = await runner.run(
            strategy,
            max_examples=max_examples or chosen.max_examples,
            seed=seed if seed is not None else self._seed_for(len(self.results)),
            budget_s=chosen.budget_s,
            max_reconnects=chosen.max_reconnects,
            profile=f"{chosen.name} ({source})",
            replay_hint=self._replay_hint,
        )
        self.results.append(result)
        return result

    async def replay(
        self,
        frame: FuzzFrame,
        *,
        health: Any = _DEFAULT,
        health_reply: Mapping[str, Any] | Callable[[Any], bool] | None = None,
        allowed_close_codes: Collection[int] = (),
        answer_timeout: float | None = None,
    ) -> FuzzFailure | None:
        """Send ``frame`` (e.g. ``result.minimal.frame``) once and judge it: the
        failure, or None when the server survived it."""
        runner = self._runner_for(
            _health(health, health_reply), allowed_close_codes, answer_timeout
        )
        return await runner.replay(frame)


def _health(message: Any, reply: Mapping[str, Any] | Callable[[Any], bool] | None) -> Health | None:
    if message is None:
        return None
    if message is _DEFAULT:
        return DEFAULT_HEALTH if reply is None else Health(DEFAULT_HEALTH.message, reply)
    return Health(message, reply if reply is not None else (lambda frame: True))


def _reuse(client: WsClient) -> Callable[[], Awaitable[WsClient]]:
    """Hand the open connection of the last call to the next one."""

    async def connect() -> WsClient:
        if not client.connected:
            await client.reconnect()
        return client

    return connect
