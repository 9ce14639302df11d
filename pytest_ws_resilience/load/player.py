"""The step player: one user playing a `Scenario` on one `WsClient`, each timed step
reported as a `StepOutcome`.

The one place a scenario's steps mean something on a connection, shared by both
runners: ``ws_storm.run`` (in process: the outcomes go into a `StormResult`) and the
Locust user class (in Locust workers: each outcome becomes a Locust request event). One
player, so the two runners cannot disagree on what a step does or what failing it means.

Every wait is bounded by the settings: a connect by every handshake the client may try
(``connect_timeout`` per try), an expect by ``recv_timeout``, a close by
``close_timeout`` (plus a second of slack for the event loop). A server's failure is an
outcome, never an exception: `play` reports the failing step, closes the client
(bounded) and returns False. Only a bug in the scenario's own functions or a
cancellation propagates.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_ws_resilience.client.bounds import handshakes_bound
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.greeting import read_greeting
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsConnectionClosedError, WsResilienceError
from pytest_ws_resilience.load.error_kinds import error_kind
from pytest_ws_resilience.load.exchange import send_message
from pytest_ws_resilience.load.scenario import (
    Close,
    Connect,
    Expect,
    ExpectContract,
    Hold,
    Scenario,
    Send,
    Think,
    check_scenario,
)

__all__ = ["CONTRACT_ERROR_KIND", "StepOutcome", "outcome_error_kind", "play"]

#: The error kind of a run that broke its contract (the storm's errors count it).
CONTRACT_ERROR_KIND = "contract"

# "No frame": a reply may be None (JSON null), so None cannot say it.
_NOT_FOUND: Any = object()

# How many of the newest frames are searched first for a reply's receipt.
_RECENT = 8

# Slack over a settings bound for the event loop's own scheduling, as `Storm` allows.
_SLACK_S = 1.0


@dataclass(frozen=True)
class StepOutcome:
    """One timed step of one user, as it ended.

    Attributes:
        kind: ``connect``, ``rt`` (a reply), ``contract``, ``close``; a step that is not
            timed is reported only when it fails: ``send`` (the write failed) or
            ``hold`` (the connection ended while held).
        name: ``connect``, ``rt:<label>``, ``contract:<label>``, ``close``,
            ``send:<label>``, ``hold``: the name a report or Locust groups it by.
        elapsed_ms: from the step's start (for ``rt`` and ``contract``: from the last
            send) to its end or failure.
        error: why it failed; None when it passed.
        error_kind: `outcome_error_kind` of ``error`` (``timeout``, ``closed``,
            ``contract``, ...) when it failed.
        response_length: the size of what answered (the reply's text, or its JSON
            written compactly; for a contract, the run's frames), 0 when unknown.
    """

    kind: str
    name: str
    elapsed_ms: float
    error: BaseException | None = None
    error_kind: str | None = None
    response_length: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def outcome_error_kind(error: BaseException) -> str:
    """The kind a failed step counts as (`pytest_ws_resilience.load.error_kinds.error_kind`:
    ``contract`` for a broken contract)."""
    return error_kind(error)


def _length(frame: Any) -> int:
    """The size of a reply: its text or bytes, or its JSON written compactly (as
    servers mostly send it: the parsed frame is what ``expect`` returns)."""
    if isinstance(frame, str | bytes):
        return len(frame)
    try:
        return len(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
    except (TypeError, ValueError):
        return 0


def _received_at(client: WsClient, frame: Any) -> float | None:
    """When the client received ``frame`` (the very object a wait returned: its parsed
    JSON, or its raw text or bytes), from the client's log; None once the log dropped it."""
    log = client.log
    recent = log.since(log.last_index - _RECENT + 1)  # a reply is mostly among the last few
    for records in (recent, log.records[: -len(recent) or None]):
        for record in reversed(records):
            if record.data is frame or record.raw is frame:
                return record.received_at
    return None


def _connect_bound(client: WsClient, settings: WsSettings) -> float:
    """Every handshake the client may try, its backoff pauses, and some slack."""
    return handshakes_bound(len(client.auth_methods), settings.connect_retries, settings) + _SLACK_S


class _Player:
    """One user's play: the client, its clock and the report."""

    def __init__(
        self,
        client: WsClient,
        settings: WsSettings,
        report: Callable[[StepOutcome], None],
        index: int,
        on_send: Callable[[], None] | None,
    ) -> None:
        self.on_send = on_send
        self.client = client
        self.settings = settings
        self.report = report
        self.index = index
        self.last_send: float | None = None
        self.last_label = "message"
        self.connected_once = False

    def _greeting_free(self, frame: Any) -> bool:
        return read_greeting(frame, self.settings.greeting) is None

    async def connect(self) -> StepOutcome:
        started = time.monotonic()
        async with asyncio.timeout(_connect_bound(self.client, self.settings)):
            if self.connected_once:
                await self.client.reconnect()
            else:
                await self.client.connect()
        self.connected_once = True
        self.last_send = None
        handshake = self.client.metrics.handshake_s
        elapsed = handshake if handshake is not None else time.monotonic() - started
        return StepOutcome("connect", "connect", elapsed * 1000.0)

    async def send(self, step: Send) -> None:
        self.last_label = step.label
        self.last_send = time.monotonic()  # before the write: a reply cannot precede it
        await send_message(self.client, step.message_for(self.index))
        if self.on_send is not None:
            self.on_send()

    def _since_send(self, frame: Any = _NOT_FOUND) -> float:
        """Milliseconds from the last send to the receipt of ``frame`` (as a storm times
        a reply: when the client got it, not when this user's task resumed, which on a
        busy loop can be much later), else to now."""
        now = time.monotonic()
        start = self.last_send if self.last_send is not None else now
        end = _received_at(self.client, frame) if frame is not _NOT_FOUND else None
        return ((end if end is not None else now) - start) * 1000.0

    async def expect(self, step: Expect) -> StepOutcome:
        bound = self.settings.recv_timeout.value
        fields = step.match
        async with asyncio.timeout(bound + _SLACK_S):
            if fields:
                frame = await self.client.expect(timeout=bound, **fields)
            else:  # any reply: the first frame that is not the greeting
                frame = await self.client.expect(self._greeting_free, timeout=bound)
        elapsed = self._since_send(frame)
        return StepOutcome("rt", step.name, elapsed, response_length=_length(frame))

    async def expect_contract(self, step: ExpectContract) -> StepOutcome:
        bound = self.settings.recv_timeout.value
        async with asyncio.timeout(bound + _SLACK_S):
            result = await self.client.expect_contract(step.contract, timeout=bound)
        size = sum(_length(seen.event) for seen in result.observed)
        terminal = result.observed[-1].event if result.observed else _NOT_FOUND
        return StepOutcome("contract", step.name, self._since_send(terminal), response_length=size)

    async def hold(self, step: Hold) -> None:
        conn = self.client.connection
        if conn is None or step.seconds <= 0:
            return
        try:
            async with asyncio.timeout(step.seconds):
                await conn.wait_closed()
        except TimeoutError:
            return  # held for the whole time: the step passed
        raise WsConnectionClosedError(
            f"{self.client.name}: connection closed (code {conn.close_code}) while held "
            f"for {step.seconds:g}s",
            code=conn.close_code,
        )

    async def close(self) -> StepOutcome:
        started = time.monotonic()
        async with asyncio.timeout(self.settings.close_timeout.value + _SLACK_S):
            await self.client.close()
        return StepOutcome("close", "close", (time.monotonic() - started) * 1000.0)

    async def step(self, step: Any) -> StepOutcome | None:
        """Play one step; its outcome when it is timed, else None."""
        if isinstance(step, Connect):
            return await self.connect()
        if isinstance(step, Send):
            await self.send(step)
        elif isinstance(step, Expect):
            return await self.expect(step)
        elif isinstance(step, ExpectContract):
            return await self.expect_contract(step)
        elif isinstance(step, Hold):
            await self.hold(step)
        elif isinstance(step, Think):
            extra = random.uniform(0.0, step.jitter) if step.jitter else 0.0
            await asyncio.sleep(step.seconds + extra)
        elif isinstance(step, Close):
            return await self.close()
        return None

    def failed(self, step: Any, started: float, error: BaseException) -> StepOutcome:
        """The outcome of ``step`` failing with ``error``."""
        if isinstance(step, Expect | ExpectContract):
            kind, name, elapsed = step.name.split(":", 1)[0], step.name, self._since_send()
        else:
            kind = {Connect: "connect", Send: "send", Hold: "hold", Close: "close"}.get(
                type(step), "step"
            )
            name = f"send:{step.label}" if isinstance(step, Send) else kind
            elapsed = (time.monotonic() - started) * 1000.0
        return StepOutcome(kind, name, elapsed, error, outcome_error_kind(error))


def _is_server_failure(error: BaseException) -> bool:
    """True for what a server (or the network) makes happen: an outcome, not a bug."""
    return isinstance(error, WsResilienceError | OSError | TimeoutError | EOFError) or (
        type(error).__module__.startswith("websockets")
    )


async def play(
    scenario: Scenario,
    client: WsClient,
    *,
    report: Callable[[StepOutcome], None],
    settings: WsSettings,
    index: int = 0,
    on_send: Callable[[], None] | None = None,
) -> bool:
    """Play every step of ``scenario`` on ``client`` (not yet connected).

    Args:
        scenario: checked first (`check_scenario`).
        client: the user's client; its connection is opened by the scenario's connect.
        report: called with each timed step's `StepOutcome` as it ends, and with the
            failing step's (timed or not).
        settings: the bounds of every wait (connect, recv and close timeouts).
        index: the user's index, passed to message factories.
        on_send: called after each message written (a runner counts them: a run
            that sent and saw no reply checked nothing).

    Returns:
        True when every step passed; False after the first failing step, which is
        reported, after which the client is closed (bounded) and no step is played.

    Raises:
        ValueError: a scenario that cannot be played (before anything is sent).
        Exception: only a bug (e.g. in a message factory) or a cancellation: a server's
            failure (refused, timed out, closed, a broken contract) is an outcome.
    """
    check_scenario(scenario)
    player = _Player(client, settings, report, index, on_send)
    for step in scenario.steps:
        started = time.monotonic()
        try:
            outcome = await player.step(step)
        except Exception as error:
            if not _is_server_failure(error):
                raise
            report(player.failed(step, started, error))
            await _close_quietly(client, settings)
            return False
        if outcome is not None:
            report(outcome)
    return True


async def _close_quietly(client: WsClient, settings: WsSettings) -> None:
    """Close after a failure, bounded; a close that fails too changes nothing."""
    try:
        async with asyncio.timeout(settings.close_timeout.value + _SLACK_S):
            await client.close()
    except (Exception, TimeoutError):  # the failure is already reported
        return
