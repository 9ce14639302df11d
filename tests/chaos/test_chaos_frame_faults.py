"""Frame faults (fragment, corrupt, oversize): the frames built, and peers' answers to them.

Three layers, as for the other message faults:

* pure: what `chaos.frame_faults` and the message filter put on the wire, read back by
  the websockets sans-I/O protocols (the `Link` of the filter's own tests), which
  assemble fragments, answer pings and fail on broken frames as a real peer does;
* real sockets: `WsClient` -> `ChaosProxy` -> the reference server, which must answer
  fragmented messages normally (a ping between fragments included), close with 1007 on
  invalid UTF-8, 1002 on a reserved bit, an unknown opcode or an unmasked client frame,
  1009 on a message past its ``max_message_size``, and keep serving new connections;
* a server with a real bug of this class (`whole_frame_server`: a hand-written parser
  that ignores FIN), which the fragment fault catches while the reference server stays
  green.

The close code checked is ``client.close_code``: the code of the close frame the client
received, which is the server's own close frame relayed unchanged by the proxy (the
proxy injects no close for these faults: its decisions are checked to say so).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from test_chaos_message_filter import Link, event, fault, seqs
from websockets.asyncio import messages as websockets_messages
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from whole_frame_server import whole_frame_server

from pytest_ws_resilience.chaos.frame_faults import (
    PING_MARKER,
    FramePlan,
    answered_ping,
    build_frames,
    frame_plan,
    ping_label,
)
from pytest_ws_resilience.chaos.message_faults import (
    CORRUPTIONS,
    Message,
    fault_findings,
)
from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsConnectionClosedError
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

#: websockets' cap on the fragments of one message (None before websockets 17.4).
MAX_FRAGMENTS: int | None = getattr(websockets_messages, "MAX_FRAGMENTS", None)

#: The reference server's limit in these tests: small, so an oversize message is cheap.
MAX_SIZE = 4096
#: Bound for waits that should succeed; far above what loopback needs.
WAIT_S = 5.0

ClientFactory = Callable[..., Awaitable[WsClient]]


def ping(n: int, **fields: Any) -> Frame:
    return Frame(Opcode.TEXT, json.dumps({"type": "ping", "n": n, **fields}).encode())


# -- pure: the frames built -------------------------------------------------------------


def test_fragmented_downstream_message_arrives_in_parts_and_assembles() -> None:
    link = Link([fault("fragment", select=2, parts=3)], compression=False)
    link.handshake()
    link.server_sends(event(1), event(2, pad="é" * 20), event(3))
    frames = link.client_frames()
    assert [f.opcode for f in frames] == [
        Opcode.TEXT, Opcode.TEXT, Opcode.CONT, Opcode.CONT, Opcode.TEXT
    ]  # fmt: skip
    assert [f.fin for f in frames] == [True, False, False, True, True]
    assert b"".join(bytes(f.data) for f in frames[1:4]) == event(2, pad="é" * 20).data
    assert seqs([frames[0], frames[4]]) == [1, 3]
    assert [d.outcome for d in link.decisions] == ["fragmented into 3 frames"]


def test_fragmented_upstream_frames_are_masked_so_the_server_accepts_them() -> None:
    link = Link([fault("fragment", direction="upstream", parts=4)], compression=False)
    link.handshake()
    link.client_sends(ping(1), ping(2))
    frames = link.server_frames()
    assert len(frames) == 8  # a server protocol fails on any unmasked client frame
    assert link.server.state is State.OPEN
    assert b"".join(bytes(f.data) for f in frames[:4]) == ping(1).data
    assert b"".join(bytes(f.data) for f in frames[4:]) == ping(2).data


def test_a_ping_between_fragments_is_answered_and_its_pong_swallowed() -> None:
    link = Link(
        [fault("fragment", direction="upstream", parts=3, ping=True, name="frag")],
        compression=False,
    )
    link.handshake()
    link.client_sends(ping(1))
    frames = link.server_frames()
    assert [f.opcode for f in frames] == [
        Opcode.TEXT, Opcode.PING, Opcode.CONT, Opcode.PING, Opcode.CONT
    ]  # fmt: skip
    assert all(bytes(f.data).startswith(PING_MARKER) for f in frames if f.opcode == Opcode.PING)
    # The server protocol queued its pongs; they go downstream through the other filter,
    # which watches for them although no fault is armed for its own direction.
    link.server_sends(event(1))
    assert [f.opcode for f in link.client_frames()] == [Opcode.TEXT]  # pongs swallowed
    answered = [d for d in link.decisions if d.outcome == "pong answered"]
    assert [(d.subject, d.direction) for d in answered] == [("frag", "downstream")] * 2
    assert answered[0].detail == "ping 1 (between the fragments of message 1)"


def test_fragment_of_a_compressed_message_keeps_rsv1_on_the_first_frame_only() -> None:
    link = Link([fault("fragment", select=1, parts=2)], strip_compression=False)
    link.handshake()
    link.server_sends(event(1, pad="x" * 300), event(2))
    frames = link.client_frames()  # the client protocol decompresses: its frames are plain
    assert link.client.state is State.OPEN
    assert json.loads(b"".join(bytes(f.data) for f in frames[:2]))["seq"] == 1
    assert seqs(frames[2:]) == [2]


@pytest.mark.parametrize(
    ("how", "direction", "code"),
    [
        ("reserved_bit", "upstream", 1002),
        ("unknown_opcode", "upstream", 1002),
        ("wrong_mask", "upstream", 1002),
        ("reserved_bit", "downstream", 1002),
        ("unknown_opcode", "downstream", 1002),
        ("wrong_mask", "downstream", 1002),
    ],
)
def test_corrupt_frames_make_the_sans_io_peer_fail_with_1002(
    how: str, direction: str, code: int
) -> None:
    link = Link([fault("corrupt", direction=direction, select=2, how=how)])
    link.handshake()
    if direction == "upstream":
        link.client_sends(ping(1), ping(2))
        peer = link.server
    else:
        link.server_sends(event(1), event(2))
        peer = link.client
    assert peer.close_sent is not None and peer.close_sent.code == code == CORRUPTIONS[how]
    assert [d.outcome for d in link.decisions] == [f"corrupted ({how})"]


def test_invalid_utf8_is_a_text_message_ending_in_a_byte_utf8_never_has() -> None:
    link = Link([fault("corrupt", select="binary", how="invalid_utf8")])
    link.handshake()
    link.server_sends(event(1), Frame(Opcode.BINARY, b"blob"))
    frames = link.client_frames()
    assert frames[1].opcode == Opcode.TEXT and bytes(frames[1].data) == b"blob\xff"
    with pytest.raises(UnicodeDecodeError):
        bytes(frames[1].data).decode()


def test_oversize_grows_the_message_past_the_limit_and_the_peer_closes_1009() -> None:
    link = Link([fault("oversize", direction="upstream", select=2, limit=100)], max_size=100)
    link.handshake()
    link.client_sends(ping(1))
    assert link.server.state is State.OPEN  # a small message passes
    link.client_sends(ping(2))
    assert link.server.close_sent is not None and link.server.close_sent.code == 1009
    assert [d.outcome for d in link.decisions] == ["grown past 100 bytes"]


def test_oversize_pads_json_with_spaces_so_it_stays_json() -> None:
    plan = frame_plan([fault("oversize", limit=64)])
    assert plan is not None
    wire = build_frames(plan, Message(1, "text", b'{"a": 1}'), mask=False)
    assert wire[1] == 65 and json.loads(wire[2:]) == {"a": 1}


def test_faults_combine_on_one_message_and_with_duplicate() -> None:
    link = Link(
        [
            fault("fragment", select=1, parts=2),
            fault("duplicate", select=1),
            fault("oversize", select=1, limit=200),
        ],
        compression=False,
    )
    link.handshake()
    link.server_sends(event(1))
    frames = link.client_frames()
    assert [(f.opcode, f.fin) for f in frames] == [
        (Opcode.TEXT, False), (Opcode.CONT, True)
    ] * 2  # fmt: skip
    assert len(b"".join(bytes(f.data) for f in frames[:2])) == 201
    assert sorted(d.outcome for d in link.decisions) == [
        "duplicated",
        "fragmented into 2 frames",
        "grown past 200 bytes",
    ]


def test_frame_plan_merges_faults_and_ignores_the_others() -> None:
    assert frame_plan([fault("drop")]) is None
    plan = frame_plan(
        [
            fault("fragment", parts=2, name="a"),
            fault("fragment", parts=5, ping=True, name="b"),
            fault("corrupt", how="reserved_bit", name="c"),
            fault("corrupt", how="wrong_mask", name="d"),
        ]
    )
    assert plan == FramePlan(
        parts=5,
        ping="b",
        corruptions=frozenset({"reserved_bit", "wrong_mask"}),
        grow_to=0,
        outcomes=(
            ("a", "fragmented into 5 frames, a ping between each two"),
            ("b", "fragmented into 5 frames, a ping between each two"),
            ("c", "corrupted (reserved_bit)"),
            ("d", "corrupted (wrong_mask)"),
        ),
    )


def test_more_parts_than_bytes_sends_empty_continuation_frames() -> None:
    plan = frame_plan([fault("fragment", parts=4)])
    assert plan is not None
    wire = build_frames(plan, Message(1, "binary", b"ab"), mask=False)
    assert wire == b"\x02\x01a" + b"\x00\x01b" + b"\x00\x00" + b"\x80\x00"


def test_ping_labels_fit_a_control_frame_and_read_back() -> None:
    label = ping_label("é" * 200, 7, 2)
    assert len(label) <= 125 and label.startswith(PING_MARKER)
    name, which = answered_ping(label) or ("", "")
    assert set(name) == {"é"} and which == "ping 2 (between the fragments of message 7)"
    assert answered_ping(b"keepalive") is None


def test_toxicity_draws_replay_with_the_seed() -> None:
    def outcomes(seed: int) -> list[str]:
        link = Link([fault("fragment", toxicity=0.5)], seed=seed, compression=False)
        link.handshake()
        link.server_sends(*(event(i) for i in range(1, 30)))
        assert seqs([f for f in link.client_frames() if f.fin and f.opcode == Opcode.TEXT])
        return [f"{d.outcome} {d.detail}" for d in link.decisions]

    first = outcomes(5)
    assert first == outcomes(5)
    assert 0 < sum(o.startswith("fragmented") for o in first) < 29


@pytest.mark.parametrize(
    ("kind", "attributes", "error"),
    [
        ("fragment", {"parts": 1}, "fragment parts must be an integer >= 2, not 1"),
        ("fragment", {"ping": "yes"}, "fragment ping must be True or False, not 'yes'"),
        ("corrupt", {}, "corrupt needs the attribute 'how'"),
        ("corrupt", {"how": "bits"}, "corrupt how='bits' is not one of invalid_utf8, "),
        ("oversize", {}, "oversize needs the attribute 'limit'"),
        ("oversize", {"limit": -1}, "oversize limit must be an integer >= 0, not -1"),
        ("fragment", {"parts": 10**6}, "fragment parts must be at most 100_000, not 1_000_000"),
        ("oversize", {"limit": 1 << 30}, "oversize limit must be at most 1_073_741_823, not "),
        ("fragment", {"select": "ping"}, "fragment acts on data messages only, not on ping"),
    ],
)
def test_bad_frame_fault_settings_fail_in_one_line(
    kind: str, attributes: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match="^" + error.replace("(", r"\(")) as info:
        fault(kind, **attributes)
    assert "\n" not in str(info.value)


def test_a_frame_fault_that_never_fired_is_a_finding() -> None:
    armed = dataclasses.replace(fault("corrupt", how="invalid_utf8", select=9), name="c#1")
    (finding,) = fault_findings("p", [armed], applied={}, predicate_errors={}, connections=1)
    assert finding.subject == "message fault c#1 (corrupt downstream) on p"
    assert "select=9" in finding.reason


# -- real sockets: the reference server -------------------------------------------------


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, agent_delay_s=0.001, max_message_size=MAX_SIZE)
    async with ReferenceServer(config) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="function")
async def proxy(server: ReferenceServer) -> AsyncIterator[ChaosProxy]:
    async with ChaosProxy(server.url, seed=1234) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="function")
async def connect(tokens: TokenFactory) -> AsyncIterator[Callable[..., Awaitable[WsClient]]]:
    clients: list[WsClient] = []

    async def make(url: str, *, auth: bool = True) -> WsClient:
        user = tokens.user() if auth else None
        client = WsClient(url, user=user, settings=WsSettings(), recv_timeout=WAIT_S)
        clients.append(client)
        await client.connect()
        return client

    yield make
    await asyncio.gather(*(c.close() for c in clients))


async def round_trip(client: WsClient, n: int, **fields: Any) -> dict[str, Any]:
    await client.send_json({"type": "ping", "n": n, **fields})
    return await client.expect(type="pong", n=n, timeout=WAIT_S)


async def server_closes(client: WsClient, n: int) -> int:
    """Send ping ``n``; the server's close code, which must come instead of its pong."""
    await client.send_json({"type": "ping", "n": n})
    with pytest.raises(WsConnectionClosedError) as closed:
        await client.expect(type="pong", n=n, timeout=WAIT_S)
    assert closed.value.closed_by == "server"
    assert client.close_code == closed.value.code
    return closed.value.code


