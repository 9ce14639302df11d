"""Bounded waits over a client's event log: ``expect`` (and its frame, text and bytes
forms), ``expect_sequence``, ``expect_contract``.

The asyncio side of waiting. The client's receiver appends each message to the
`EventLog` as websockets parses it and calls `EventWaiter.wake`; a waiter scans the
records it has not consumed yet and sleeps until the next wake. Nothing polls. What a
wait looks for is `pytest_ws_resilience.client.matching`'s; this module decides when to
look and when to give up:

- **A cursor.** ``expect`` consumes what it scanned: the next wait starts after the
  match, so the same frame never satisfies two waits.
- **A deadline per wait** (a sequence shares one): ``timeout`` or the recv timeout.
  One shared watchdog timer wakes waiters at the earliest deadline instead of a
  timeout handle per wait, which keeps a round trip lean.
- **The end of the stream** raises at once (`WsConnectionClosedError` naming who
  closed, the codes, the reasons and websockets' own message: `close_cause`) once the
  records that came before the close were scanned. The end is the close, or earlier,
  the moment websockets failed the connection for a protocol error: a wait does not sit
  out the closing handshake and then time out naming what it waited for.
- **A failing receive hook** surfaces in the next wait, since the receiver, which
  runs in websockets' protocol callback, cannot raise into the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_ws_resilience.client.close_cause import CloseCause, closed_error
from pytest_ws_resilience.client.eventlog import EventLog, LogRecord
from pytest_ws_resilience.client.matching import (
    BytesMatch,
    FrameWait,
    TextMatch,
    bytes_wait,
    describe_expected,
    frame_label,
    matches,
    recent_events,
    sequence_waits,
    text_wait,
)
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.contracts.keys import EventKey
from pytest_ws_resilience.contracts.result import ContractResult
from pytest_ws_resilience.errors import (
    WsConnectionClosedError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.redaction import redact

__all__ = ["EventWaiter"]


class EventWaiter:
    """The waiting side of one client's event log, across its connections.

    The client drives it: `attach` when a connection opens; its receiver `wake` after
    each message it logged, `end` when the connection is over (so does ``close()``), and
    `hook_failed` when a receive hook raised. The client's ``expect*`` methods wait
    through it.

    Args:
        log: the client's event log.
        label: the client's name, for errors.
        url: the client's URL, for errors (redacted when the error is built).
    """

    __slots__ = (
        "_arrived",
        "_carried",
        "_checked_runs",
        "_hook_error",
        "_label",
        "_log",
        "_url",
        "_watchdog",
        "attached",
        "cause",
        "close_code",
        "cursor",
        "ended",
    )

    def __init__(self, log: EventLog, label: str, url: str) -> None:
        self._log = log
        self._label = label
        self._url = url
        #: Index of the first record no wait has consumed.
        self.cursor = 0
        #: A connection was opened (waits before that are a usage error).
        self.attached = False
        #: The current connection is over and every frame it carried is logged.
        self.ended = False
        #: Close code of the connection that ended (None while open).
        self.close_code: int | None = None
        #: How the connection ended (who closed, codes, websockets' message), once known.
        self.cause: CloseCause | None = None
        self._arrived = asyncio.Event()
        self._watchdog: asyncio.TimerHandle | None = None
        self._hook_error: BaseException | None = None
        # Correlation values of runs already checked by expect_contract (not re-picked).
        self._checked_runs: set[Any] = set()
        # Records no wait consumed before a reconnect, as index ranges [start, stop):
        # plain waits start after them, contracts still see them (a run that began
        # before the disconnect is checked whole).
        self._carried: list[tuple[int, int]] = []

    # -- driven by the receiver and the client -------------------------------------------

    def attach(self) -> None:
        """A connection opened: frames may come again."""
        self.attached = True
        self.ended = False
        self.close_code = None
        self.cause = None

    def wake(self) -> None:
        """Wake every waiter (a frame was logged, or the stream ended)."""
        arrived = self._arrived
        arrived.set()
        arrived.clear()

    def end(self, close_code: int | None, cause: CloseCause | None = None) -> None:
        """The connection is over (closed by either side, failed by websockets for a
        protocol error, or its receiving failed); ``cause`` says how (kept when None)."""
        self.ended = True
        self.close_code = close_code
        if cause is not None:
            self.cause = cause
        self.wake()

    def failed(self, cause: CloseCause) -> None:
        """websockets failed the connection (`FailFastConnection.on_failure`): it ends
        now, with ``cause``. A method of the waiter, not a closure over the client, so
        that the connection holds no cycle back to its client (freed without the
        garbage collector, which would otherwise run more often on every test)."""
        self.end(cause.code, cause)

    def closed_error(self, head: str, tail: str = "") -> WsConnectionClosedError:
        """The error of a wait or a send on the ended connection: ``head``, then how
        it ended (`CloseCause.describe`), then ``tail``."""
        return closed_error(head, self.cause, code=self.close_code, tail=tail)

    def hook_failed(self, exc: BaseException) -> None:
        """Keep the first exception of a receive hook for the next wait to raise."""
        if self._hook_error is None:
            self._hook_error = exc

    def skip_received(self) -> None:
        """Start the next wait after everything received so far (a reconnect).

        What no wait consumed is carried, for contracts only: ``expect`` after a
        reconnect sees the new connection's frames, while ``expect_contract`` still
        counts the unconsumed events of a run that began before the disconnect (and
        a replay that repeats one of them is the contract's ``duplicated``).
        """
        stop = self._log.last_index + 1
        if self.cursor < stop:
            carried = self._carried
            if carried and carried[-1][1] == self.cursor:
                carried[-1] = (carried[-1][0], stop)
            else:
                carried.append((self.cursor, stop))
        self.cursor = stop

    def forget(self) -> None:
        """Start afresh after the log was cleared: runs already checked count again."""
        self.cursor = self._log.last_index + 1
        self._carried.clear()
        self._checked_runs.clear()

    def carried(self) -> list[LogRecord]:
        """The records carried over reconnects (received before one, consumed by no
        wait), oldest first; those the ring evicted are gone."""
        found: list[LogRecord] = []
        for start, stop in self._carried:
            found.extend(r for r in self._log.since(start) if r.index < stop)
        return found

    def _consume_carried(self, through: int) -> None:
        """A contract without correlation consumed everything through ``through``."""
        self._carried = [
            (max(start, through + 1), stop) for start, stop in self._carried if stop > through + 1
        ]

    def stop(self) -> None:
        """Cancel the watchdog timer (the client closed)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    # -- the waits -----------------------------------------------------------------------

    @staticmethod
    def _deadline(bound: TimeoutValue) -> float:
        return asyncio.get_running_loop().time() + bound.value

    async def expect(self, expected: Mapping[str, Any], bound: TimeoutValue) -> dict[str, Any]:
        """The first unconsumed event matching ``expected``; consumes through it.

        Raises:
            WsTimeoutError: nothing matched within ``bound``.
            WsConnectionClosedError: the connection closed first.
        """
        record = await self.watch(
            _accepting(expected), self._deadline(bound), _describing(expected), consume=True
        )
        if record is None:
            raise WsTimeoutError(
                f"{self._label}: no event matching {describe_expected(expected)} within "
                f"recv_timeout={bound}; {recent_events(self._log)}"
            )
        found: dict[str, Any] = record.data  # matches() accepts mappings only
        return found

    async def expect_frame(self, wait: FrameWait, bound: TimeoutValue) -> LogRecord:
        """The first unconsumed record ``wait`` accepts (any frame: JSON, text, bytes);
        consumes through it.

        Raises:
            WsTimeoutError: nothing matched within ``bound`` (names what came instead).
            WsConnectionClosedError: the connection closed first.
        """
        what = wait.what
        record = await self.watch(wait.accept, self._deadline(bound), lambda: what, consume=True)
        if record is None:
            raise WsTimeoutError(
                redact(
                    f"{self._label}: no {what} within recv_timeout={bound}; "
                    f"{recent_events(self._log)}"
                )
            )
        return record

    async def expect_text(self, match: TextMatch, bound: TimeoutValue) -> str:
        """The first unconsumed text frame ``match`` accepts (see `text_wait`)."""
        raw = (await self.expect_frame(text_wait(match), bound)).raw
        return raw if isinstance(raw, str) else raw.decode()  # always str: text frames only

    async def expect_bytes(self, match: BytesMatch, bound: TimeoutValue) -> bytes:
        """The first unconsumed binary frame ``match`` accepts (see `bytes_wait`)."""
        raw = (await self.expect_frame(bytes_wait(match), bound)).raw
        return raw if isinstance(raw, bytes) else raw.encode()  # always bytes: binary only

    async def expect_sequence(
        self,
        items: Sequence[str | Mapping[str, Any] | Callable[[Any], Any]],
        bound: TimeoutValue,
        key: EventKey | None = None,
    ) -> list[Any]:
        """Frames matching each item in order, others allowed in between; one deadline.

        An item is an event name (the ``type`` field, or the name ``key`` gives a
        frame), a mapping of fields, or a predicate on any frame.

        Raises:
            WsTimeoutError: a step was not seen in time (names the step, what matched
                before it and what came, in ``key``'s names or the frames' text).
            WsConnectionClosedError: the connection closed first.
        """
        waits = sequence_waits(items, key)
        deadline = self._deadline(bound)
        found: list[LogRecord] = []
        for number, wait in enumerate(waits, 1):
            step = f"sequence step {number}/{len(waits)} {wait.what}"
            record = await self.watch(wait.accept, deadline, step.__str__, consume=True)
            if record is None:
                seen = ", ".join(frame_label(r, key) for r in found)
                raise WsTimeoutError(
                    redact(
                        f"{self._label}: {step} not seen within recv_timeout={bound}; "
                        f"matched before it: [{seen}]; {recent_events(self._log, key)}"
                    )
                )
            found.append(record)
        return [record.frame for record in found]

    async def expect_contract(
        self, contract: EventContract, correlation: Any, bound: TimeoutValue
    ) -> ContractResult:
        """Check one run against ``contract`` through its terminal event.

        The run is the first one seen among the unconsumed events not checked before,
        or the one whose correlation value is ``correlation``. Events received before
        a reconnect that no wait consumed count too (`skip_received`): a run that
        began before the disconnect and ends after a resume is checked whole. With a
        correlation field the cursor stays put (interleaved runs can each be checked);
        without one it moves past the terminal event.

        Raises:
            ContractViolationError: the run broke the contract, its terminal event did
                not come within ``bound``, or the connection closed first.
        """
        deadline = self._deadline(bound)
        checker = contract.checker(
            correlation, skip_runs=frozenset(self._checked_runs), started_at=time.monotonic()
        )
        reason: str | None = None
        try:
            record: LogRecord | None = None
            # Events carried over a reconnect first: a run that began before it.
            for carried in self.carried():
                if checker.feed(carried.frame, carried.received_at):
                    record = carried
                    break
            if record is None:
                record = await self.watch(
                    lambda r: checker.feed(r.frame, r.received_at),
                    deadline,
                    lambda: f"contract {contract.name or contract.events!r}",
                    consume=False,
                )
            if record is None:
                reason = f"terminal event not seen within recv_timeout={bound}"
            elif contract.correlation is None:
                # Without a correlation field runs cannot be told apart: the next check
                # starts after this run's terminal event.
                self._consume_carried(record.index)
                self.cursor = max(self.cursor, record.index + 1)
        except WsConnectionClosedError as closed:
            reason = f"connection closed (code {closed.code}) before the terminal event"
        result = checker.finish(reason=reason)
        if result.run is not None:
            self._checked_runs.add(result.run)
        result.raise_for_violations()
        return result

    async def watch(
        self,
        accept: Callable[[LogRecord], bool],
        deadline: float,
        describe: Callable[[], str],
        *,
        consume: bool,
    ) -> LogRecord | None:
        """Feed unconsumed records, old then new, to ``accept`` until it says yes.

        Returns that record, or None when the ``deadline`` (loop time) passes. With
        ``consume`` the cursor moves past what was scanned. ``describe`` names the wait
        in errors; it is called only then (this is the hot path).

        Raises:
            WsResilienceError: no connection was ever opened.
            WsConnectionClosedError: the connection ended before a record was accepted.
            Exception: the first exception of a receive hook since the last wait.
        """
        scan_from = self.cursor
        log = self._log
        loop = asyncio.get_running_loop()
        while True:
            if self._hook_error is not None:
                error, self._hook_error = self._hook_error, None
                raise error
            for record in log.since(scan_from):
                scan_from = record.index + 1
                if accept(record):
                    if consume:
                        self.cursor = scan_from
                    return record
            if not self.attached:
                raise WsResilienceError(
                    f"{self._label} is not connected (call connect() first) while waiting "
                    f"for {describe()}"
                )
            if self.ended:
                if consume:
                    self.cursor = scan_from
                raise self.closed_error(
                    f"connection {self._label} to {redact(self._url)} closed "
                    f"(code {self.close_code}) while waiting for {describe()}",
                    recent_events(log),
                )
            if loop.time() >= deadline:
                return None
            self._arm_watchdog(loop, deadline)
            await self._arrived.wait()

    def _arm_watchdog(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Make sure waiters are woken no later than ``deadline``.

        One shared timer instead of a timeout per wait: back-to-back waits with
        deadlines ``now + recv_timeout`` find a timer already due earlier and create
        none. A waiter woken by a timer that is not its own deadline re-arms it for
        that deadline.
        """
        watchdog = self._watchdog
        if watchdog is not None and not watchdog.cancelled() and watchdog.when() <= deadline:
            return
        if watchdog is not None:
            watchdog.cancel()
        self._watchdog = loop.call_at(deadline, self._on_watchdog)

    def _on_watchdog(self) -> None:
        self._watchdog = None
        self.wake()


def _accepting(expected: Mapping[str, Any]) -> Callable[[LogRecord], bool]:
    """The record test of a wait for ``expected`` (non-JSON frames never match)."""
    return lambda record: record.data is not None and matches(record.data, expected)


def _describing(expected: Mapping[str, Any], label: str = "") -> Callable[[], str]:
    """What a wait for ``expected`` says it waited for, built only if an error needs it."""
    return lambda: f"{label}{describe_expected(expected)}"
