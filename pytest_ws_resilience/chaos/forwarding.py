"""What a message filter hands its connection to forward: bytes (`Emit`), or an `Abort`.

`chaos.message_filter.MessageFilter.feed` returns a list of these; the proxied
connection (`chaos.connection`) carries them out in order. `Output` collects one call's
items, merging adjacent bytes so a connection writes once per call where it can.

Pure: plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Abort", "Emit", "Output"]


@dataclass(frozen=True)
class Emit:
    """Bytes to forward: frames as received, an injected close, or rebuilt frames.

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


class Output:
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