async def still_serves(
    server: ReferenceServer, connect: Callable[..., Awaitable[WsClient]]
) -> None:
    """A new connection straight to the server gets its answer: the server survived."""
    fresh = await connect(server.url)
    assert (await round_trip(fresh, 99))["n"] == 99


@pytest.mark.asyncio
async def test_reference_server_answers_messages_fragmented_upstream_with_pings_between(
    proxy: ChaosProxy, connect: Callable[..., Awaitable[WsClient]]
) -> None:
    proxy.add_message_fault(
        "fragment", direction="upstream", parts=3, ping=True, name="frag", expect_fire=True
    )
    client = await connect(proxy.url)
    for n in range(3):
        assert (await round_trip(client, n, text="é" * 50))["text"] == "é" * 50
    outcomes = [(d.subject, d.direction, d.outcome) for d in proxy.decisions]
    fragmented = ("frag", "upstream", "fragmented into 3 frames, a ping between each two")
    assert outcomes.count(fragmented) == 3
    # Every ping the proxy put between fragments was answered by the server.
    assert outcomes.count(("frag", "downstream", "pong answered")) == 3 * 2
    assert proxy.nothing_checked() == []


@pytest.mark.asyncio
async def test_client_assembles_messages_fragmented_downstream_with_pings_between(
    proxy: ChaosProxy, connect: Callable[..., Awaitable[WsClient]]
) -> None:
    proxy.add_message_fault("fragment", parts=4, ping=True, name="frag", expect_fire=True)
    client = await connect(proxy.url)
    await client.send_json({"type": "user_message", "text": "fragments"})
    await client.expect(type="agent_completed", timeout=WAIT_S)
    assert [e["seq"] for e in client.events] == list(range(1, len(client.events) + 1))
    fragmented = [d for d in proxy.decisions if d.outcome.startswith("fragmented")]
    assert len(fragmented) == len(client.events)

    def answered() -> list[Any]:
        return [d for d in proxy.decisions if d.outcome == "pong answered"]

    # The client answers the pings of the last message as it reads them; the proxy sees
    # those pongs a moment after the message is whole (bounded wait).
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while len(answered()) < 3 * len(client.events):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.005)
    assert {d.direction for d in answered()} == {"upstream"}
    assert len(answered()) == 3 * len(client.events)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
