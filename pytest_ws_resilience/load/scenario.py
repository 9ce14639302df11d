"""`Scenario`: what one simulated user does, written once, played by two runners.

Pure data, no I/O. A scenario is a list of steps (connect, send, expect a reply, check an
event contract, hold the connection, think, close) built with an immutable builder::

    CHAT = (
        Scenario("chat")
        .connect()
        .send({"type": "user_message", "text": "hello"})
        .expect_contract(AGENT_EVENTS)
        .close()
    )

The same object is played in process by ``ws_storm.run(CHAT, users=100)`` and, in
Locust worker processes, by the Locust user class: both use one player
(`pytest_ws_resilience.load.player.play`), so a verdict cannot differ by runner. The
player names each timed step: ``connect``, ``rt:<label>`` (a reply, timed from the last
send), ``contract:<label>`` (a run checked against a contract, timed from the last send)
and ``close``.

Why pure and picklable: a scenario travels to Locust worker processes (pickled), and
those must not need asyncio or websockets to *read* it. Everything in a step is plain
data, except what the user hands in as a function: a message factory
(``send(make_message)``, called with the user's index) or a predicate in ``expect``'s
fields. Those pickle only when they are module-level functions (not lambdas, not local
functions); `check_picklable` says which step does not. The in-process runner does not
pickle, so a lambda works there.

Errors are found where they are written: each builder method refuses a step that cannot
be played after the steps before it (a send before a connect, an expect without a send,
a bad number), with one line; `check_scenario` checks a whole scenario (also one built
from steps directly) and that it connects at all.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_ws_resilience.config.bounds import MAX_SECONDS, check_seconds, shown
from pytest_ws_resilience.contracts.contract import EventContract
from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS, USER_MESSAGE

__all__ = [
    "AGENT_CHAT",
    "Close",
    "Connect",
    "Expect",
    "ExpectContract",
    "Hold",
    "Scenario",
    "Send",
    "Step",
    "Think",
    "check_picklable",
    "check_scenario",
    "default_label",
]

#: A message factory: called with the user's index (0, 1, 2... in a run), returns the
#: message. Must be a module-level function for a scenario that travels to Locust.
MessageFactory = Callable[[int], Any]


@dataclasses.dataclass(frozen=True)
class Connect:
    """Open the user's connection (auth as the settings say); a second connect after a
    close reconnects as the same user."""

    def describe(self) -> str:
        return "connect"


@dataclasses.dataclass(frozen=True)
class Send:
    """Send ``message``: text (str), binary (bytes), a JSON-able object, or a factory
    called with the user's index."""

    message: Any
    #: The label an `Expect` after it takes by default (the message's ``type``).
    label: str = "message"

    def message_for(self, index: int) -> Any:
        """The message user ``index`` sends."""
        return self.message(index) if callable(self.message) else self.message

    def describe(self) -> str:
        what = getattr(self.message, "__name__", "factory") + "(i)"
        return f"send {what if callable(self.message) else shown(self.message)}"


@dataclasses.dataclass(frozen=True)
class Expect:
    """Wait for a reply matching ``fields`` (as ``WsClient.expect``: a callable value is
    a predicate; no field: the first frame that is not the server's greeting), timed
    from the last send as ``rt:<label>``."""

    label: str
    #: The fields as (name, value) pairs: a tuple keeps the step hashable and immutable.
    fields: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return f"rt:{self.label}"

    @property
    def match(self) -> dict[str, Any]:
        """The fields as keywords of ``WsClient.expect``."""
        return dict(self.fields)

    def describe(self) -> str:
        shown_fields = ", ".join(f"{k}={shown(v)}" for k, v in self.fields) or "any reply"
        return f"expect {self.name} ({shown_fields})"


@dataclasses.dataclass(frozen=True)
class ExpectContract:
    """Check the next run against ``contract`` (``WsClient.expect_contract``), timed
    from the last send to its terminal event as ``contract:<label>``."""

    contract: EventContract
    label: str

    @property
    def name(self) -> str:
        return f"contract:{self.label}"

    def describe(self) -> str:
        return f"expect {self.name}"

    def __reduce__(self) -> tuple[Any, ...]:
        # An EventContract keeps its budgets in a read-only mapping proxy, which does not
        # pickle: the step travels as the contract's arguments and is rebuilt (validated
        # again) on the other side.
        return (_rebuild_expect_contract, (_contract_arguments(self.contract), self.label))


def _contract_arguments(contract: EventContract) -> dict[str, Any]:
    return {
        "events": contract.events,
        "field": contract.field,
        "key": contract.key,
        "correlation": contract.correlation,
        "terminal": contract.terminal,
        "repeatable": contract.repeatable,
        "optional": contract.optional,
        "budgets": dict(contract.budgets),
        "ordered": contract.ordered,
        "name": contract.name,
    }


