"""The WebSocket-aware layer of the chaos proxy: faults on whole messages, not bytes.

A byte-level proxy can delay, slice or cut a stream, but it cannot lose *one* message
and keep the next, because it does not know where messages start. `MessageFilter`
does: it watches one direction of one proxied connection, passes the HTTP upgrade
through, then follows the WebSocket frames (parsed with the ``websockets`` sans-I/O
code, `websockets.frames.Frame.parse`) and applies the `MessageFault` s that select
each message: drop, delay, duplicate, reorder, inject a close, abort, cut after N,
swallow pongs, delay pings.

Pure: bytes in, a list of `Emit` / `Abort` out; no sockets, no clock, randomness from
the `random.Random` it is handed. The proxy (`pytest_ws_resilience.chaos.proxy`) owns
the I/O and the timing of delayed bytes.

Two rules keep it honest:

* The original bytes of every frame are forwarded (masks included); a message is never
  re-serialized. Only injected close frames are built here.
* With no fault for its direction the filter does not parse frames at all: it walks the
  frame headers to know where messages start (so the message index stays exact and a
  fault added later begins at a frame boundary) and forwards each chunk as it came.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from websockets.exceptions import ProtocolError
from websockets.extensions.base import Extension
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader
from websockets.typing import ExtensionName

from pytest_ws_resilience.chaos.timing import Decision, derive_rng

__all__ = [
    "MESSAGE_FAULT_KINDS",
    "OPCODE_NAMES",
    "Abort",
    "Direction",
    "Emit",
    "Message",
    "MessageFault",
    "MessageFilter",
    "Selector",
    "select_matches",
]

Direction: TypeAlias = Literal["upstream", "downstream"]

#: Opcode names a selector may use, and `Message.opcode` values.
OPCODE_NAMES = ("text", "binary", "ping", "pong", "close")
_CONTROL_NAMES = frozenset({"ping", "pong", "close"})
_OPCODE_NAME = {
    Opcode.TEXT: "text",
    Opcode.BINARY: "binary",
    Opcode.PING: "ping",
    Opcode.PONG: "pong",
}
_OPCODE_NAME[Opcode.CLOSE] = "close"

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
}
MESSAGE_FAULT_KINDS = frozenset(_KIND_ATTRIBUTES)
#: Kinds that act on control frames of one opcode; every other kind acts on data
#: messages (or on control frames when ``select`` names a control opcode).
_CONTROL_KINDS = {"swallow_pong": "pong", "delay_ping": "ping"}

#: An HTTP upgrade longer than this is not a WebSocket handshake we can follow.
_MAX_HANDSHAKE = 64 * 1024


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
        """The payload parsed as JSON (raises `ValueError` when it is not JSON)."""
        return json.loads(self.payload)

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
            ``swallow_pong``, ``delay_ping`` (``delay`` ms) or ``cut_after`` (``count``:
            forward that many selected messages, then abort).
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
    """

    kind: str
    direction: Direction = "downstream"
    select: Selector = None
    toxicity: float = 1.0
    name: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    target: int | None = None

    def __post_init__(self) -> None:
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

    @property
    def selects_control_frames(self) -> bool:
        """True when the fault acts on ping, pong or close frames rather than messages."""
        return self.kind in _CONTROL_KINDS or (
            isinstance(self.select, str) and self.select in _CONTROL_NAMES
        )

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
        if select in _CONTROL_NAMES and kind in ("reorder", "cut_after"):
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
    for name, minimum in (("by", 1), ("count", 0)):
        if name in values:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{kind} {name} must be an integer >= {minimum}, not {value!r}")
    if kind == "close":
        if not isinstance(values["reason"], str):
            raise ValueError(f"close reason must be a string, not {values['reason']!r}")
        try:
            Close(values["code"], values["reason"]).check()
        except (ProtocolError, TypeError) as exc:
            raise ValueError(
                f"close code {values['code']!r} cannot be sent in a close frame "
                "(use 1000-1003, 1007-1014 or 3000-4999)"
            ) from exc
        if len(values["reason"].encode()) > 123:
            raise ValueError("close reason must fit in 123 bytes of UTF-8")
    return MappingProxyType(values)


@dataclass(frozen=True)
class Emit:
    """Bytes to forward: original frames as received (or an injected close frame).

    ``delay`` (seconds) holds these bytes and everything after them in the same
    direction; order is always kept.
    """

    data: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class Abort:
    """Drop the TCP connection on both sides without a close frame (the peer sees 1006).

    Emits listed before it must be written before the connection is dropped.
    """

    reason: str


