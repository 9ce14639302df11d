"""Unit tests of the wire reading under the message filter (`chaos.frame_reader`).

Frames come from the websockets frame code itself (`Frame.serialize`), masked as a client
sends them and unmasked as a server does.
"""

from __future__ import annotations

import random

import pytest
from websockets.frames import Frame, Opcode

from pytest_ws_resilience.chaos.frame_reader import (
    FrameSkimmer,
    NotFrames,
    frame_header,
    parse_frame,
    read_upgrade,
)

REQUEST = (
    b"GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)


def wire(frame: Frame, *, mask: bool) -> bytes:
    return frame.serialize(mask=mask, extensions=[])


def test_read_upgrade_strips_the_compression_offer_only_when_asked() -> None:
    head, upgrading = read_upgrade(REQUEST, request=True, strip_compression=True)
    assert upgrading and b"Sec-WebSocket-Extensions" not in head
    assert head.endswith(b"\r\n\r\n") and head.startswith(b"GET /ws?x=1 HTTP/1.1\r\n")
    assert read_upgrade(REQUEST, request=True, strip_compression=False) == (REQUEST, True)


def test_read_upgrade_tells_an_upgrade_from_plain_http() -> None:
    plain = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    assert read_upgrade(plain, request=True, strip_compression=True) == (plain, False)
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    assert read_upgrade(switching, request=False, strip_compression=True) == (switching, True)
    refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    assert read_upgrade(refused, request=False, strip_compression=True) == (refused, False)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
@pytest.mark.parametrize("mask", [False, True])
def test_frame_header_finds_the_boundary_and_waits_for_a_whole_header(
    size: int, mask: bool
) -> None:
    raw = wire(Frame(Opcode.BINARY, b"x" * size, fin=False), mask=mask)
    header = frame_header(raw, 0, mask)
    assert header is not None
    header_size, length, opcode, fin = header
    assert header_size + length == len(raw) and length == size
    assert opcode == Opcode.BINARY and not fin
    for cut in range(header_size):
        assert frame_header(raw[:cut], 0, mask) is None


def test_frame_header_rejects_the_wrong_masking() -> None:
    with pytest.raises(NotFrames, match="masking"):
        frame_header(wire(Frame(Opcode.TEXT, b"hi"), mask=False), 0, True)


def test_parse_frame_reads_a_compressed_frame_without_decoding_it() -> None:
    raw = bytearray(wire(Frame(Opcode.TEXT, b"\x01\x02\x03"), mask=True))
    raw[0] |= 0x40  # RSV1: permessage-deflate's "compressed" bit
    parsed = parse_frame(bytes(raw), True)
    assert parsed.opcode == Opcode.TEXT and bytes(parsed.data) == b"\x01\x02\x03"


def test_parse_frame_rejects_what_is_not_a_frame() -> None:
    with pytest.raises(NotFrames):
        parse_frame(b"\x83\x00", False)  # opcode 3 is reserved


def _stream(mask: bool) -> tuple[bytes, int]:
    frames = [
        Frame(Opcode.TEXT, b"a" * 10),
        Frame(Opcode.BINARY, b"b" * 300, fin=False),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CONT, b"c" * 70000),
        Frame(Opcode.TEXT, b""),
        Frame(Opcode.PONG, b""),
    ]
    return b"".join(wire(f, mask=mask) for f in frames), 3


@pytest.mark.parametrize("mask", [False, True])
def test_skimmer_counts_messages_across_any_chunking(mask: bool) -> None:
    data, messages = _stream(mask)
    rng = random.Random(3)
    for _ in range(20):
        skimmer = FrameSkimmer(mask=mask)
        pos = 0
        while pos < len(data):
            step = rng.choice([1, 2, 7, 200, 5000])
            assert skimmer.skim(data[pos : pos + step], to_boundary=False) == len(
                data[pos : pos + step]
            )
            pos += step
        assert skimmer.messages == messages
        assert not skimmer.mid_frame and not skimmer.committed


def test_skimmer_stops_at_the_end_of_the_frame_under_way() -> None:
    first = wire(Frame(Opcode.BINARY, b"x" * 1000, fin=False), mask=False)
    second = wire(Frame(Opcode.CONT, b"y" * 10), mask=False)
    skimmer = FrameSkimmer(mask=False)
    skimmer.skim(first[:100], to_boundary=False)
    assert skimmer.mid_frame and skimmer.committed and skimmer.messages == 1
    rest = first[100:] + second
    walked = skimmer.skim(rest, to_boundary=True)
    assert walked == len(first) - 100  # parsing may begin with the continuation frame
    assert not skimmer.mid_frame and skimmer.committed