async def test_reference_server_closes_a_corrupt_client_frame_with_its_code_and_survives(
    server: ReferenceServer,
    proxy: ChaosProxy,
    connect: Callable[..., Awaitable[WsClient]],
    how: str,
) -> None:
    proxy.add_message_fault("corrupt", direction="upstream", select=2, how=how)
    client = await connect(proxy.url)
    await round_trip(client, 1)  # message 1 passes
    assert await server_closes(client, 2) == CORRUPTIONS[how]  # 1007 for UTF-8, else 1002
    assert [d.outcome for d in proxy.decisions] == [f"corrupted ({how})"]  # no injected close
    await still_serves(server, connect)


@pytest.mark.asyncio
async def test_reference_server_closes_an_oversize_message_with_1009_and_survives(
    server: ReferenceServer, proxy: ChaosProxy, connect: Callable[..., Awaitable[WsClient]]
) -> None:
    proxy.add_message_fault("oversize", direction="upstream", select=2, limit=MAX_SIZE)
    client = await connect(proxy.url)
    await round_trip(client, 1)
    assert await server_closes(client, 2) == 1009
    assert [d.outcome for d in proxy.decisions] == [f"grown past {MAX_SIZE} bytes"]
    await still_serves(server, connect)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
async def test_the_client_closes_a_corrupt_server_frame_with_its_code(
    server: ReferenceServer,
    proxy: ChaosProxy,
    connect: Callable[..., Awaitable[WsClient]],
    how: str,
) -> None:
    proxy.add_message_fault("corrupt", select=2, how=how)
    client = await connect(proxy.url)
    await client.send_json({"type": "ping", "n": 1})  # its pong is downstream message 2
    with pytest.raises(WsConnectionClosedError) as closed:
        await client.expect(type="pong", timeout=WAIT_S)
    # The client failed the connection: the code is the one it sent. websockets reads
    # nothing after failing, so no close frame came back (close_code 1006).
    assert (closed.value.closed_by, closed.value.sent_code) == ("client", CORRUPTIONS[how])
    assert client.close_code == 1006
    await still_serves(server, connect)