def _rebuild_expect_contract(arguments: dict[str, Any], label: str) -> ExpectContract:
    return ExpectContract(EventContract(**arguments), label)


@dataclasses.dataclass(frozen=True)
class Hold:
    """Keep the connection open ``seconds`` (the client keeps receiving: the frames
    that arrive are still logged and watched, e.g. by the isolation detector); the server
    closing it meanwhile fails the step."""

    seconds: float

    def describe(self) -> str:
        return f"hold {self.seconds:g}s"


@dataclasses.dataclass(frozen=True)
class Think:
    """Wait between steps: ``seconds`` plus a uniform random extra from 0 to
    ``jitter``; nothing is sent or expected."""

    seconds: float
    jitter: float = 0.0

    def describe(self) -> str:
        extra = f"+0..{self.jitter:g}" if self.jitter else ""
        return f"think {self.seconds:g}{extra}s"


@dataclasses.dataclass(frozen=True)
class Close:
    """Close the connection (bounded by the close timeout), timed as ``close``."""

    def describe(self) -> str:
        return "close"


#: One step of a scenario.
Step = Connect | Send | Expect | ExpectContract | Hold | Think | Close
_STEP_TYPES = (Connect, Send, Expect, ExpectContract, Hold, Think, Close)


def default_label(message: Any) -> str:
    """The label of a reply to ``message``: its ``type`` when it has one, else
    ``"message"`` (a factory's message is not known before it is called)."""
    if isinstance(message, Mapping):
        kind = message.get("type")
        if isinstance(kind, str) and kind:
            return kind
    return "message"


def _check_message(message: Any) -> None:
    if callable(message) or isinstance(message, str | bytes | bytearray | memoryview):
        return
    try:
        json.dumps(message)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"send({shown(message)}): not JSON-able, text or bytes, nor a factory ({err})"
        ) from None


def _check_label(what: str, label: Any) -> None:
    if not isinstance(label, str) or not label:
        raise ValueError(f"{what} label must be a non-empty string, got {shown(label)}")


class _State:
    """Where a scenario stands after each step: what the next step may do."""

    def __init__(self) -> None:
        self.connected = False
        self.ever_connected = False
        self.sent = False  # a send since the last connect

    def step(self, position: int, step: Any) -> None:
        where = f"step {position + 1} ({_describe(step)})"
        if not isinstance(step, _STEP_TYPES):
            raise ValueError(f"{where}: not a scenario step (Connect, Send, Expect, ...)")
        if isinstance(step, Connect):
            if self.connected:
                raise ValueError(f"{where}: already connected (close() first)")
            self.connected = self.ever_connected = True
            self.sent = False
        elif isinstance(step, Think):
            check_seconds("think(seconds)", step.seconds, minimum=0.0)
            check_seconds("think(jitter)", step.jitter, minimum=0.0)
            if step.seconds + step.jitter > MAX_SECONDS:
                raise ValueError(f"{where}: seconds + jitter is over 1 day")
        elif not self.connected:
            raise ValueError(f"{where}: not connected (connect() first)")
        elif isinstance(step, Send):
            _check_message(step.message)
            _check_label("send", step.label)
            self.sent = True
        elif isinstance(step, Expect | ExpectContract):
            if not self.sent:
                raise ValueError(f"{where}: nothing sent on this connection to expect a reply to")
            _check_label("expect", step.label)
            if isinstance(step, Expect) and "timeout" in step.match:
                raise ValueError(
                    f"{where}: timeout is not a field to match: a scenario's expect is "
                    f"bounded by the recv timeout of the settings"
                )
            if isinstance(step, ExpectContract) and not isinstance(step.contract, EventContract):
                raise ValueError(f"{where}: expects an EventContract, got {shown(step.contract)}")
        elif isinstance(step, Hold):
            check_seconds("hold(seconds)", step.seconds, minimum=0.0)
        else:  # Close
            self.connected = False


def _describe(step: Any) -> str:
    return step.describe() if isinstance(step, _STEP_TYPES) else shown(step)


def check_scenario(scenario: Scenario) -> None:
    """Refuse a scenario that cannot be played.

    Raises:
        ValueError: one line naming the scenario and the first bad step: a send,
            expect, hold or close before a connect (or after a close), an expect with
            nothing sent on its connection, a bad number, or no connect at all.
    """
    if not isinstance(scenario, Scenario):
        raise ValueError(f"expected a Scenario, got {shown(scenario)}")
    state = _State()
    try:
        for position, step in enumerate(scenario.steps):
            state.step(position, step)
    except ValueError as err:
        raise ValueError(f"scenario {scenario.name!r}: {err}") from None
    if not state.ever_connected:
        raise ValueError(f"scenario {scenario.name!r} never connects: start it with connect()")


