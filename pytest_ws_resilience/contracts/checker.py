"""The incremental contract checker: frames in, one verdict out (sans I/O).

A `ContractChecker` does no I/O and keeps no clock: the caller owns the socket and the
wait, hands it each received frame with its receive time (``feed``), and asks for the
verdict when the run ended or the wait gave up (``finish``). So the same checker serves
`WsClient.expect_contract` (the asyncio glue that feeds it from the event log while a
client waits), `EventContract.check` (a list of frames, no socket) and tests.

``feed`` runs on every received frame, so it only selects and records (O(1) per
frame); the rules are judged once, in ``finish`` (`pytest_ws_resilience.contracts.rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.contracts.keys import event_name
from pytest_ws_resilience.contracts.result import ContractResult, ObservedEvent
from pytest_ws_resilience.contracts.rules import judge
from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    from pytest_ws_resilience.contracts.contract import EventContract

__all__ = ["ContractChecker"]


class ContractChecker:
    """Checks one run of ``contract`` from frames fed in the order received.

    The caller drives it, as with any sans-I/O engine: call `feed` with every frame the
    connection receives, in order, until it returns True or the caller's own wait ends
    (a timeout, a closed connection, the end of a list); then call `finish` once to get
    the verdict. The checker never blocks, sleeps, reads a clock or raises for a broken
    rule: time comes in with each frame, and the verdict is a `ContractResult` that the
    caller raises or not (`ContractResult.raise_for_violations`).

    The run is ``correlation`` when given, else the first correlation value seen that
    is not in ``skip_runs`` (runs a client already checked). Frames that are not
    mappings (unless the contract names events with a ``key`` function, which then
    sees every frame), whose event name is not one of the contract's events (pings, pongs,
    greetings), or, with correlation, that lack the field or belong to another run,
    are ignored.

    Args:
        contract: the contract.
        correlation: the run to check; None: the first one seen.
        skip_runs: correlation values not to pick.
        started_at: when the check started (same clock as the ``at`` of ``feed``);
            the run's start is the earlier of this and its first frame.

    Raises:
        ValueError: ``correlation`` given to a contract without a correlation field.
    """

    __slots__ = (
        "_contract",
        "_done",
        "_field",
        "_frames",
        "_key",
        "_namer",
        "_names",
        "_positions",
        "_run",
        "_run_chosen",
        "_skip_runs",
        "_start",
        "_started_at",
        "_terminal",
        "_times",
    )

    def __init__(
        self,
        contract: EventContract,
        correlation: Any = None,
        *,
        skip_runs: frozenset[Any] = frozenset(),
        started_at: float | None = None,
    ) -> None:
        if correlation is not None and contract.correlation is None:
            raise ValueError(
                f"correlation={correlation!r} given, but contract {contract.label!r} has no "
                f"correlation field"
            )
        self._contract = contract
        self._field = contract.field
        self._key = contract.correlation
        self._namer = contract.key
        self._positions = contract._positions
        self._terminal = contract._terminal
        self._skip_runs = skip_runs
        self._started_at = started_at
        self._run: Any = correlation
        self._run_chosen = correlation is not None
        self._start: float | None = None
        self._done = False
        self._names: list[str] = []
        self._times: list[float] = []
        self._frames: list[Any] = []

    def __repr__(self) -> str:
        return redact(
            f"ContractChecker(contract={self._contract.label!r}, run={self._run!r}, "
            f"seen={len(self._names)}, done={self._done})"
        )

    @property
    def run(self) -> Any:
        """The correlation value of the run being checked; None until one is picked."""
        return self._run

    @property
    def done(self) -> bool:
        """True once the run's terminal event was fed."""
        return self._done

    def feed(self, event: Any, at: float) -> bool:
        """Take one received frame; True once the run's terminal event has arrived.

        After this returns True you must stop waiting for this run and call `finish`:
        the run is complete, and further frames are ignored (``feed`` keeps returning
        True). While it returns False, keep feeding every frame the connection
        receives, in the order received, frames of other runs and other traffic
        included (the checker picks its run's frames itself); when your wait ends
        first, call `finish` with the ``reason`` it ended. Cheap on every frame: it
        selects and records, and judges nothing.

        Args:
            event: the frame: parsed JSON (non-mappings are ignored), or, for a
                contract with a ``key`` function, whatever that function names (the
                parsed JSON, else the text, else the bytes).
            at: its receive time in seconds (e.g. ``time.monotonic()``), on the same
                clock as ``started_at``; budgets are measured on it.
        """
        if self._done:
            return True
        namer = self._namer
        if namer is not None:
            name = event_name(event, namer)
        elif isinstance(event, Mapping):
            name = event.get(self._field)
        else:
            return False
        if not isinstance(name, str) or name not in self._positions:
            return False
        key = self._key
        if key is not None:
            if not isinstance(event, Mapping) or key not in event:
                return False
            value = event[key]
            if self._run_chosen:
                if value != self._run:
                    return False
            else:
                try:
                    if value is None or value in self._skip_runs:
                        return False
                except TypeError:  # an unhashable value cannot name a run
                    return False
                self._run = value
                self._run_chosen = True
        if self._start is None:
            started = self._started_at
            self._start = at if started is None or at < started else started
        self._names.append(name)
        self._times.append(at)
        self._frames.append(event)
        if name == self._terminal:
            self._done = True
        return self._done

    def finish(self, *, reason: str | None = None) -> ContractResult:
        """Judge the run fed so far.

        Call it once `feed` returned True, or when the wait for the terminal event
        ended without it (then pass ``reason``). It judges every rule over the whole
        run (`pytest_ws_resilience.contracts.rules.judge`) and changes nothing: the
        result says what broke and the caller decides whether to raise
        (`ContractResult.raise_for_violations`).

        Args:
            reason: why the wait ended, when the terminal event was not fed (e.g.
                ``"terminal event not seen within recv_timeout=10s (profile local)"``);
                the terminal and every other unseen required event are then missing,
                with this reason.
        """
        if self._done:
            reason = None
        elif reason is None:
            reason = "terminal event not seen"
        start = self._start if self._start is not None else 0.0
        observed = tuple(
            ObservedEvent(name, at - start, frame)
            for name, at, frame in zip(self._names, self._times, self._frames, strict=True)
        )
        violations = judge(self._contract, observed, reason)
        return ContractResult(
            ok=not violations,
            contract=self._contract,
            run=self._run if self._run_chosen else None,
            violations=violations,
            observed=observed,
            reason=reason,
        )