# -- a server with the bug: every frame taken as a whole message -------------------------


async def fragmented_ping_answered(
    url: str, connect: Callable[..., Awaitable[WsClient]], *, auth: bool
) -> bool:
    """Whether ``url`` answers an application ping that arrives in 3 frames."""
    async with ChaosProxy(url, seed=7) as proxy:
        proxy.add_message_fault("fragment", direction="upstream", parts=3, expect_fire=True)
        client = await connect(proxy.url, auth=auth)
        try:
            await round_trip(client, 1)
        except WsConnectionClosedError:
            return False
        finally:
            assert proxy.nothing_checked() == []  # the fault fired
        return True


@pytest.mark.asyncio
async def test_fragment_fault_catches_a_server_that_ignores_fin(
    server: ReferenceServer, connect: Callable[..., Awaitable[WsClient]]
) -> None:
    async with whole_frame_server() as buggy:
        # Unfragmented, the buggy server looks fine: ordinary clients never find the bug.
        plain = await connect(buggy.url, auth=False)
        assert (await round_trip(plain, 1))["n"] == 1

        assert not await fragmented_ping_answered(buggy.url, connect, auth=False)
        assert buggy.errors and buggy.errors[0].startswith("JSONDecodeError")

    # The same check keeps the reference server green.
    assert await fragmented_ping_answered(server.url, connect, auth=True)


