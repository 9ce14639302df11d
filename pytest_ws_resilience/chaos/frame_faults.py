"""Frame faults: one WebSocket message rebuilt as the frames a fault asks for. Pure.

The other message faults forward a message's original bytes (or none of them). Three
kinds rebuild it instead, because what they test is how the peer *reads frames*:

* ``fragment``: the message goes out as ``parts`` frames (a first frame and
  continuation frames), optionally with a ping between each two of them, which the
  peer must answer while it assembles the message (RFC 6455, section 5.4);
* ``corrupt``: the message breaks one rule of the protocol (``how``): invalid UTF-8 in a
  text message (the peer must close with 1007), a reserved bit no extension negotiated,
  an opcode nobody defined, or the wrong masking for its direction (1002 for all three);
* ``oversize``: the message grows past the peer's limit (the peer must close with 1009).

`frame_plan` reads what the faults selecting one message ask for, and `build_frames`
writes the frames. Serializing and masking is websockets' own (`Frame.serialize`): this
module only decides the payload of each frame and, for a corruption, flips header bits
after serializing (websockets refuses to serialize a broken frame, rightly).

The proxy's pings carry a label (`ping_label`), so the other direction's filter can tell
their pongs from any other (`answered_ping`), swallow them (their sender never sent
that ping) and record that the peer answered.

Pure: no clock, no event loop. Importing ``websockets`` loads `socket` (through
``email.utils``); nothing here uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from websockets.frames import Frame, Opcode

from pytest_ws_resilience.chaos.message_faults import Message, MessageFault

__all__ = [
    "FRAME_FAULT_KINDS",
    "PING_MARKER",
    "UNKNOWN_OPCODE",
    "FramePlan",
    "answered_ping",
    "build_frames",
    "frame_plan",
    "ping_label",
    "pongs_expected",
]

#: The message fault kinds that rebuild a message's frames.
FRAME_FAULT_KINDS = frozenset({"fragment", "corrupt", "oversize"})
#: How the payload of every ping the proxy puts between fragments begins.
PING_MARKER = b"ws-chaos-ping "
#: An opcode RFC 6455 reserves for future data frames (0x3-0x7): defined by nobody.
UNKNOWN_OPCODE = 0x3
#: RSV2: no registered extension uses it (permessage-deflate uses RSV1), so no peer may
#: accept it, whatever the peers negotiated.
_RSV2 = 0x20
_RSV1 = 0x40
#: A byte that never occurs in UTF-8.
_INVALID_UTF8 = b"\xff"
_OPCODES = {"text": Opcode.TEXT, "binary": Opcode.BINARY}
_REVERSE = {"upstream": "downstream", "downstream": "upstream"}


@dataclass(frozen=True)
class FramePlan:
    """What the frame faults selecting one message ask for, merged.

    Attributes:
        parts: frames the message goes out as (1: one frame).
        ping: the name of the fault that puts a ping between each two fragments ("":
            no pings); the pings carry it (`ping_label`).
        corruptions: the ``corrupt`` faults' ``how`` values, all applied.
        grow_to: the payload is padded to at least this many bytes (0: as it is).
        outcomes: (fault name, outcome) for each fault, for the decision log.
    """

    parts: int = 1
    ping: str = ""
    corruptions: frozenset[str] = frozenset()
    grow_to: int = 0
    outcomes: tuple[tuple[str, str], ...] = ()


def frame_plan(hits: Iterable[MessageFault]) -> FramePlan | None:
    """Merge the frame faults among ``hits`` (faults that selected one message).

    Two ``fragment`` faults: the most parts, and pings if either asks; two ``oversize``:
    the highest limit; every ``corrupt`` applies. None when no frame fault is among them.
    """
    parts, ping, grow_to = 1, "", 0
    corruptions: set[str] = set()
    faults = [f for f in hits if f.kind in FRAME_FAULT_KINDS]
    if not faults:
        return None
    for fault in faults:
        if fault.kind == "fragment":
            parts = max(parts, int(fault.attributes["parts"]))
            if fault.attributes["ping"] and not ping:
                ping = fault.name
        elif fault.kind == "corrupt":
            corruptions.add(str(fault.attributes["how"]))
        else:
            grow_to = max(grow_to, int(fault.attributes["limit"]) + 1)
    outcomes = []
    for fault in faults:
        if fault.kind == "fragment":
            pings = ", a ping between each two" if ping and parts > 1 else ""
            outcome = f"fragmented into {parts} frames{pings}"
        elif fault.kind == "corrupt":
            outcome = f"corrupted ({fault.attributes['how']})"
        else:
            outcome = f"grown past {fault.attributes['limit']} bytes"
        outcomes.append((fault.name, outcome))
    return FramePlan(parts, ping, frozenset(corruptions), grow_to, tuple(outcomes))


def build_frames(plan: FramePlan, message: Message, *, mask: bool) -> bytes:
    """The wire bytes of ``message`` rebuilt as ``plan`` says.

    Args:
        plan: from `frame_plan`.
        message: the message, its payload unmasked and reassembled.
        mask: frames of this direction are masked (client to server); a ``wrong_mask``
            corruption inverts it for the message's frames (never for the pings).

    Returns:
        The frames, serialized by websockets, masked with fresh masks.
    """
    opcode = _OPCODES[message.opcode]
    payload = message.payload
    if len(payload) < plan.grow_to:
        # Spaces end a JSON text and keep it JSON: only the size is wrong.
        pad = b" " if opcode == Opcode.TEXT else b"\x00"
        payload += pad * (plan.grow_to - len(payload))
    if "invalid_utf8" in plan.corruptions:
        opcode = Opcode.TEXT
        payload += _INVALID_UTF8
    pieces = _split(payload, plan.parts)
    data_mask = mask != ("wrong_mask" in plan.corruptions)
    out = []
    for i, piece in enumerate(pieces):
        if i:
            if plan.ping:
                ping = Frame(Opcode.PING, ping_label(plan.ping, message.index, i))
                out.append(ping.serialize(mask=mask))
            frame = Frame(Opcode.CONT, piece, fin=i == len(pieces) - 1)
            out.append(frame.serialize(mask=data_mask))
            continue
        raw = bytearray(Frame(opcode, piece, fin=len(pieces) == 1).serialize(mask=data_mask))
        if message.compressed:
            raw[0] |= _RSV1  # permessage-deflate marks the first frame of a message
        if "reserved_bit" in plan.corruptions:
            raw[0] |= _RSV2
        if "unknown_opcode" in plan.corruptions:
            raw[0] = (raw[0] & 0xF0) | UNKNOWN_OPCODE
        out.append(bytes(raw))
    return b"".join(out)


def _split(payload: bytes, parts: int) -> list[bytes]:
    """``parts`` pieces of ``payload``, sizes differing by one at most (some may be empty).

    Cuts fall on bytes, not characters: a UTF-8 character may span two frames, which
    RFC 6455 allows (only the whole message must be valid UTF-8) and peers must handle.
    """
    size, extra = divmod(len(payload), parts)
    pieces = []
    pos = 0
    for i in range(parts):
        end = pos + size + (1 if i < extra else 0)
        pieces.append(payload[pos:end])
        pos = end
    return pieces


def ping_label(name: str, index: int, number: int) -> bytes:
    """The payload of a ping the proxy puts between fragments (at most 125 bytes).

    It names the fault, the message and the ping's number, so that the pong (which
    echoes it) is recognised and recorded under the fault's name. A long fault name is
    cut short to fit a control frame.
    """
    tail = f" {index}.{number}".encode()
    head = name.encode()[: 125 - len(PING_MARKER) - len(tail)]
    return PING_MARKER + head.decode(errors="ignore").encode() + tail


def answered_ping(payload: bytes) -> tuple[str, str] | None:
    """(fault name, which ping) when a pong answers one of the proxy's pings, else None."""
    if not payload.startswith(PING_MARKER):
        return None
    name, _, which = payload[len(PING_MARKER) :].decode(errors="replace").rpartition(" ")
    index, _, number = which.partition(".")
    return name, f"ping {number} (between the fragments of message {index})"


def pongs_expected(fault: MessageFault, direction: str, connection: int) -> bool:
    """Whether the filter of ``direction`` must watch for pongs answering ``fault``'s pings.

    The pings of a ``fragment`` fault go one way; the pongs come back the other way.
    """
    return (
        fault.kind == "fragment"
        and bool(fault.attributes.get("ping"))
        and fault.applies_to(_REVERSE[direction], connection)
    )
