"""What a WebSocket message fault is: its kinds, their attributes, what it selects.

A `MessageFault` names a kind (drop, delay, duplicate, reorder, close, abort,
swallow_pong, delay_ping, cut_after; and the frame faults fragment, corrupt, oversize,
whose frames `chaos.frame_faults` builds), a direction, a selector (message number, numbers,
opcode or predicate) and a toxicity. It validates everything when it is built, so a
typo fails where it is written rather than silently at the first message. `Message` is
what a selector predicate sees, and `select_matches` is the one rule for "does this
fault pick this message". `fault_findings` is the end-of-test verdict on armed faults:
one that never fired, or whose predicate raised, checked nothing
(`pytest_ws_resilience.vacuous`).

Pure, and free of ``websockets`` (whose package import loads `socket`): the frames
themselves are read by `chaos.frame_reader`, and `chaos.message_filter` applies these
faults to a byte stream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from pytest_ws_resilience.config.bounds import MAX_MESSAGE_BYTES
from pytest_ws_resilience.vacuous import NothingChecked

__all__ = [
    "CORRUPTIONS",
    "MESSAGE_FAULT_KINDS",
    "OPCODE_NAMES",
    "PREDICATE_RAISED",
    "Direction",
    "Message",
    "MessageFault",
    "Selector",
    "fault_findings",
    "select_matches",
]

#: What a filter records (a ``skipped`` decision's detail) when a fault's ``select``
#: predicate raised: the fault selects nothing there, and the test is told at its end.
PREDICATE_RAISED = "the select predicate raised"

Direction: TypeAlias = Literal["upstream", "downstream"]

#: Opcode names a selector may use, and `Message.opcode` values.
OPCODE_NAMES = ("text", "binary", "ping", "pong", "close")
_CONTROL_NAMES = frozenset({"ping", "pong", "close"})

#: attribute name -> default (``None``: required), per kind.
_KIND_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "drop": {},
    "delay": {"delay": None},
    "duplicate": {},
    "reorder": {"by": 1},
    "close": {"code": 1001, "reason": ""},
    "abort": {},
    "swallow_pong": {},
    "delay_ping": {"delay": None},
    "cut_after": {"count": None},
    "fragment": {"parts": 2, "ping": False},
    "corrupt": {"how": None},
    "oversize": {"limit": None},
}
MESSAGE_FAULT_KINDS = frozenset(_KIND_ATTRIBUTES)
#: Kinds that act on control frames of one opcode; every other kind acts on data
#: messages (or on control frames when ``select`` names a control opcode).
_CONTROL_KINDS = {"swallow_pong": "pong", "delay_ping": "ping"}
#: Kinds that act on data messages only, never on control frames.
_DATA_KINDS = frozenset({"reorder", "cut_after", "fragment", "corrupt", "oversize"})
#: What a ``corrupt`` fault breaks (``how``), and the close code RFC 6455 has the peer
#: answer with: invalid UTF-8 in a text message; a reserved bit no extension
#: negotiated; an opcode nobody defined; the wrong masking for the direction (a client
#: frame unmasked, a server frame masked).
CORRUPTIONS = MappingProxyType(
    {"invalid_utf8": 1007, "reserved_bit": 1002, "unknown_opcode": 1002, "wrong_mask": 1002}
)

#: Bounds on what a frame fault builds in memory: frames of one message (websockets'
#: peers close with 1009 past 4096 by default, so testing that stays possible), and the
#: size of a grown message (`config.bounds.MAX_MESSAGE_BYTES`).
_MAXIMUM = {"parts": 100_000, "limit": MAX_MESSAGE_BYTES - 1}

#: Close codes below 3000 that an endpoint may send: the registered ones, less those
#: that only report a condition (1004-1006, 1015). The same set as websockets'
#: ``EXTERNAL_CLOSE_CODES``, restated so this module need not import websockets (a test
#: keeps the two equal).
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


@dataclass(frozen=True)
class Message:
    """One WebSocket message (or control frame), as a selector predicate sees it.

    ``index`` is the 1-based number of the data message in its direction on its
    connection (0 for control frames). ``payload`` is unmasked and reassembled from
    fragments. ``compressed`` is True when the peers negotiated permessage-deflate
    (only with ``strip_compression=False``): the payload is then the compressed bytes.
    """

    index: int
    opcode: str
    payload: bytes
    compressed: bool = False

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (invalid bytes replaced, so predicates never raise)."""
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The payload parsed as JSON (raises `ValueError` when Python cannot decode it,
        nesting past the decoder's depth included: `pytest_ws_resilience.peer_json`)."""
        try:
            return json.loads(self.payload)
        except RecursionError as exc:
            raise ValueError(f"{self.describe()}: JSON nested too deep to decode ({exc})") from exc

    def describe(self) -> str:
        """A short label for decisions: ``message 3 (text, 112 bytes)``."""
        if self.index:
            return f"message {self.index} ({self.opcode}, {len(self.payload)} bytes)"
        return f"{self.opcode} frame ({len(self.payload)} bytes)"


Selector: TypeAlias = int | Collection[int] | str | Callable[[Message], bool] | None


@dataclass(frozen=True, eq=False)
class MessageFault:
    """One message fault: which messages it selects, and what it does to them.

    Built by ``ChaosProxy.add_message_fault``; construction validates everything, so a
    typo fails where it is written, not silently at the first message.

    Attributes:
        kind: ``drop``, ``delay`` (``delay`` ms), ``duplicate``, ``reorder`` (``by``: hold
            the message until that many later data messages passed, default 1),
            ``close`` (``code``, default 1001, and ``reason``: a close frame is sent
            instead of the message), ``abort`` (drop the TCP connection, no close frame),
            ``swallow_pong``, ``delay_ping`` (``delay`` ms), ``cut_after`` (``count``:
            forward that many selected messages, then abort), or a frame fault
            (`chaos.frame_faults`): ``fragment`` (``parts``, default 2, and ``ping``:
            a ping between each two fragments), ``corrupt`` (``how``, one of
            `CORRUPTIONS`) or ``oversize`` (``limit``: grow the message past it).
        direction: ``downstream`` (server to client) or ``upstream``.
        select: None (every data message), an int N (the N-th data message of the
            direction on a connection, 1-based), a collection of ints, an opcode name
            (``text``, ``binary``, ``ping``, ``pong``, ``close``) or a predicate on
            `Message` (called for data messages only).
        toxicity: probability that a selected message is affected, drawn from a seeded
            RNG of its own (per fault and connection). ``cut_after`` draws once per
            connection.
        name: unique name (the proxy assigns ``drop#1`` when empty).
        attributes: the kind's attributes, defaults filled in.
        target: only this connection index (1-based, accept order); None: all.
        expect_fire: the test relies on this fault acting: if it applied 0 times by
            the end of the test, or its predicate raised, the test fails (else it only
            warns, `fault_findings`).
    """

    kind: str
    direction: Direction = "downstream"
    select: Selector = None
    toxicity: float = 1.0
    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    target: int | None = None
    expect_fire: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.expect_fire, bool):
            raise ValueError(f"expect_fire must be True or False, not {self.expect_fire!r}")
        if self.kind not in _KIND_ATTRIBUTES:
            kinds = ", ".join(sorted(MESSAGE_FAULT_KINDS))
            raise ValueError(f"unknown message fault kind {self.kind!r}; expected one of {kinds}")
        if self.direction not in ("upstream", "downstream"):
            raise ValueError(
                f"message fault direction must be 'upstream' or 'downstream', "
                f"not {self.direction!r}"
            )
        if isinstance(self.toxicity, bool) or not isinstance(self.toxicity, int | float):
            raise ValueError(f"toxicity must be a number in [0, 1], not {self.toxicity!r}")
        if not 0.0 <= self.toxicity <= 1.0:
            raise ValueError(f"toxicity must be in [0, 1], not {self.toxicity!r}")
        if self.target is not None and (
            isinstance(self.target, bool) or not isinstance(self.target, int) or self.target < 1
        ):
            raise ValueError(f"target must be a connection index >= 1, not {self.target!r}")
        object.__setattr__(self, "select", _check_select(self.kind, self.select))
        object.__setattr__(self, "attributes", _check_attributes(self.kind, self.attributes))

    def applies_to(self, direction: str, connection: int) -> bool:
        """True when the fault is for this direction and this connection."""
        return self.direction == direction and (self.target is None or self.target == connection)

    def __repr__(self) -> str:
        attributes = ", ".join(f"{k}={v!r}" for k, v in self.attributes.items())
        return (
            f"MessageFault({self.name or self.kind}: {self.kind} {self.direction}, "
            f"select={_select_repr(self.select)}, toxicity={self.toxicity}"
            + (f", {attributes}" if attributes else "")
            + (f", target={self.target}" if self.target is not None else "")
            + ")"
        )


