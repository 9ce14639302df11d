"""Reading WebSocket frames off a proxied byte stream, for the message filter.

The message filter (`chaos.message_filter`) sees raw TCP bytes in one direction. This
module knows the wire: the HTTP opening handshake (`read_upgrade`), where each frame
starts and ends (`frame_header`, and `FrameSkimmer`, which follows the boundaries through
bytes forwarded unparsed without touching payloads), and how to decode one whole frame
(`parse_frame`, on the ``websockets`` sans-I/O frame parser). It never re-serializes a
frame: the filter forwards the bytes it was given.

Pure: no clock, no event loop. Importing ``websockets`` loads `socket` (through
``email.utils``); nothing here uses it.
"""

from __future__ import annotations

import dataclasses

from websockets.exceptions import ProtocolError
from websockets.extensions.base import Extension
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.typing import ExtensionName

__all__ = [
    "MAX_HANDSHAKE",
    "FrameSkimmer",
    "NotFrames",
    "frame_header",
    "parse_frame",
    "read_upgrade",
]

#: An HTTP upgrade longer than this is not a WebSocket handshake we can follow.
MAX_HANDSHAKE = 64 * 1024


def read_upgrade(head: bytes, *, request: bool, strip_compression: bool) -> tuple[bytes, bool]:
    """Read the HTTP head of an opening handshake, up to and including its blank line.

    Args:
        head: the request (client to server) or the response (server to client).
        request: True for the request.
        strip_compression: drop ``Sec-WebSocket-Extensions`` from an upgrade request, so
            the peers never negotiate permessage-deflate.

    Returns:
        The head to forward (edited as asked), and whether it upgrades the connection
        to WebSocket: a ``GET`` with ``Upgrade: websocket``, or a ``101`` answer.
    """
    lines = head.split(b"\r\n")
    if request:
        upgrading = lines[0].startswith(b"GET ") and any(
            line.lower().startswith(b"upgrade:") and b"websocket" in line.lower()
            for line in lines[1:]
        )
        if upgrading and strip_compression:
            lines = [
                line for line in lines if not line.lower().startswith(b"sec-websocket-extensions:")
            ]
            head = b"\r\n".join(lines)
    else:
        status = lines[0].split(b" ", 2)
        upgrading = len(status) >= 2 and status[1] == b"101"
    return head, upgrading


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


class NotFrames(Exception):
    """The bytes are not WebSocket frames; the filter falls back to passing them through."""


def frame_header(buf: bytes | bytearray, pos: int, mask: bool) -> tuple[int, int, int, bool] | None:
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
        raise NotFrames("incorrect masking")
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


def parse_frame(raw: bytes, mask: bool) -> Frame:
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
        raise NotFrames(str(exc)) from exc
    raise NotFrames("incomplete frame")  # pragma: no cover - raw always holds a whole frame


class FrameSkimmer:
    """Follows frame boundaries through forwarded bytes and counts data messages.

    The filter's fast path forwards each chunk as it came and hands it here, so that the
    message index stays exact and, once a fault is armed, parsing begins on a frame
    boundary. The filter's slow path parses frames itself and advances ``messages`` and
    ``committed`` for them, so there is one count across both paths.
    """

    def __init__(self, *, mask: bool) -> None:
        self.mask = mask  # frames of this direction are masked (client to server)
        #: Data messages whose first frame went by (skimmed or parsed).
        self.messages = 0
        #: A message forwarded unparsed still has continuation frames to come: they are
        #: forwarded unparsed too, even once parsing has begun.
        self.committed = False
        self._head = bytearray()  # start of a header split across chunks (already forwarded)
        self._skip = 0  # payload bytes of a forwarded frame still to come

    @property
    def mid_frame(self) -> bool:
        """True when the bytes skimmed so far end inside a frame (header or payload)."""
        return bool(self._skip or self._head)

    def skim(self, data: bytes, *, to_boundary: bool) -> int:
        """Follow frame headers through ``data``; return how many bytes were walked.

        The caller forwards ``data`` itself, unchanged. With ``to_boundary`` this stops
        where the frame under way ends: the caller forwards that many bytes unparsed and
        may parse from there on. Otherwise the whole chunk is walked.

        Raises:
            NotFrames: the bytes are not WebSocket frames (a masking bit is wrong).
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
                header = frame_header(joined, 0, self.mask)
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

        Same arithmetic as `frame_header`, inlined with local variables: this runs for
        every frame of every unfaulted connection.
        """
        n = len(data)
        masked = 0x80 if self.mask else 0
        extra = 4 if self.mask else 0
        index = self.messages
        committed = self.committed
        try:
            while pos < n:
                if n - pos < 2:
                    break
                head1 = data[pos]
                head2 = data[pos + 1]
                if head2 & 0x80 != masked:
                    raise NotFrames("incorrect masking")
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
            self.messages = index
            self.committed = committed
        if pos > n:
            self._skip = pos - n
        elif pos < n:
            self._head += data[pos:]  # a header cut short: completed by the next chunk
        return n

    def _count(self, opcode: int, fin: bool) -> None:
        """Count a frame header walked over (the rest of its frame is skipped)."""
        if opcode == Opcode.TEXT or opcode == Opcode.BINARY:
            self.messages += 1
            self.committed = not fin
        elif opcode == Opcode.CONT and fin:
            self.committed = False