@pytest.mark.asyncio
async def test_whole_frame_server_answers_pings_and_closes_cleanly(
    connect: Callable[..., Awaitable[WsClient]],
) -> None:
    async with whole_frame_server() as buggy:
        client = await connect(buggy.url, auth=False)
        assert await client.ping() >= 0
        await client.close()
        assert client.close_code == 1000
        assert buggy.errors == [] and buggy.connections == 1


def test_random_chunking_gives_the_same_fragments() -> None:
    def wire(seed: int) -> list[tuple[int, bool, bytes]]:
        from test_chaos_message_filter import random_cuts

        link = Link(
            [fault("fragment", parts=3, select={2, 4})],
            compression=False,
            chunker=lambda data: random_cuts(data, seed=seed),
        )
        link.handshake()
        link.server_sends(*(event(i, pad="z" * i * 50) for i in range(1, 6)))
        return [(f.opcode, f.fin, bytes(f.data)) for f in link.client_frames()]

    assert wire(1) == wire(2) == wire(random.Random(3).randint(4, 99))


# -- as users use it: ws_chaos in a pytest run ------------------------------------------

USER_SUITE = """
import pytest

from pytest_ws_resilience.errors import WsConnectionClosedError

@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["invalid_utf8", "reserved_bit", "unknown_opcode", "wrong_mask"])
async def test_corrupt(ws_chaos, ws_client_factory, how):
    proxy = await ws_chaos()
    proxy.add_message_fault("corrupt", direction="upstream", how=how, expect_fire=True)
    client = await ws_client_factory(url=proxy.url)
    await client.send_json({"type": "ping", "n": 1})
    with pytest.raises(WsConnectionClosedError):
        await client.expect(type="pong")
    assert client.close_code == (1007 if how == "invalid_utf8" else 1002)
    fresh = await ws_client_factory()
    await fresh.send_json({"type": "ping", "n": 2})
    await fresh.expect(type="pong", n=2)

@pytest.mark.asyncio
async def test_fault_that_never_fires(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    proxy.add_message_fault("fragment", direction="upstream", select=5, expect_fire=True)
    client = await ws_client_factory(url=proxy.url)
    await client.send_json({"type": "ping", "n": 1})
    await client.expect(type="pong")
"""


def test_frame_faults_in_a_users_suite_and_one_that_never_fired(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(test_user_frames=USER_SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*message fault fragment#1 (fragment upstream) on * applied 0 times in 1 "
            "connection(s): no upstream message matched select=5*",
            "*chaos: 4 faults applied (corrupt 4)*",
        ]
    )


@pytest.mark.asyncio
async def test_reference_server_closes_a_message_in_too_many_frames_with_1009(
    server: ReferenceServer, proxy: ChaosProxy, connect: Callable[..., Awaitable[WsClient]]
) -> None:
    proxy.add_message_fault("fragment", direction="upstream", select=2, parts=5000)
    client = await connect(proxy.url)
    await round_trip(client, 1)
    if MAX_FRAGMENTS is not None:
        # websockets 17.4 and later assemble at most 4096 fragments per message.
        assert MAX_FRAGMENTS < 5000
        assert await server_closes(client, 2) == 1009
    else:
        # Before, a message in any number of fragments is assembled and answered (the
        # floor of pyproject.toml, .ci/floor-check).
        await round_trip(client, 2)
    await still_serves(server, connect)