def _select_repr(select: Selector) -> str:
    if callable(select):
        return getattr(select, "__qualname__", "predicate")
    if isinstance(select, frozenset):
        return repr(sorted(select))
    return repr(select)


def _check_select(kind: str, select: Selector) -> Selector:
    """Validate a selector and normalise collections of indices to a frozenset."""
    if kind in _CONTROL_KINDS:
        # These kinds act on one control opcode; a predicate may narrow them down.
        if select is None or callable(select) or select == _CONTROL_KINDS[kind]:
            return None if isinstance(select, str) else select
        raise ValueError(
            f"{kind} acts on {_CONTROL_KINDS[kind]} frames; select must be None or a "
            f"predicate, not {select!r}"
        )
    if select is None or callable(select):
        return select
    if isinstance(select, str):
        if select not in OPCODE_NAMES:
            names = ", ".join(OPCODE_NAMES)
            raise ValueError(f"select={select!r} is not an opcode name; expected one of {names}")
        if select in _CONTROL_NAMES and kind in _DATA_KINDS:
            raise ValueError(f"{kind} acts on data messages only, not on {select} frames")
        return select
    if isinstance(select, bool):
        raise ValueError(f"select must be an index, indices, an opcode or a predicate: {select!r}")
    if isinstance(select, int):
        if select < 1:
            raise ValueError(f"message indices are 1-based; select={select} selects nothing")
        return select
    if isinstance(select, Collection):
        indices = frozenset(select)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in indices):
            raise ValueError(f"select must hold 1-based message indices, not {select!r}")
        return indices
    raise ValueError(f"select must be an index, indices, an opcode or a predicate: {select!r}")


