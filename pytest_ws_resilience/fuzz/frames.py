"""What a fuzzer sends: one WebSocket frame, and how it is written and shown.

A `FuzzFrame` is a JSON value sent as a text frame, raw text (not necessarily JSON) or
bytes sent as a binary frame. A JSON value may hold `RawJson` nodes: JSON text that
Python's own encoder cannot produce (a number of 5,000 digits is refused by
``int.__str__``, a nesting of 3,000 levels by the encoder's recursion limit) but a
client in another language sends without blinking. `encode` writes the tree with them
in place. Strings are written with ``ensure_ascii=True``: a lone surrogate cannot be
UTF-8, but the escape ``"\\ud800"`` can, and the server's ``json.loads`` turns it back
into a lone-surrogate ``str``, as a real client's message would.

Pure: no I/O, no Hypothesis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pytest_ws_resilience.redaction import redact

__all__ = ["FrameKind", "FuzzFrame", "RawJson", "encode", "shown"]

FrameKind = Literal["json", "text", "binary"]

#: Characters of a frame shown in a failure (the whole frame is in `FuzzFrame.wire`).
_SHOWN_CHARS = 600


@dataclass(frozen=True)
class RawJson:
    """JSON text put into a message as it is, with a short description for humans.

    Args:
        text: valid JSON the stdlib encoder would refuse to write (deep, huge).
        label: what it is, e.g. ``"3000 nested lists"``, shown instead of the text.
    """

    text: str
    label: str

    def __repr__(self) -> str:
        return f"<{self.label}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints a dataclass field by field (the whole text: 130 kB for a
        # nesting past Python 3.14's decoder, and a warning) unless told otherwise.
        printer.text(repr(self))


def encode(value: Any) -> str:
    """``value`` as JSON text, `RawJson` nodes written as they are.

    Raises:
        TypeError: a value JSON has no form for.
    """
    if isinstance(value, RawJson):
        return value.text
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=True)


@dataclass(frozen=True)
class FuzzFrame:
    """One message a fuzzer sends.

    ``kind`` "json": ``value`` is a JSON value (text frame); "text": ``value`` is a
    ``str`` sent as it is (a text frame that may not be JSON); "binary": ``value`` is
    ``bytes`` (a binary frame).
    """

    kind: FrameKind
    value: Any

    @property
    def wire(self) -> str | bytes:
        """The frame's payload as sent."""
        if self.kind == "json":
            return encode(self.value)
        if self.kind == "binary":
            return bytes(self.value)
        return str(self.value)

    @property
    def size(self) -> int:
        """Bytes on the wire (UTF-8 for text frames)."""
        wire = self.wire
        return len(wire) if isinstance(wire, bytes) else len(wire.encode("utf-8"))

    def __str__(self) -> str:
        return shown(self)

    def __repr__(self) -> str:
        # Short: a frame may be a megabyte, and reprs end up in reports and tracebacks.
        return f"FuzzFrame({shown(self, 200)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis' printer: this repr too (short, redacted), not the fields.
        printer.text(repr(self))


def shown(frame: FuzzFrame, limit: int = _SHOWN_CHARS) -> str:
    """One line for a failure: the frame as Python would write it (so it can be pasted
    into ``ws_fuzz.replay(...)``), secrets redacted, cut at ``limit`` characters."""
    text = redact(f"{frame.kind} {frame.value!r}")
    if len(text) > limit:
        text = f"{text[:limit]}... ({frame.size} bytes in all)"
    return text