class _KeepReservedBits(Extension):
    """Lets `Frame.parse` read frames whose RSV1 bit is set (permessage-deflate).

    Only seen with ``strip_compression=False``. Nothing is decompressed: the filter
    forwards original bytes and the peers do their own decoding.
    """

    name = ExtensionName("x-chaos-keep-reserved-bits")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            return dataclasses.replace(frame, rsv1=False, rsv2=False, rsv3=False)
        return frame

    def encode(self, frame: Frame) -> Frame:  # pragma: no cover - never encodes
        return frame


_PARSE_EXTENSIONS = [_KeepReservedBits()]


class _Garbage(Exception):
    """The bytes are not WebSocket frames; the filter falls back to passing them through."""


def _frame_header(
    buf: bytes | bytearray, pos: int, mask: bool
) -> tuple[int, int, int, bool] | None:
    """(header length, payload length, opcode, fin) of the frame at ``pos``; None if cut short.

    Only the frame *boundaries* are computed here, so the fast path can skip payloads
    without copying or unmasking them; frames are decoded by `Frame.parse`.
    """
    available = len(buf) - pos
    if available < 2:
        return None
    head1 = buf[pos]
    head2 = buf[pos + 1]
    if bool(head2 & 0x80) != mask:
        raise _Garbage("incorrect masking")
    length = head2 & 0x7F
    size = 2
    if length == 126:
        size = 4
        if available < size:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
    elif length == 127:
        size = 10
        if available < size:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
    if mask:
        size += 4
        if available < size:
            return None
    return size, length, head1 & 0x0F, bool(head1 & 0x80)


def _parse_frame(raw: bytes, mask: bool) -> Frame:
    """Decode one complete frame with the websockets sans-I/O parser."""
    reader = StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=mask, max_size=None, extensions=_PARSE_EXTENSIONS)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    except (ProtocolError, EOFError) as exc:
        raise _Garbage(str(exc)) from exc
    raise _Garbage("incomplete frame")  # pragma: no cover - raw always holds a whole frame


class _Output:
    """Collects what one `MessageFilter.feed` call forwards, merging adjacent emits."""

    def __init__(self) -> None:
        self.items: list[Emit | Abort] = []
        self._parts: list[bytes] = []
        self._delay = 0.0

    def emit(self, data: bytes, delay: float = 0.0) -> None:
        if not data:
            return
        # Bytes after a delayed emit are held behind it anyway, so they can join it.
        if self._parts and delay > self._delay:
            self._flush()
        if not self._parts:
            self._delay = delay
        self._parts.append(data)

    def abort(self, reason: str) -> None:
        self._flush()
        self.items.append(Abort(reason))

    def result(self) -> list[Emit | Abort]:
        self._flush()
        return self.items

    def _flush(self) -> None:
        if self._parts:
            data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self.items.append(Emit(data, self._delay))
            self._parts = []
            self._delay = 0.0


@dataclass
class _Partial:
    """A fragmented data message being collected until its final frame."""

    index: int
    opcode: str
    compressed: bool
    raws: list[bytes]
    payloads: list[bytes]


@dataclass
class _Held:
    """A message a reorder fault holds until ``remaining`` later messages have passed."""

    fault: str
    message: Message
    data: bytes
    remaining: int


_HANDSHAKE, _FRAMES, _PASSTHROUGH, _DEAD = range(4)


