"""The message filter: applies message faults to one direction of a WebSocket stream.

A byte-level proxy can delay, slice or cut a stream, but it cannot lose *one* message
and keep the next, because it does not know where messages start. `MessageFilter`
does: it watches one direction of one proxied connection, passes the HTTP upgrade
through, then follows the WebSocket frames (read by `chaos.frame_reader`, on the
``websockets`` sans-I/O frame code) and applies the `MessageFault` s
(`chaos.message_faults`) that select each message: drop, delay, duplicate, reorder,
inject a close, abort, cut after N, swallow pongs, delay pings; and rebuilds the frames
of a message for the frame faults (fragment, corrupt, oversize: `chaos.frame_faults`).

Sans-I/O: bytes in (`MessageFilter.feed`), a list of `Emit` / `Abort` out; no sockets,
no clock, randomness from the `random.Random` it is handed. The proxy connection
(`chaos.connection`) owns the I/O and the timing of delayed bytes.

Two rules keep it honest:

* The original bytes of every frame are forwarded (masks included); a message is
  re-serialized only for a frame fault (by `chaos.frame_faults`, on websockets' own
  serializer). Only injected close frames are built here.
* With no fault for its direction the filter does not parse frames at all: it walks the
  frame headers to know where messages start (so the message index stays exact and a
  fault added later begins at a frame boundary) and forwards each chunk as it came.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from websockets.frames import Close, Frame, Opcode

from pytest_ws_resilience.chaos.forwarding import Abort, Emit, Output
from pytest_ws_resilience.chaos.frame_faults import (
    answered_ping,
    build_frames,
    frame_plan,
    pongs_expected,
)
from pytest_ws_resilience.chaos.frame_reader import (
    MAX_HANDSHAKE,
    FrameSkimmer,
    NotFrames,
    frame_header,
    parse_frame,
    read_upgrade,
)
from pytest_ws_resilience.chaos.message_faults import (
    PREDICATE_RAISED,
    Direction,
    Message,
    MessageFault,
    select_matches,
)
from pytest_ws_resilience.chaos.seeds import FaultDecision, derive_rng

__all__ = ["Abort", "Emit", "MessageFilter"]

#: `Message.opcode` of each opcode (continuation frames belong to their message).
_OPCODE_NAME = {
    Opcode.TEXT: "text",
    Opcode.BINARY: "binary",
    Opcode.PING: "ping",
    Opcode.PONG: "pong",
    Opcode.CLOSE: "close",
}


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
        record: receives a `FaultDecision` for every fault application.
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
        record: Callable[[FaultDecision], None],
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
        # Frame boundaries and the message count, across both paths.
        self._frames = FrameSkimmer(mask=self._mask)
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
        return self._frames.messages

    @property
    def holding(self) -> int:
        """Messages held by reorder faults, waiting for later messages to pass."""
        return len(self._held)

    def feed(self, data: bytes) -> list[Emit | Abort]:
        """Take the next bytes read from this direction's source; return what to forward.

        Nothing is written or scheduled here. After calling this method you must carry
        out the returned items in order: write each `Emit`'s ``data`` to the destination
        once its ``delay`` (seconds, counted from this call) has passed, and never before
        anything returned earlier for this direction, so bytes stay in order. On an
        `Abort` (always the last item), write the emits before it, then drop both sides of
        the connection without a close frame; the filter takes no more bytes after it
        (later calls return an empty list).

        Args:
            data: the next bytes of the stream, in the chunks they were read in; any
                chunking gives the same result.
        """
        if not data or self._phase == _DEAD:
            return []
        if self._phase == _PASSTHROUGH:
            return [Emit(bytes(data))]
        out = Output()
        if self._phase == _HANDSHAKE:
            data = self._feed_handshake(bytes(data), out)
            if not data or self._phase != _FRAMES:
                return out.result()
        if self._idle() and not self._must_parse():
            out.emit(bytes(data))
            try:
                self._frames.skim(bytes(data), to_boundary=False)
            except NotFrames as exc:
                self._give_up(str(exc), out)
        else:
            self._feed_frames(bytes(data), out)
        return out.result()

    def refresh(self) -> list[Emit | Abort]:
        """Apply fault changes that need no new bytes; call it when the faults change.

        A message held by a reorder fault that has since been removed is released here
        (otherwise it would wait for the next bytes of its direction). After calling this
        method you must carry out what it returns exactly as `feed`'s result.
        """
        if self._phase != _FRAMES:
            return []
        out = Output()
        self._release_orphans(out)
        return out.result()

    # -- handshake -------------------------------------------------------------------

    def _feed_handshake(self, data: bytes, out: Output) -> bytes:
        """Buffer the HTTP upgrade; forward it (edited) and return the bytes after it."""
        self._handshake += data
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            if len(self._handshake) > MAX_HANDSHAKE:
                out.emit(bytes(self._handshake))
                self._handshake.clear()
                self._phase = _PASSTHROUGH
            return b""
        head = bytes(self._handshake[: end + 4])
        rest = bytes(self._handshake[end + 4 :])
        self._handshake.clear()
        head, upgrading = read_upgrade(
            head, request=self.direction == "upstream", strip_compression=self._strip_compression
        )
        out.emit(head)
        if not upgrading:
            # Plain HTTP (a refused handshake, a health check): nothing to follow.
            self._phase = _PASSTHROUGH
            out.emit(rest)
            return b""
        self._phase = _FRAMES
        return rest

    def _idle(self) -> bool:
        """True when no message is collected, held or cut off: the fast path may run."""
        return not (self._buffer or self._partial or self._held or self._close_injected)

    # -- slow path -------------------------------------------------------------------

    def _current_faults(self) -> list[MessageFault]:
        return [f for f in self._faults() if f.applies_to(self.direction, self.connection)]

    def _must_parse(self) -> bool:
        """A fault for this direction, or pongs to catch for the other one's pings."""
        direction, connection = self.direction, self.connection
        return any(
            f.applies_to(direction, connection) or pongs_expected(f, direction, connection)
            for f in self._faults()
        )

    def _feed_frames(self, data: bytes, out: Output) -> None:
        if self._frames.mid_frame:
            try:
                walked = self._frames.skim(data, to_boundary=True)
            except NotFrames as exc:
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
                header = frame_header(buffer, pos, self._mask)
                if header is None:
                    break
                size, length, _, _ = header
                end = pos + size + length
                if end > len(buffer):
                    break
                raw = bytes(buffer[pos:end])
                frame = parse_frame(raw, self._mask)
                pos = end
                self._on_frame(frame, raw, out)
        except NotFrames as exc:
            del buffer[:pos]
            self._give_up(str(exc), out)
        else:
            del buffer[:pos]

    def _on_frame(self, frame: Frame, raw: bytes, out: Output) -> None:
        opcode = frame.opcode
        if self._close_injected:
            # The peer was told the connection is closing: nothing may follow the close.
            self._decide(self._close_injected, "dropped after the injected close", _label(frame))
            return
        if opcode == Opcode.TEXT or opcode == Opcode.BINARY:
            self._frames.messages += 1
            self._frames.committed = False
            partial = _Partial(
                # RSV1 (read from the raw header: parsing clears it) marks compression.
                self._frames.messages,
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
            if self._frames.committed or self._partial is None:
                # The rest of a message forwarded before parsing began (or a peer's
                # protocol error, left for the receiver to reject): pass it on.
                out.emit(raw)
                if frame.fin:
                    self._frames.committed = False
                return
            self._partial.raws.append(raw)
            self._partial.payloads.append(bytes(frame.data))
            if frame.fin:
                partial, self._partial = self._partial, None
                self._on_message(partial, out)
        else:
            self._on_control(frame, raw, out)

    def _on_message(self, partial: _Partial, out: Output) -> None:
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
        plan = frame_plan(hits) if hits else None
        if plan is not None:
            for name, outcome in plan.outcomes:
                self._decide(name, outcome, message.describe())
            data = build_frames(plan, message, mask=self._mask)
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

    def _on_control(self, frame: Frame, raw: bytes, out: Output) -> None:
        message = Message(0, _OPCODE_NAME[frame.opcode], bytes(frame.data))
        answered = answered_ping(message.payload) if frame.opcode == Opcode.PONG else None
        if answered is not None:
            # The proxy's own ping between fragments: its sender never sent it.
            self._decide(answered[0], "pong answered", answered[1])
            return
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

    def _apply_terminal(self, hits: list[MessageFault], message: Message, out: Output) -> bool:
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

    def _passed(self, out: Output, message: Message) -> None:
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

    def _release_orphans(self, out: Output) -> None:
        """Release messages whose reorder fault was removed, so removal never loses one."""
        if not self._held:
            return
        live = {f.name for f in self._current_faults() if f.kind == "reorder"}
        for held in [h for h in self._held if h.fault not in live]:
            self._held.remove(held)
            self._decide(held.fault, "released (fault removed)", held.message.describe())
            out.emit(held.data)

    def _release_all(self, out: Output, outcome: str) -> None:
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

    def _cut(self, fault: MessageFault, message: Message, out: Output) -> None:
        count = int(fault.attributes["count"])
        self._decide(fault.name, f"cut after {count} message(s)", message.describe())
        self._abort(out, f"{fault.name}: cut after {count} message(s)")

    def _abort(self, out: Output, reason: str) -> None:
        out.abort(reason)
        self._phase = _DEAD
        self._buffer.clear()
        self._held.clear()
        self._partial = None

    def _give_up(self, reason: str, out: Output) -> None:
        """Not WebSocket frames after all: forward everything as it comes, unparsed."""
        self._record(
            FaultDecision(self.connection, self.direction, "frames", "passing through", reason)
        )
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
                f"{message.describe()}; {PREDICATE_RAISED} {type(exc).__name__}",
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
        self._record(FaultDecision(self.connection, self.direction, subject, outcome, detail))


def _label(frame: Frame) -> str:
    name = _OPCODE_NAME.get(frame.opcode, "continuation")
    return f"{name} frame ({len(frame.data)} bytes)"
