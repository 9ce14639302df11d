"""Unit tests of the message filter (`chaos.message_filter`): pure, no sockets, no clock.

Bytes come from the websockets sans-I/O protocols themselves (a real client handshake,
a real server answer, real masked and unmasked frames), go through a pair of
`MessageFilter` s in several chunkings (one piece, byte by byte, random cuts), and what
comes out is fed to the peer's protocol, which checks it is still valid WebSocket.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from pytest_ws_resilience.chaos.message_faults import Message, MessageFault
from pytest_ws_resilience.chaos.message_filter import Abort, Emit, MessageFilter
from pytest_ws_resilience.chaos.seeds import FaultDecision

Chunker = Callable[[bytes], Iterator[bytes]]


def one_piece(data: bytes) -> Iterator[bytes]:
    yield data


def byte_by_byte(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def random_cuts(data: bytes, *, seed: int = 7) -> Iterator[bytes]:
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 40)
        yield data[pos : pos + step]
        pos += step


CHUNKERS = pytest.mark.parametrize(
    "chunker", [one_piece, byte_by_byte, random_cuts], ids=["one-piece", "bytes", "random"]
)


class Link:
    """A sans-I/O client and server joined through an upstream and a downstream filter."""

    def __init__(
        self,
        faults: Sequence[MessageFault] = (),
        *,
        seed: int = 1,
        connection: int = 1,
        strip_compression: bool = True,
        compression: bool = True,
        chunker: Chunker = one_piece,
        max_size: int | None = 2**20,
    ) -> None:
        self.faults: list[MessageFault] = [_named(f, i) for i, f in enumerate(faults)]
        self.decisions: list[FaultDecision] = []
        self.chunker = chunker
        self.up = MessageFilter(
            "upstream",
            connection=connection,
            faults=lambda: self.faults,
            rng=random.Random(f"{seed}-up"),
            record=self.decisions.append,
            strip_compression=strip_compression,
        )
        self.down = MessageFilter(
            "downstream",
            connection=connection,
            faults=lambda: self.faults,
            rng=random.Random(f"{seed}-down"),
            record=self.decisions.append,
            strip_compression=strip_compression,
        )
        extensions = [ClientPerMessageDeflateFactory()] if compression else None
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1:9/chat"), extensions=extensions)
        self.server = ServerProtocol(
            extensions=[ServerPerMessageDeflateFactory()] if compression else None,
            max_size=max_size,  # the server's message limit (1 MiB, websockets' default)
        )
        self.items: dict[str, list[Emit | Abort]] = {"upstream": [], "downstream": []}
        self.inputs = {"upstream": b"", "downstream": b""}
        self.request_bytes = b""
        self.response_bytes = b""

    def add(self, fault: MessageFault) -> MessageFault:
        fault = _named(fault, len(self.faults) + 100)
        self.faults.append(fault)
        return fault

    def handshake(self) -> None:
        self.client.send_request(self.client.connect())
        self.request_bytes = b"".join(self.client.data_to_send())
        self._deliver("upstream", self.request_bytes)
        (request,) = self.server.events_received()
        assert isinstance(request, Request)
        self.server.send_response(self.server.accept(request))
        self.response_bytes = b"".join(self.server.data_to_send())
        self._deliver("downstream", self.response_bytes)
        self.client.events_received()  # the response

    def server_sends(self, *frames: Frame) -> None:
        for frame in frames:
            self.server.send_frame(frame)
        self._deliver("downstream", b"".join(self.server.data_to_send()))

    def client_sends(self, *frames: Frame) -> None:
        for frame in frames:
            self.client.send_frame(frame)
        self._deliver("upstream", b"".join(self.client.data_to_send()))

    def client_frames(self) -> list[Frame]:
        return [e for e in self.client.events_received() if isinstance(e, Frame)]

    def server_frames(self) -> list[Frame]:
        return [e for e in self.server.events_received() if isinstance(e, Frame)]

    def emitted(self, direction: str) -> bytes:
        return b"".join(i.data for i in self.items[direction] if isinstance(i, Emit))

    def aborts(self, direction: str) -> list[Abort]:
        return [i for i in self.items[direction] if isinstance(i, Abort)]

    def _deliver(self, direction: str, data: bytes) -> None:
        flt = self.up if direction == "upstream" else self.down
        receiver = self.server if direction == "upstream" else self.client
        self.inputs[direction] += data
        for chunk in self.chunker(data):
            items = flt.feed(chunk)
            self.items[direction].extend(items)
            for item in items:
                if isinstance(item, Emit):
                    receiver.receive_data(item.data)


def _named(fault: MessageFault, i: int) -> MessageFault:
    if fault.name:
        return fault
    return dataclasses.replace(fault, name=f"{fault.kind}#{i + 1}")


def event(seq: int, **fields: Any) -> Frame:
    return Frame(Opcode.TEXT, json.dumps({"type": "event", "seq": seq, **fields}).encode())


def seqs(frames: list[Frame]) -> list[int]:
    return [json.loads(bytes(f.data))["seq"] for f in frames if f.opcode == Opcode.TEXT]


def fault(kind: str, **kw: Any) -> MessageFault:
    direction = kw.pop("direction", "downstream")
    select = kw.pop("select", None)
    toxicity = kw.pop("toxicity", 1.0)
    target = kw.pop("target", None)
    name = kw.pop("name", "")
    return MessageFault(kind, direction, select, toxicity, name, kw, target)


# -- pass-through ---------------------------------------------------------------------


@CHUNKERS
def test_no_faults_forward_the_stream_byte_for_byte(chunker: Chunker) -> None:
    link = Link(chunker=chunker, compression=False)
    link.handshake()
    frames = [event(i, pad="x" * (i * 37)) for i in range(1, 30)]
    frames.append(Frame(Opcode.BINARY, bytes(range(256)) * 300))
    frames.append(Frame(Opcode.TEXT, b'{"seq": 31, "part": 1', fin=False))
    frames.append(Frame(Opcode.PING, b"keepalive"))
    frames.append(Frame(Opcode.CONT, b"}", fin=True))
    link.server_sends(*frames)
    link.client_sends(event(1), Frame(Opcode.BINARY, b"\x00" * 70000))
    assert link.emitted("upstream") == link.inputs["upstream"]
    assert link.emitted("downstream") == link.inputs["downstream"]
    received = link.client_frames()
    assert [f.data for f in received] == [f.data for f in frames]
    # The server's frames: the client's automatic pong to the ping, then the two messages.
    assert [f.data for f in link.server_frames()] == [b"keepalive", event(1).data, b"\x00" * 70000]
    assert link.down.messages == 31 and link.up.messages == 2
    assert link.down.active and link.up.active
    assert link.decisions == []


def test_compression_offer_is_stripped_from_the_request() -> None:
    link = Link()
    link.handshake()
    assert b"sec-websocket-extensions" in link.request_bytes.lower()
    assert b"sec-websocket-extensions" not in link.emitted("upstream").lower()
    assert b"sec-websocket-extensions" not in link.response_bytes.lower()
    # The rest of the request is untouched.
    kept = [
        line
        for line in link.request_bytes.split(b"\r\n")
        if not line.lower().startswith(b"sec-websocket-extensions")
    ]
    assert link.emitted("upstream") == b"\r\n".join(kept)


def test_compression_kept_when_asked_and_index_selection_still_works() -> None:
    link = Link([fault("drop", select=2)], strip_compression=False)
    link.handshake()
    assert b"permessage-deflate" in link.response_bytes
    seen: list[Message] = []

    def watch(message: Message) -> bool:
        seen.append(message)
        return False

    link.add(fault("duplicate", select=watch))
    link.server_sends(*(event(i) for i in range(1, 5)))
    assert seqs(link.client_frames()) == [1, 3, 4]
    assert all(m.compressed for m in seen)


# -- data-message faults ---------------------------------------------------------------


@CHUNKERS
def test_drop_by_index_loses_exactly_that_message(chunker: Chunker) -> None:
    link = Link([fault("drop", select=3)], chunker=chunker)
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 8)))
    assert seqs(link.client_frames()) == [1, 2, 4, 5, 6, 7]
    assert [str(d) for d in link.decisions] == [
        "#1 downstream drop#1: dropped (message 3 (text, 27 bytes))"
    ]


@CHUNKERS
def test_duplicate_delivers_the_original_bytes_twice(chunker: Chunker) -> None:
    link = Link([fault("duplicate", select=2)], chunker=chunker)
    link.handshake()
    start = len(link.emitted("downstream"))
    link.server_sends(*(event(i) for i in range(1, 5)))
    assert seqs(link.client_frames()) == [1, 2, 2, 3, 4]
    two = event(2).serialize(mask=False)
    assert link.emitted("downstream")[start:].count(two) == 2


@CHUNKERS
@pytest.mark.parametrize("by", [1, 2, 3])
def test_reorder_releases_the_message_after_by_later_ones(chunker: Chunker, by: int) -> None:
    link = Link([fault("reorder", select=3, by=by)], chunker=chunker)
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 9)))
    expected = [1, 2, *range(4, 4 + by), 3, *range(4 + by, 9)]
    assert seqs(link.client_frames()) == expected


def test_reorder_every_message_swaps_pairs() -> None:
    link = Link([fault("reorder")])
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 7)))
    assert seqs(link.client_frames()) == [2, 1, 4, 3, 6, 5]


def test_held_message_is_released_before_a_close_frame() -> None:
    link = Link([fault("reorder", select=2, by=5)])
    link.handshake()
    link.server_sends(event(1), event(2), event(3))
    link.server.send_close(1000, "bye")
    link._deliver("downstream", b"".join(link.server.data_to_send()))
    frames = link.client_frames()
    assert seqs(frames) == [1, 3, 2]
    assert frames[-1].opcode == Opcode.CLOSE


def test_removing_a_reorder_fault_releases_what_it_holds() -> None:
    link = Link([fault("reorder", select=1, by=10)])
    link.handshake()
    link.server_sends(event(1), event(2))
    link.faults.clear()
    assert link.down.holding == 1
    (released,) = link.down.refresh()
    assert isinstance(released, Emit) and released.data == event(1).serialize(mask=False)
    link.client.receive_data(released.data)
    assert link.down.refresh() == []
    link.server_sends(event(3))
    assert seqs(link.client_frames()) == [2, 1, 3]
    assert "released (fault removed)" in [d.outcome for d in link.decisions]


def test_delay_holds_the_message_and_everything_after_it() -> None:
    link = Link([fault("delay", select=2, delay=250)])
    link.handshake()
    link.items["downstream"].clear()
    link.server_sends(*(event(i) for i in range(1, 5)))
    emits = [i for i in link.items["downstream"] if isinstance(i, Emit)]
    assert [e.delay for e in emits] == [0.0, 0.25]
    assert emits[0].data == event(1).serialize(mask=False)
    assert emits[1].data == b"".join(event(i).serialize(mask=False) for i in (2, 3, 4))
    assert link.decisions[0].outcome == "delayed 250ms"


def test_select_by_opcode_and_by_predicate() -> None:
    pong3 = fault("drop", select=lambda m: m.opcode == "text" and m.json().get("n") == 3)
    link = Link([fault("drop", select="binary"), pong3])
    link.handshake()
    link.server_sends(
        event(1),
        Frame(Opcode.BINARY, b"blob"),
        Frame(Opcode.TEXT, b'{"type": "pong", "n": 3, "seq": 3}'),
        Frame(Opcode.TEXT, b'{"type": "pong", "n": 4, "seq": 4}'),
        Frame(Opcode.TEXT, b"not json"),
    )
    frames = link.client_frames()
    assert [f.data for f in frames] == [
        event(1).data,
        b'{"type": "pong", "n": 4, "seq": 4}',
        b"not json",
    ]
    # The predicate raised on "not json": not selected, and the decision says why.
    assert any(d.outcome == "skipped" and "predicate raised" in d.detail for d in link.decisions)


@CHUNKERS
def test_fragmented_message_is_one_unit_and_control_frames_interleave(chunker: Chunker) -> None:
    seen: list[Message] = []

    def big(message: Message) -> bool:
        seen.append(message)
        return message.index == 2

    link = Link([fault("drop", select=big)], chunker=chunker)
    link.handshake()
    link.server_sends(
        event(1),
        Frame(Opcode.TEXT, b'{"seq": 2, ', fin=False),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CONT, b'"a": 1', fin=False),
        Frame(Opcode.CONT, b"}", fin=True),
        event(3),
    )
    frames = link.client_frames()
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.TEXT, event(1).data),
        (Opcode.PING, b"p"),
        (Opcode.TEXT, event(3).data),
    ]
    assert [m.payload for m in seen if m.index == 2] == [b'{"seq": 2, "a": 1}']


# -- connection-ending faults ----------------------------------------------------------


@CHUNKERS
def test_close_injection_sends_the_code_and_nothing_after(chunker: Chunker) -> None:
    link = Link([fault("close", select=3, code=4001, reason="chaos")], chunker=chunker)
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 6)))
    frames = link.client_frames()
    assert seqs(frames) == [1, 2]
    assert frames[-1].opcode == Opcode.CLOSE
    assert Close.parse(frames[-1].data) == Close(4001, "chaos")
    assert link.client.close_rcvd == Close(4001, "chaos")


def test_upstream_close_injection_is_masked_and_the_server_accepts_it() -> None:
    link = Link([fault("close", direction="upstream", select=1, code=4002)])
    link.handshake()
    link.client_sends(event(1), event(2))
    (frame,) = link.server_frames()
    assert frame.opcode == Opcode.CLOSE and Close.parse(frame.data).code == 4002
    assert link.server.close_rcvd is not None and link.server.close_rcvd.code == 4002


def test_default_close_code_is_going_away() -> None:
    f = fault("close")
    assert f.attributes == {"code": 1001, "reason": ""}


@CHUNKERS
def test_abort_stops_before_the_selected_message(chunker: Chunker) -> None:
    link = Link([fault("abort", select=3)], chunker=chunker)
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 6)))
    assert seqs(link.client_frames()) == [1, 2]
    (abort,) = link.aborts("downstream")
    assert "abort" in abort.reason and "message 3" in abort.reason
    assert not link.down.active
    assert link.down.feed(event(9).serialize(mask=False)) == []


@CHUNKERS
@pytest.mark.parametrize("count", [0, 1, 4])
def test_cut_after_forwards_exactly_count_messages(chunker: Chunker, count: int) -> None:
    link = Link([fault("cut_after", count=count)], chunker=chunker)
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 8)))
    assert seqs(link.client_frames()) == list(range(1, count + 1))
    assert len(link.aborts("downstream")) == 1
    # The abort comes right after the N-th message, not at the next one.
    assert isinstance(link.items["downstream"][-1], Abort)


def test_cut_after_counts_only_selected_messages() -> None:
    link = Link([fault("cut_after", count=2, select="binary")])
    link.handshake()
    link.server_sends(
        event(1), Frame(Opcode.BINARY, b"a"), event(3), Frame(Opcode.BINARY, b"b"), event(5)
    )
    assert [f.data for f in link.client_frames()] == [event(1).data, b"a", event(3).data, b"b"]
    assert link.aborts("downstream")


# -- control frames --------------------------------------------------------------------


def test_swallow_pong_drops_pongs_only() -> None:
    link = Link([fault("swallow_pong")])
    link.handshake()
    link.server_sends(Frame(Opcode.PONG, b"1"), event(1), Frame(Opcode.PING, b"2"))
    frames = link.client_frames()
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.PING]
    assert [d.outcome for d in link.decisions] == ["swallowed"]


def test_delay_ping_delays_ping_frames_only() -> None:
    link = Link([fault("delay_ping", direction="upstream", delay=40)])
    link.handshake()
    link.items["upstream"].clear()
    link.client_sends(event(1), Frame(Opcode.PING, b"rtt"), event(2))
    emits = [i for i in link.items["upstream"] if isinstance(i, Emit)]
    assert [e.delay for e in emits] == [0.0, 0.04]
    assert [f.opcode for f in link.server_frames()] == [Opcode.TEXT, Opcode.PING, Opcode.TEXT]


def test_generic_kinds_select_control_frames_by_opcode_name() -> None:
    link = Link([fault("drop", select="close")])
    link.handshake()
    link.server.send_close(1000)
    link._deliver("downstream", b"".join(link.server.data_to_send()))
    assert link.client_frames() == []
    assert link.decisions[0].detail == "close frame (2 bytes)"


# -- toxicity, seeds, targets, live changes -------------------------------------------


def _dropped(seed: int) -> list[int]:
    link = Link([fault("drop", toxicity=0.1)], seed=seed)
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 301)))
    got = set(seqs(link.client_frames()))
    missing = sorted(set(range(1, 301)) - got)
    from_decisions = [int(d.detail.split()[1]) for d in link.decisions if d.outcome == "dropped"]
    assert missing == from_decisions
    return missing


def test_toxicity_draws_are_seeded_and_replayable() -> None:
    first, again, other = _dropped(11), _dropped(11), _dropped(12)
    assert first == again
    assert first != other
    assert 10 <= len(first) <= 60  # about 10% of 300


def test_toxicity_zero_never_applies_and_one_always() -> None:
    link = Link([fault("drop", toxicity=0.0), fault("duplicate", toxicity=1.0)])
    link.handshake()
    link.server_sends(*(event(i) for i in range(1, 4)))
    assert seqs(link.client_frames()) == [1, 1, 2, 2, 3, 3]


def test_each_fault_draws_from_its_own_stream() -> None:
    # Adding another probabilistic fault does not change which messages the first drops.
    alone = Link([fault("drop", toxicity=0.2, name="d")], seed=3)
    both = Link(
        [fault("drop", toxicity=0.2, name="d"), fault("delay", toxicity=0.5, delay=1)], seed=3
    )
    for link in (alone, both):
        link.handshake()
        link.server_sends(*(event(i) for i in range(1, 101)))
    assert [d for d in alone.decisions if d.subject == "d"] == [
        d for d in both.decisions if d.subject == "d"
    ]


def test_target_limits_a_fault_to_one_connection() -> None:
    one = Link([fault("drop", target=2)], connection=1)
    two = Link([fault("drop", target=2)], connection=2)
    for link in (one, two):
        link.handshake()
        link.server_sends(event(1), event(2))
    assert seqs(one.client_frames()) == [1, 2]
    assert seqs(two.client_frames()) == []


def test_direction_filters_faults() -> None:
    link = Link([fault("drop", direction="upstream", select=2)])
    link.handshake()
    link.server_sends(event(1), event(2))
    link.client_sends(event(1), event(2), event(3))
    assert seqs(link.client_frames()) == [1, 2]
    assert seqs(link.server_frames()) == [1, 3]


@CHUNKERS
def test_fault_added_mid_frame_starts_at_the_next_message_with_absolute_indices(
    chunker: Chunker,
) -> None:
    link = Link(chunker=chunker)
    link.handshake()
    big = Frame(Opcode.BINARY, b"z" * 5000).serialize(mask=False)
    rest = b"".join(event(i).serialize(mask=False) for i in range(2, 6))
    link.down.feed(big[:1000])  # message 1 is under way, forwarded unparsed
    link.client.receive_data(big[:1000])
    link.add(fault("drop", select={1, 3}))
    for chunk in chunker(big[1000:] + rest):
        for item in link.down.feed(chunk):
            assert isinstance(item, Emit)
            link.client.receive_data(item.data)
    frames = link.client_frames()
    assert frames[0].data == b"z" * 5000  # already under way: not dropped
    assert seqs(frames) == [2, 4, 5]


def test_fault_added_inside_a_fragmented_message_leaves_that_message_whole() -> None:
    link = Link()
    link.handshake()
    link.server_sends(Frame(Opcode.TEXT, b'{"seq": 1,', fin=False))
    link.add(fault("drop"))
    link.server_sends(Frame(Opcode.CONT, b' "x": 1}', fin=True), event(2))
    frames = link.client_frames()
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.CONT]
    assert link.down.messages == 2


def test_fast_path_resumes_after_faults_are_removed() -> None:
    link = Link([fault("drop", select=2)])
    link.handshake()
    link.server_sends(event(1), event(2))
    link.faults.clear()
    link.items["downstream"].clear()
    link.server_sends(event(3), event(4))
    assert seqs(link.client_frames()) == [1, 3, 4]
    assert link.down.messages == 4


# -- not WebSocket ---------------------------------------------------------------------


def test_refused_handshake_passes_through_unparsed() -> None:
    flt = MessageFilter(
        "downstream",
        connection=1,
        faults=lambda: [fault("drop", name="d")],
        rng=random.Random(1),
        record=lambda d: None,
    )
    response = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!"
    assert flt.feed(response) == [Emit(response)]
    assert not flt.active
    assert flt.feed(b"\x81\x01x") == [Emit(b"\x81\x01x")]


def test_plain_http_request_passes_through() -> None:
    flt = MessageFilter(
        "upstream", connection=1, faults=lambda: [], rng=random.Random(1), record=lambda d: None
    )
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Extensions: y\r\n\r\n"
    out = flt.feed(request)
    assert b"".join(i.data for i in out if isinstance(i, Emit)) == request
    assert not flt.active


def test_garbage_after_the_upgrade_falls_back_to_pass_through() -> None:
    decisions: list[FaultDecision] = []
    link = Link([fault("drop", select=5)])
    link.down._record = decisions.append
    link.handshake()
    junk = b"\x81\x85not-a-masked-server-frame"  # server frames are never masked
    out = link.down.feed(junk)
    assert b"".join(i.data for i in out if isinstance(i, Emit)) == junk
    assert decisions[-1].subject == "frames" and decisions[-1].outcome == "passing through"
    assert link.down.feed(b"more") == [Emit(b"more")]