class MessageFilter:
    """One direction of one proxied connection: bytes in, what to forward out. Pure.

    Args:
        direction: ``upstream`` (client to server: frames are masked) or ``downstream``.
        connection: the connection's 1-based index, for decisions and ``target``.
        faults: returns the current message faults (all of them; the filter picks its
            direction and connection). Called for every chunk and message, never cached,
            so faults added or removed at any time take effect at the next message.
        rng: seeds one RNG per fault for toxicity draws (the proxy derives it from the
            run's seed, the connection and the direction).
        record: receives a `Decision` for every fault application.
        strip_compression: remove ``Sec-WebSocket-Extensions`` from the upgrade request
            (upstream), so permessage-deflate is never negotiated and payloads stay
            readable by predicates, and so dropping a message cannot corrupt the peer's
            decompression context (context takeover makes every compressed message
            depend on the ones before it).
    """

    def __init__(
        self,
        direction: Direction,
        *,
        connection: int,
        faults: Callable[[], Sequence[MessageFault]],
        rng: random.Random,
        record: Callable[[Decision], None],
        strip_compression: bool = True,
    ) -> None:
        if direction not in ("upstream", "downstream"):
            raise ValueError(f"direction must be 'upstream' or 'downstream', not {direction!r}")
        self.direction: Direction = direction
        self.connection = connection
        self._faults = faults
        self._record = record
        self._strip_compression = strip_compression
        self._mask = direction == "upstream"
        self._seed = rng.getrandbits(64)
        self._rngs: dict[str, random.Random] = {}
        self._phase = _HANDSHAKE
        self._handshake = bytearray()
        # Boundary tracking of frames forwarded without parsing (the fast path).
        self._head = bytearray()  # start of a header split across chunks (already forwarded)
        self._skip = 0  # payload bytes of a forwarded frame still to come
        self._committed = False  # a forwarded message still has continuation frames to come
        self._index = 0  # data messages seen in this direction
        # The slow path: frames parsed and faults applied.
        self._buffer = bytearray()
        self._partial: _Partial | None = None
        self._held: list[_Held] = []
        self._close_injected = ""  # the name of the close fault that ended this direction
        self._cut_counts: dict[str, int] = {}
        self._cut_enabled: dict[str, bool] = {}

    @property
    def active(self) -> bool:
        """False until the HTTP upgrade completed in this direction (and after an abort)."""
        return self._phase == _FRAMES

    @property
    def messages(self) -> int:
        """Data messages seen in this direction so far (the last message index)."""
        return self._index

    @property
    def holding(self) -> int:
        """Messages held by reorder faults, waiting for later messages to pass."""
        return len(self._held)

    def feed(self, data: bytes) -> list[Emit | Abort]:
        """Take the next bytes of the stream; return what to forward, in order."""
        if not data or self._phase == _DEAD:
            return []
        if self._phase == _PASSTHROUGH:
            return [Emit(bytes(data))]
        out = _Output()
        if self._phase == _HANDSHAKE:
            data = self._feed_handshake(bytes(data), out)
            if not data or self._phase != _FRAMES:
                return out.result()
        if self._idle() and not self._current_faults():
            out.emit(bytes(data))
            try:
                self._skim(bytes(data), to_boundary=False)
            except _Garbage as exc:
                self._give_up(str(exc), out)
        else:
            self._feed_frames(bytes(data), out)
        return out.result()

    def refresh(self) -> list[Emit | Abort]:
        """Apply fault changes that need no new bytes; call it when the faults change.

        A message held by a reorder fault that has since been removed is released here
        (otherwise it would wait for the next bytes of its direction).
        """
        if self._phase != _FRAMES:
            return []
        out = _Output()
        self._release_orphans(out)
        return out.result()

    # -- handshake -------------------------------------------------------------------

    def _feed_handshake(self, data: bytes, out: _Output) -> bytes:
        """Buffer the HTTP upgrade; forward it (edited) and return the bytes after it."""
        self._handshake += data
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            if len(self._handshake) > _MAX_HANDSHAKE:
                out.emit(bytes(self._handshake))
                self._handshake.clear()
                self._phase = _PASSTHROUGH
            return b""
        head = bytes(self._handshake[: end + 4])
        rest = bytes(self._handshake[end + 4 :])
        self._handshake.clear()
        lines = head.split(b"\r\n")
        if self.direction == "upstream":
            upgrading = lines[0].startswith(b"GET ") and any(
                line.lower().startswith(b"upgrade:") and b"websocket" in line.lower()
                for line in lines[1:]
            )
            if upgrading and self._strip_compression:
                lines = [
                    line
                    for line in lines
                    if not line.lower().startswith(b"sec-websocket-extensions:")
                ]
                head = b"\r\n".join(lines)
        else:
            status = lines[0].split(b" ", 2)
            upgrading = len(status) >= 2 and status[1] == b"101"
        out.emit(head)
        if not upgrading:
            # Plain HTTP (a refused handshake, a health check): nothing to follow.
            self._phase = _PASSTHROUGH
            out.emit(rest)
            return b""
        self._phase = _FRAMES
        return rest

    # -- fast path -------------------------------------------------------------------

    def _idle(self) -> bool:
        """True when no message is collected, held or cut off: the fast path may run."""
        return not (self._buffer or self._partial or self._held or self._close_injected)

    def _skim(self, data: bytes, *, to_boundary: bool) -> int:
        """Follow frame headers through forwarded bytes; return how many bytes were walked.

        With ``to_boundary`` it stops where the frame being forwarded ends, so parsing
        can begin there; otherwise it walks the whole chunk.
        """
        n = len(data)
        pos = 0
        while True:
            if self._skip:
                take = min(self._skip, n - pos)
                self._skip -= take
                pos += take
                if self._skip:
                    return pos
            if self._head:
                joined = bytes(self._head) + data[pos : pos + 14]
                header = _frame_header(joined, 0, self._mask)
                if header is None:
                    self._head += data[pos:]
                    return n
                size, self._skip, opcode, fin = header
                pos += size - len(self._head)
                self._head.clear()
                self._count(opcode, fin)
                continue
            if pos >= n or to_boundary:
                return pos
            return self._walk(data, pos)

    def _walk(self, data: bytes, pos: int) -> int:
        """The hot loop of the fast path: hop from header to header, never touching payloads.

        Same arithmetic as `_frame_header`, inlined with local variables: this runs for
        every frame of every unfaulted connection.
        """
        n = len(data)
        masked = 0x80 if self._mask else 0
        extra = 4 if self._mask else 0
        index = self._index
        committed = self._committed
        try:
            while pos < n:
                if n - pos < 2:
                    break
                head1 = data[pos]
                head2 = data[pos + 1]
                if head2 & 0x80 != masked:
                    raise _Garbage("incorrect masking")
                length = head2 & 0x7F
                if length < 126:
                    size = 2 + extra
                elif length == 126:
                    size = 4 + extra
                    if n - pos < 4:
                        break
                    length = (data[pos + 2] << 8) | data[pos + 3]
                else:
                    size = 10 + extra
                    if n - pos < 10:
                        break
                    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                if n - pos < size:
                    break
                opcode = head1 & 0x0F
                if opcode == 1 or opcode == 2:
                    index += 1
                    committed = not head1 & 0x80
                elif opcode == 0 and head1 & 0x80:
                    committed = False
                pos += size + length
        finally:
            self._index = index
            self._committed = committed
        if pos > n:
            self._skip = pos - n
        elif pos < n:
            self._head += data[pos:]  # a header cut short: completed by the next chunk
        return n

    def _count(self, opcode: int, fin: bool) -> None:
        if opcode == Opcode.TEXT or opcode == Opcode.BINARY:
            self._index += 1
            self._committed = not fin
        elif opcode == Opcode.CONT and fin:
            self._committed = False

    # -- slow path -------------------------------------------------------------------

    def _current_faults(self) -> list[MessageFault]:
        return [f for f in self._faults() if f.applies_to(self.direction, self.connection)]

    def _feed_frames(self, data: bytes, out: _Output) -> None:
        if self._skip or self._head:
            try:
                walked = self._skim(data, to_boundary=True)
            except _Garbage as exc:
                out.emit(data)
                self._give_up(str(exc), out)
                return
            out.emit(data[:walked])
            data = data[walked:]
        self._release_orphans(out)
        self._buffer += data
        buffer = self._buffer
        pos = 0
        try:
            while self._phase == _FRAMES:
                header = _frame_header(buffer, pos, self._mask)
                if header is None:
                    break
                size, length, _, _ = header
                end = pos + size + length
                if end > len(buffer):
                    break
                raw = bytes(buffer[pos:end])
                frame = _parse_frame(raw, self._mask)
                pos = end
                self._on_frame(frame, raw, out)
        except _Garbage as exc:
            del buffer[:pos]
            self._give_up(str(exc), out)
        else:
            del buffer[:pos]

    def _on_frame(self, frame: Frame, raw: bytes, out: _Output) -> None:
        opcode = frame.opcode
        if self._close_injected:
            # The peer was told the connection is closing: nothing may follow the close.
            self._decide(self._close_injected, "dropped after the injected close", _label(frame))
            return
        if opcode == Opcode.TEXT or opcode == Opcode.BINARY:
            self._index += 1
            self._committed = False
            partial = _Partial(
                # RSV1 (read from the raw header: parsing clears it) marks compression.
                self._index,
                _OPCODE_NAME[opcode],
                bool(raw[0] & 0x40),
                [raw],
                [bytes(frame.data)],
            )
            if frame.fin:
                self._on_message(partial, out)
            else:
                self._partial = partial
        elif opcode == Opcode.CONT:
            if self._committed or self._partial is None:
                # The rest of a message forwarded before parsing began (or a peer's
                # protocol error, left for the receiver to reject): pass it on.
                out.emit(raw)
                if frame.fin:
                    self._committed = False
                return
            self._partial.raws.append(raw)
            self._partial.payloads.append(bytes(frame.data))
            if frame.fin:
                partial, self._partial = self._partial, None
                self._on_message(partial, out)
        else:
            self._on_control(frame, raw, out)

    def _on_message(self, partial: _Partial, out: _Output) -> None:
        message = Message(
            partial.index, partial.opcode, b"".join(partial.payloads), partial.compressed
        )
        data = b"".join(partial.raws)
        faults = self._current_faults()
        for fault in faults:
            if fault.kind == "cut_after" and self._cut_due(fault, message, before=True):
                self._cut(fault, message, out)
                return
        holding = {held.fault for held in self._held}
        # A reorder fault holds one message at a time: later ones pass it and count.
        hits = [
            f
            for f in faults
            if f.kind != "cut_after"
            and not (f.kind == "reorder" and f.name in holding)
            and self._hit(f, message)
        ]
        if self._apply_terminal(hits, message, out):
            return
        hold = next((f for f in hits if f.kind == "reorder"), None)
        delay = self._apply_shaping(hits, message)
        if delay is None:
            return  # dropped
        data = data * self._copies(hits, message)
        if hold is not None:
            by = int(hold.attributes["by"])
            self._decide(hold.name, f"held until {by} later message(s) passed", message.describe())
            self._passed(out, message)
            self._held.append(_Held(hold.name, message, data, by))
            return
        out.emit(data, delay)
        self._passed(out, message)
        for fault in faults:
            if fault.kind == "cut_after" and self._cut_due(fault, message, before=False):
                self._cut(fault, message, out)
                return

    def _on_control(self, frame: Frame, raw: bytes, out: _Output) -> None:
        message = Message(0, _OPCODE_NAME[frame.opcode], bytes(frame.data))
        if frame.opcode == Opcode.CLOSE:
            # Held messages were sent before the close: deliver them before it.
            self._release_all(out, "released before the close frame")
        hits = [f for f in self._current_faults() if self._hit(f, message)]
        if self._apply_terminal(hits, message, out):
            return
        delay = self._apply_shaping(hits, message)
        if delay is None:
            return
        out.emit(raw * self._copies(hits, message), delay)

    def _apply_terminal(self, hits: list[MessageFault], message: Message, out: _Output) -> bool:
        """Abort or inject a close for a selected message; True when the stream ends here."""
        for fault in hits:
            if fault.kind == "abort":
                self._decide(fault.name, "aborted", message.describe())
                self._abort(out, f"{fault.name}: abort at {message.describe()}")
                return True
        for fault in hits:
            if fault.kind == "close":
                code = int(fault.attributes["code"])
                reason = str(fault.attributes["reason"])
                self._release_all(out, "released before the injected close")
                frame = Frame(Opcode.CLOSE, Close(code, reason).serialize())
                out.emit(frame.serialize(mask=self._mask, extensions=[]))
                self._close_injected = fault.name
                self._decide(
                    fault.name, f"closed with code {code}", f"instead of {message.describe()}"
                )
                return True
        return False

    def _apply_shaping(self, hits: list[MessageFault], message: Message) -> float | None:
        """Drop (None) or the delay in seconds the selected message gets."""
        for fault in hits:
            if fault.kind == "drop" or fault.kind == "swallow_pong":
                self._decide(
                    fault.name,
                    "dropped" if fault.kind == "drop" else "swallowed",
                    message.describe(),
                )
                return None
        delay_ms = 0.0
        for fault in hits:
            if fault.kind == "delay" or fault.kind == "delay_ping":
                ms = float(fault.attributes["delay"])
                self._decide(fault.name, f"delayed {ms:g}ms", message.describe())
                delay_ms = max(delay_ms, ms)
        return delay_ms / 1000.0

    def _copies(self, hits: list[MessageFault], message: Message) -> int:
        copies = 1
        for fault in hits:
            if fault.kind == "duplicate":
                self._decide(fault.name, "duplicated", message.describe())
                copies += 1
        return copies

    def _passed(self, out: _Output, message: Message) -> None:
        """A data message went by: count it for held messages and release those due.

        A message that is itself being held also counts for the ones held before it, so
        each held message is released exactly ``by`` messages later.
        """
        due = []
        for held in self._held:
            held.remaining -= 1
            if held.remaining <= 0:
                due.append(held)
        for held in due:
            self._held.remove(held)
            self._decide(
                held.fault, f"released after message {message.index}", held.message.describe()
            )
            out.emit(held.data)

    def _release_orphans(self, out: _Output) -> None:
        """Release messages whose reorder fault was removed, so removal never loses one."""
        if not self._held:
            return
        live = {f.name for f in self._current_faults() if f.kind == "reorder"}
        for held in [h for h in self._held if h.fault not in live]:
            self._held.remove(held)
            self._decide(held.fault, "released (fault removed)", held.message.describe())
            out.emit(held.data)

    def _release_all(self, out: _Output, outcome: str) -> None:
        for held in self._held:
            self._decide(held.fault, outcome, held.message.describe())
            out.emit(held.data)
        self._held.clear()

    def _cut_due(self, fault: MessageFault, message: Message, *, before: bool) -> bool:
        """Count a ``cut_after`` fault's selected messages; True when it is time to cut."""
        if not self._selects(fault, message):
            return False
        enabled = self._cut_enabled.get(fault.name)
        if enabled is None:
            # Drawn once per connection: "this connection is cut after N messages".
            enabled = self._draw(fault, message)
            self._cut_enabled[fault.name] = enabled
        if not enabled:
            return False
        count = int(fault.attributes["count"])
        seen = self._cut_counts.get(fault.name, 0)
        if before:
            return seen >= count
        self._cut_counts[fault.name] = seen + 1
        return seen + 1 >= count

    def _cut(self, fault: MessageFault, message: Message, out: _Output) -> None:
        count = int(fault.attributes["count"])
        self._decide(fault.name, f"cut after {count} message(s)", message.describe())
        self._abort(out, f"{fault.name}: cut after {count} message(s)")

    def _abort(self, out: _Output, reason: str) -> None:
        out.abort(reason)
        self._phase = _DEAD
        self._buffer.clear()
        self._held.clear()
        self._partial = None

    def _give_up(self, reason: str, out: _Output) -> None:
        """Not WebSocket frames after all: forward everything as it comes, unparsed."""
        self._record(Decision(self.connection, self.direction, "frames", "passing through", reason))
        self._release_all(out, "released (stream not parsable)")
        if self._partial is not None:
            out.emit(b"".join(self._partial.raws))
            self._partial = None
        out.emit(bytes(self._buffer))
        self._buffer.clear()
        self._phase = _PASSTHROUGH

    # -- selection and draws -------------------------------------------------------

    def _hit(self, fault: MessageFault, message: Message) -> bool:
        """True when the fault selects the message and its toxicity draw says so."""
        return self._selects(fault, message) and self._draw(fault, message)

    def _selects(self, fault: MessageFault, message: Message) -> bool:
        """Whether ``fault.select`` picks ``message`` (no toxicity draw).

        A predicate that raises selects nothing (recorded as a decision) rather than
        killing the connection's pump.
        """
        try:
            return select_matches(fault, message)
        except Exception as exc:
            self._decide(
                fault.name,
                "skipped",
                f"{message.describe()}; the select predicate raised {type(exc).__name__}",
            )
            return False

    def _draw(self, fault: MessageFault, message: Message) -> bool:
        if fault.toxicity >= 1.0:
            return True
        if fault.toxicity <= 0.0:
            return False
        rng = self._rngs.get(fault.name)
        if rng is None:
            rng = self._rngs[fault.name] = derive_rng(self._seed, "message fault", fault.name)
        draw = rng.random()
        if draw < fault.toxicity:
            return True
        self._decide(
            fault.name,
            "kept",
            f"{message.describe()}; draw {draw:.3f} >= toxicity {fault.toxicity:g}",
        )
        return False

    def _decide(self, subject: str, outcome: str, detail: str) -> None:
        self._record(Decision(self.connection, self.direction, subject, outcome, detail))


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


def _label(frame: Frame) -> str:
    name = _OPCODE_NAME.get(frame.opcode, "continuation")
    return f"{name} frame ({len(frame.data)} bytes)"