def _check_attributes(kind: str, given: Mapping[str, Any]) -> Mapping[str, Any]:
    """Fill defaults, reject unknown or missing attributes and bad values."""
    known = _KIND_ATTRIBUTES[kind]
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = ", ".join(known) or "none"
        raise ValueError(f"{kind} has no attribute {unknown[0]!r}; its attributes: {allowed}")
    values = {**known, **given}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ValueError(f"{kind} needs the attribute {missing[0]!r}")
    if "delay" in values:
        delay = values["delay"]
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
            raise ValueError(f"{kind} delay is in milliseconds and must be >= 0, not {delay!r}")
        if math.isinf(delay):
            raise ValueError(f"{kind} delay must be finite")
    for name, minimum in (("by", 1), ("count", 0), ("parts", 2), ("limit", 0)):
        if name in values:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{kind} {name} must be an integer >= {minimum}, not {value!r}")
            if value > _MAXIMUM.get(name, value):
                raise ValueError(f"{kind} {name} must be at most {_MAXIMUM[name]:_}, not {value:_}")
    if not isinstance(values.get("ping", False), bool):
        raise ValueError(f"fragment ping must be True or False, not {values['ping']!r}")
    if "how" in values and values["how"] not in CORRUPTIONS:
        hows = ", ".join(CORRUPTIONS)
        raise ValueError(f"corrupt how={values['how']!r} is not one of {hows}")
    if kind == "close":
        if not isinstance(values["reason"], str):
            raise ValueError(f"close reason must be a string, not {values['reason']!r}")
        if not _sendable_close_code(values["code"]):
            raise ValueError(
                f"close code {values['code']!r} cannot be sent in a close frame "
                "(use 1000-1003, 1007-1014 or 3000-4999)"
            )
        if len(values["reason"].encode()) > 123:
            raise ValueError("close reason must fit in 123 bytes of UTF-8")
    return MappingProxyType(values)


def _sendable_close_code(code: Any) -> bool:
    """Whether an endpoint may put ``code`` in a close frame (RFC 6455, section 7.4)."""
    try:
        return code in _SENDABLE_CLOSE_CODES or 3000 <= code < 5000
    except TypeError:  # not a number
        return False


def select_matches(fault: MessageFault, message: Message) -> bool:
    """Whether ``fault.select`` picks ``message`` (no toxicity draw; predicates may raise)."""
    select = fault.select
    if fault.kind in _CONTROL_KINDS:
        if message.opcode != _CONTROL_KINDS[fault.kind]:
            return False
        return select is None or (callable(select) and bool(select(message)))
    if isinstance(select, str):
        return message.opcode == select
    if not message.index:
        return False  # control frames are selected by opcode name only
    if select is None:
        return True
    if isinstance(select, int):
        return message.index == select
    if isinstance(select, frozenset):
        return message.index in select
    return callable(select) and bool(select(message))


def fault_findings(
    proxy: str,
    faults: Iterable[MessageFault],
    *,
    applied: Mapping[str, int],
    predicate_errors: Mapping[str, tuple[int, str]],
    connections: int,
) -> list[NothingChecked]:
    """The "nothing was checked" findings of a proxy's message faults at a test's end.

    A fault that applied 0 times tested nothing: the client never used the proxy, or
    no message matched its selector (or every toxicity draw kept the message). A
    fault whose ``select`` predicate raised skipped those messages: the predicate is
    probably wrong (``message.json()["x"]`` on a frame without ``x``), even if the
    fault fired on others.

    Args:
        proxy: the proxy's name, for the lines.
        faults: every fault armed on the proxy during the test, removed ones included.
        applied: fault name -> times it applied.
        predicate_errors: fault name -> (times its predicate raised, the first error).
        connections: connections the proxy accepted.

    Returns:
        One finding per fault at fault (``required`` when armed with ``expect_fire``).
    """
    findings: list[NothingChecked] = []
    for fault in faults:
        subject = f"message fault {fault.name} ({fault.kind} {fault.direction}) on {proxy}"
        raised = predicate_errors.get(fault.name)
        if raised is not None:
            count, first = raised
            reason = f"its select predicate raised on {count} message(s), first: {first}"
        elif applied.get(fault.name, 0):
            continue
        elif not connections:
            reason = (
                "applied 0 times: the proxy accepted no connection (connect through "
                "proxy.url, e.g. ws_client_factory(url=proxy.url))"
            )
        else:
            reason = (
                f"applied 0 times in {connections} connection(s): no {fault.direction} "
                f"message matched select={_select_repr(fault.select)}"
                + (f" (toxicity {fault.toxicity:g})" if fault.toxicity < 1.0 else "")
            )
        findings.append(NothingChecked("chaos", subject, reason, required=fault.expect_fire))
    return findings