def check_picklable(scenario: Scenario) -> None:
    """Refuse a scenario that cannot travel to another process (Locust workers).

    Raises:
        ValueError: one line naming the first step holding a lambda or a local
            function (a message factory, a predicate, a contract's key).
    """
    for position, step in enumerate(scenario.steps):
        try:
            pickle.dumps(step)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise ValueError(
                f"scenario {scenario.name!r} step {position + 1} ({_describe(step)}) does not "
                f"pickle ({err}): use module-level functions, not lambdas or local functions"
            ) from None


@dataclasses.dataclass(frozen=True, init=False)
class Scenario:
    """What one simulated user does: steps played in order on one connection.

    Immutable: every builder method returns a new scenario, so a base scenario can be
    shared and extended. Each method refuses (``ValueError``, one line) a step that
    cannot follow the ones before it.

    Args:
        name: shown in reports and Locust's statistics.
        steps: the steps (`Connect`, `Send`, `Expect`, `ExpectContract`, `Hold`,
            `Think`, `Close`); checked by `check_scenario` when played.
    """

    name: str
    steps: tuple[Step, ...]

    def __init__(self, name: str = "scenario", steps: Sequence[Step] = ()) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Scenario name must be a non-empty string, got {shown(name)}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "steps", tuple(steps))

    def __repr__(self) -> str:
        return f"Scenario({self.name!r}, {len(self.steps)} steps)"

    def _then(self, step: Step) -> Scenario:
        state = _State()
        steps = (*self.steps, step)
        try:
            for position, each in enumerate(steps):
                state.step(position, each)
        except ValueError as err:
            raise ValueError(f"scenario {self.name!r}: {err}") from None
        return Scenario(self.name, steps)

    def _last_send(self) -> Send | None:
        for step in reversed(self.steps):
            if isinstance(step, Send):
                return step
            if isinstance(step, Connect):
                return None
        return None

    def connect(self) -> Scenario:
        """Open the user's connection (auth as the settings say), timed as ``connect``."""
        return self._then(Connect())

    def send(self, message: Any) -> Scenario:
        """Send ``message``: a JSON-able object, text, bytes, or a factory called with
        the user's index (module-level, to travel to Locust workers)."""
        label = "message" if callable(message) else default_label(message)
        return self._then(Send(message, label))

    def expect(self, label: str | None = None, **fields: Any) -> Scenario:
        """Wait for a reply matching ``fields`` (as ``WsClient.expect``; no field: the
        first frame that is not the greeting), timed from the last send as
        ``rt:<label>`` (default: the last sent message's ``type``, else ``message``)."""
        if label is None:
            last = self._last_send()
            label = last.label if last is not None else "message"
        return self._then(Expect(label, tuple(fields.items())))

    def expect_contract(self, contract: EventContract, *, label: str | None = None) -> Scenario:
        """Check the next run against ``contract``, timed from the last send to the
        terminal event as ``contract:<label>`` (default: the contract's name, else its
        events)."""
        if not isinstance(contract, EventContract):
            raise ValueError(
                f"scenario {self.name!r}: expect_contract takes an EventContract, got "
                f"{shown(contract)}"
            )
        return self._then(ExpectContract(contract, contract.label if label is None else label))

    def hold(self, seconds: float) -> Scenario:
        """Keep the connection open ``seconds``; it stays read and watched."""
        return self._then(Hold(seconds))

    def think(self, seconds: float, jitter: float = 0.0) -> Scenario:
        """Wait ``seconds`` plus a random 0..``jitter`` between steps."""
        return self._then(Think(seconds, jitter))

    def close(self) -> Scenario:
        """Close the connection, timed as ``close``."""
        return self._then(Close())

    def describe(self) -> str:
        """The steps, one per line, numbered, under the scenario's name."""
        lines = [f"scenario {self.name!r}:"]
        lines.extend(f"  {i + 1}. {step.describe()}" for i, step in enumerate(self.steps))
        return "\n".join(lines)


#: The reference server's agent chat, as one user does it: connect, send a
#: ``user_message``, check the run it starts against `AGENT_EVENTS` (timed as
#: ``contract:AGENT_EVENTS``), close. Plays the same in process (``ws_storm.run``) and in
#: Locust workers; under the ``leak`` fault the users see each other's runs.
AGENT_CHAT = (
    Scenario("agent_chat")
    .connect()
    .send({"type": USER_MESSAGE, "text": "hello from a load test"})
    .expect_contract(AGENT_EVENTS)
    .close()
)
