"""The reference server over real loopback sockets, with raw websockets clients.

Every behaviour a test of this package relies on (auth methods and refusals, the
agent's events, isolation, history, errors, limits, pings, faults, shutdown, the
threaded embedded server) is proven here against the real server, so later features
can be demonstrated against it with confidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from json_depth import decoder_depth_limit, nested_lists
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from pytest_ws_resilience.client.tokens import RsaKeyPair, TestUser, TokenFactory
from pytest_ws_resilience.errors import WsResilienceError
from pytest_ws_resilience.testing import (
    ACCEPT_INVALID_TOKENS,
    DROP_EVENT,
    DUPLICATE_EVENT,
    FAULTS,
    LEAK,
    LOSE_HISTORY,
    REORDER_EVENTS,
    SLOW_ACCEPT,
    EmbeddedServer,
    ReferenceServer,
    ServerConfig,
    parse_faults,
)
from pytest_ws_resilience.testing.agent import AgentRun, plan_run

#: Bound of every single receive in this file; generous, only hit when something is wrong.
RECV_S = 5.0
AGENT_TYPES = [
    "agent_started",
    "agent_thinking",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]
AUTH_METHODS = ["subprotocol", "query", "header", "cookie"]


# -- helpers ---------------------------------------------------------------------------


def fast_config(tokens: TokenFactory | None = None, **changes: Any) -> ServerConfig:
    """A server config for tests: HS256 with ``tokens``' secret, a fast agent, no pings."""
    base: dict[str, Any] = {"agent_delay_s": 0.001, "ping_interval": None}
    if tokens is not None:
        base["secret"] = tokens.secret
    else:
        base["require_auth"] = False
    base.update(changes)
    return ServerConfig(**base)


def auth_options(url: str, token: str | None, method: str) -> tuple[str, dict[str, Any]]:
    """URL and ``connect()`` keyword arguments presenting ``token`` by ``method``."""
    if token is None:
        return url, {}
    if method == "subprotocol":
        return url, {"subprotocols": [Subprotocol("jwt-auth"), Subprotocol(f"jwt.{token}")]}
    if method == "query":
        return f"{url}?token={token}", {}
    if method == "header":
        return url, {"additional_headers": {"Authorization": f"Bearer {token}"}}
    if method == "cookie":
        return url, {"additional_headers": {"Cookie": f"access_token={token}"}}
    raise AssertionError(f"unknown method {method}")


@contextlib.asynccontextmanager
async def open_client(
    url: str, token: str | None = None, method: str = "header", **options: Any
) -> AsyncIterator[ClientConnection]:
    target, kwargs = auth_options(url, token, method)
    kwargs.update(options)
    async with connect(target, proxy=None, open_timeout=RECV_S, close_timeout=1, **kwargs) as ws:
        yield ws


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(RECV_S):
        raw = await ws.recv()
    assert isinstance(raw, str)
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data


async def established(ws: ClientConnection) -> dict[str, Any]:
    hello = await recv_json(ws)
    assert hello["type"] == "connection_established"
    return hello


async def send_json(ws: ClientConnection, payload: dict[str, Any]) -> None:
    await ws.send(json.dumps(payload))


async def collect_run(ws: ClientConnection, run_id: str) -> list[dict[str, Any]]:
    """Frames of run ``run_id`` received on ``ws``, up to its agent_completed."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(RECV_S):
        while True:
            frame = await recv_json(ws)
            if frame.get("run_id") != run_id:
                continue
            frames.append(frame)
            if frame["type"] == "agent_completed":
                return frames


async def collect_run_raw(ws: ClientConnection, run_id: str) -> list[str]:
    """Raw text frames of run ``run_id``, up to its agent_completed (for identity checks)."""
    frames: list[str] = []
    async with asyncio.timeout(RECV_S):
        while True:
            raw = await ws.recv()
            assert isinstance(raw, str)
            data = json.loads(raw)
            if data.get("run_id") == run_id:
                frames.append(raw)
                if data["type"] == "agent_completed":
                    return frames


async def start_run(ws: ClientConnection, text: str = "hello agent", **ids: str) -> str:
    run_id = ids.pop("run_id", f"run-{uuid.uuid4().hex[:8]}")
    await send_json(ws, {"type": "user_message", "text": text, "run_id": run_id, **ids})
    return run_id


async def assert_nothing_pending(ws: ClientConnection) -> None:
    """Prove no frame is waiting: the next frame is the answer to a fresh ping.

    The server writes frames in order, so anything already sent to this connection
    (a leaked event, say) would arrive before the pong.
    """
    nonce = uuid.uuid4().hex
    await send_json(ws, {"type": "ping", "nonce": nonce})
    frame = await recv_json(ws)
    assert frame == {"type": "pong", "nonce": nonce, "seq": frame["seq"]}, frame


async def expect_rejected(url: str, token: str | None, method: str) -> Response:
    with pytest.raises(InvalidStatus) as info:
        async with open_client(url, token, method):
            pass
    response = info.value.response
    assert response.status_code == 401
    return response


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory(secrets.token_urlsafe(32))


@pytest.fixture(scope="module")
def rsa_keys() -> RsaKeyPair:
    return RsaKeyPair.generate()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(fast_config(tokens)) as running:
        yield running


@pytest.fixture
def alice(tokens: TokenFactory) -> TestUser:
    return tokens.user()


@pytest.fixture
def bob(tokens: TokenFactory) -> TestUser:
    return tokens.user()


# -- auth ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("method", AUTH_METHODS)
async def test_each_auth_method_is_accepted_with_hs256(
    server: ReferenceServer, alice: TestUser, method: str
) -> None:
    async with open_client(server.url, alice.token, method) as ws:
        hello = await established(ws)
        assert hello["user_id"] == alice.id
        assert hello["auth_method"] == method
        if method == "subprotocol":
            assert ws.subprotocol == "jwt-auth"


@pytest.mark.asyncio
@pytest.mark.parametrize("method", AUTH_METHODS)
async def test_each_auth_method_is_accepted_with_rs256(rsa_keys: RsaKeyPair, method: str) -> None:
    tokens = TokenFactory(private_key=rsa_keys.private_pem, public_key=rsa_keys.public_pem)
    user = tokens.user()
    config = fast_config(public_key=rsa_keys.public_pem, require_auth=True)
    async with ReferenceServer(config) as server, open_client(server.url, user.token, method) as ws:
        hello = await established(ws)
        assert hello["user_id"] == user.id
        assert hello["auth_method"] == method


@pytest.mark.asyncio
async def test_server_with_both_keys_accepts_hs256_and_rs256_tokens(rsa_keys: RsaKeyPair) -> None:
    hs = TokenFactory(secrets.token_urlsafe(32))
    rs = TokenFactory(private_key=rsa_keys.private_pem, public_key=rsa_keys.public_pem)
    config = fast_config(hs, public_key=rsa_keys.public_pem)
    async with ReferenceServer(config) as server:
        for factory in (hs, rs):
            user = factory.user()
            async with open_client(server.url, user.token) as ws:
                assert (await established(ws))["user_id"] == user.id


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "missing token"),
        ("malformed", "malformed token"),
        ("expired", "token expired"),
        ("wrong_key", "invalid signature"),
    ],
)
@pytest.mark.parametrize("method", AUTH_METHODS)
async def test_bad_tokens_get_401_with_a_reason_and_never_the_token(
    server: ReferenceServer,
    tokens: TokenFactory,
    alice: TestUser,
    kind: str,
    reason: str,
    method: str,
) -> None:
    token = {
        "missing": None,
        "malformed": tokens.malformed(),
        "expired": tokens.expired(alice),
        "wrong_key": tokens.wrong_key(alice),
    }[kind]
    response = await expect_rejected(server.url, token, method)
    body = response.body.decode()
    assert body.startswith(f"401 Unauthorized: {reason}")
    assert token is None or token not in body
    assert server.stats.handshakes_rejected == 1


@pytest.mark.asyncio
async def test_rs256_server_refuses_an_hs256_token(rsa_keys: RsaKeyPair, alice: TestUser) -> None:
    config = fast_config(public_key=rsa_keys.public_pem, require_auth=True)
    async with ReferenceServer(config) as server:
        response = await expect_rejected(server.url, alice.token, "header")
    assert b"algorithm 'HS256' not accepted" in response.body


@pytest.mark.asyncio
async def test_audience_and_issuer_are_verified_when_configured() -> None:
    secret = secrets.token_urlsafe(32)
    good = TokenFactory(secret, audience="agents", issuer="https://issuer.test")
    wrong_aud = TokenFactory(secret, audience="other", issuer="https://issuer.test")
    wrong_iss = TokenFactory(secret, audience="agents", issuer="https://other.test")
    config = fast_config(good, audience="agents", issuer="https://issuer.test")
    async with ReferenceServer(config) as server:
        async with open_client(server.url, good.user().token) as ws:
            await established(ws)
        response = await expect_rejected(server.url, wrong_aud.user().token, "header")
        assert b"invalid audience" in response.body
        response = await expect_rejected(server.url, wrong_iss.user().token, "header")
        assert b"invalid issuer" in response.body


@pytest.mark.asyncio
async def test_a_method_outside_accepted_auth_counts_as_no_token(
    tokens: TokenFactory, alice: TestUser
) -> None:
    config = fast_config(tokens, accepted_auth=("cookie",))
    async with ReferenceServer(config) as server:
        for method in ("subprotocol", "query", "header"):
            response = await expect_rejected(server.url, alice.token, method)
            assert b"missing token" in response.body
        async with open_client(server.url, alice.token, "cookie") as ws:
            assert (await established(ws))["auth_method"] == "cookie"


@pytest.mark.asyncio
async def test_without_required_auth_users_are_named_by_query_or_generated() -> None:
    async with ReferenceServer(fast_config()) as server:
        async with open_client(f"{server.url}?user=carol") as ws:
            assert (await established(ws))["user_id"] == "carol"
        async with open_client(server.url) as ws:
            assert (await established(ws))["user_id"]


# -- protocol --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_connection_established_carries_ids_recv_timeout_and_seq_1(
    tokens: TokenFactory, alice: TestUser
) -> None:
    async with ReferenceServer(fast_config(tokens, recv_timeout=42.5)) as server:
        async with (
            open_client(server.url, alice.token) as one,
            open_client(server.url, alice.token) as two,
        ):
            first, second = await established(one), await established(two)
    for hello in (first, second):
        assert hello["user_id"] == alice.id
        assert hello["recv_timeout"] == 42.5
        assert hello["seq"] == 1
        assert isinstance(hello["connection_id"], str) and hello["connection_id"]
    assert first["connection_id"] != second["connection_id"]


@pytest.mark.asyncio
async def test_a_run_emits_the_five_events_in_order_with_all_fields(
    server: ReferenceServer, alice: TestUser
) -> None:
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        run_id = await start_run(ws, "What is the weather in Paris?", thread_id="thread-paris")
        frames = await collect_run(ws, run_id)
    assert [f["type"] for f in frames] == AGENT_TYPES
    for frame in frames:
        assert frame["run_id"] == run_id
        assert frame["thread_id"] == "thread-paris"
        assert frame["user_id"] == alice.id
    # The clean server neither drops, duplicates nor reorders: seq counts up by one.
    assert [f["seq"] for f in frames] == list(range(2, 2 + len(frames)))
    started, thinking, executing, completed, done = (
        frames[0],
        frames[1],
        frames[3],
        frames[4],
        frames[5],
    )
    assert started["input"] == "What is the weather in Paris?"
    assert "weather in Paris" in thinking["thought"]
    assert executing["tool"] == "search" and completed["tool"] == "search"
    assert isinstance(completed["output"], str) and completed["output"]
    assert done["result"] == "You said: What is the weather in Paris?"


@pytest.mark.asyncio
async def test_ids_are_generated_and_thinking_steps_are_configurable(
    tokens: TokenFactory, alice: TestUser
) -> None:
    async with ReferenceServer(fast_config(tokens, thinking_steps=4)) as server:
        async with open_client(server.url, alice.token) as ws:
            await established(ws)
            await send_json(ws, {"type": "user_message", "text": "hi"})
            first = await recv_json(ws)
            frames = [first, *await collect_run(ws, first["run_id"])]
    assert [f["type"] for f in frames].count("agent_thinking") == 4
    assert first["run_id"].startswith("run-") and first["thread_id"].startswith("thread-")


@pytest.mark.asyncio
async def test_interleaved_runs_keep_seq_strictly_increasing(
    server: ReferenceServer, alice: TestUser
) -> None:
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        runs = [await start_run(ws, f"question {i}") for i in range(3)]
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(RECV_S):
            while sum(f["type"] == "agent_completed" for f in frames) < len(runs):
                frames.append(await recv_json(ws))
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for run_id in runs:
        assert [f["type"] for f in frames if f["run_id"] == run_id] == AGENT_TYPES


@pytest.mark.asyncio
async def test_every_connection_of_a_user_receives_the_users_events(
    server: ReferenceServer, alice: TestUser
) -> None:
    async with (
        open_client(server.url, alice.token) as one,
        open_client(server.url, alice.token, "query") as two,
    ):
        await established(one)
        await established(two)
        run_id = await start_run(one)
        on_one, on_two = await collect_run(one, run_id), await collect_run(two, run_id)
    assert [f["type"] for f in on_one] == [f["type"] for f in on_two] == AGENT_TYPES


@pytest.mark.asyncio
async def test_users_never_see_each_others_events(
    server: ReferenceServer, alice: TestUser, bob: TestUser
) -> None:
    async with open_client(server.url, alice.token) as a, open_client(server.url, bob.token) as b:
        await established(a)
        await established(b)
        run_id = await start_run(a, "alice's secret plan")
        await collect_run(a, run_id)
        await assert_nothing_pending(b)


@pytest.mark.asyncio
async def test_history_survives_reconnect_and_stays_private(
    server: ReferenceServer, alice: TestUser, bob: TestUser, tokens: TokenFactory
) -> None:
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        run_id = await start_run(ws, "remember the blue door", thread_id="t-1")
        await collect_run(ws, run_id)
    # A new connection, with a fresh token for the same user: the context is back.
    again = tokens.user(id=alice.id)
    async with open_client(server.url, again.token, "cookie") as ws:
        await established(ws)
        await send_json(ws, {"type": "get_history", "thread_id": "t-1"})
        history = await recv_json(ws)
        await send_json(ws, {"type": "get_history"})
        threads = await recv_json(ws)
    assert history["type"] == "history" and history["thread_id"] == "t-1"
    assert history["messages"] == [
        {"role": "user", "text": "remember the blue door", "run_id": run_id},
        {"role": "agent", "text": "You said: remember the blue door", "run_id": run_id},
    ]
    assert threads["threads"] == ["t-1"]
    async with open_client(server.url, bob.token) as ws:
        await established(ws)
        await send_json(ws, {"type": "get_history", "thread_id": "t-1"})
        assert (await recv_json(ws))["messages"] == []
        await send_json(ws, {"type": "get_history"})
        assert (await recv_json(ws))["threads"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "user_message"}', "invalid_message"),
        ('{"type": "user_message", "text": 42}', "invalid_message"),
        ('{"type": "get_history", "thread_id": 7}', "invalid_message"),
        ("[1, 2]", "invalid_message"),
        ('{"text": "no type"}', "invalid_message"),
        (b"\x00\x01binary", "unsupported_binary"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_connection_stays_open(
    server: ReferenceServer, alice: TestUser, frame: str | bytes, code: str
) -> None:
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        await ws.send(frame)
        error = await recv_json(ws)
        assert error["type"] == "error"
        assert error["code"] == code
        assert isinstance(error["message"], str) and error["message"]
        await assert_nothing_pending(ws)  # still open and answering


@pytest.mark.asyncio
async def test_a_frame_above_max_message_size_closes_with_1009(
    tokens: TokenFactory, alice: TestUser
) -> None:
    async with ReferenceServer(fast_config(tokens, max_message_size=1024)) as server:
        async with open_client(server.url, alice.token) as ws:
            await established(ws)
            await ws.send("x" * 1000)  # under the limit: an error frame, connection open
            assert (await recv_json(ws))["code"] == "invalid_json"
            await ws.send("x" * 2048)
            with pytest.raises(ConnectionClosedError) as info:
                await recv_json(ws)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


@pytest.mark.asyncio
async def test_application_ping_is_answered_with_pong_echoing_fields(
    server: ReferenceServer, alice: TestUser
) -> None:
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        await send_json(ws, {"type": "ping", "id": 7, "sent_at": 123.5, "tags": ["a"]})
        pong = await recv_json(ws)
    assert pong == {"type": "pong", "id": 7, "sent_at": 123.5, "tags": ["a"], "seq": 2}


#: Nestings tried on each side of the server's edge, once found.
EDGE_LEVELS = 64
#: The edge is searched for up to here: past every CPython's decoder (about 65,000
#: levels at most). The deepest ping sent, under twice this, is under 800 kB: within
#: the server's frame limit (`DEFAULT_MAX_MESSAGE_SIZE`, 5 MiB).
EDGE_SEARCH_CEILING = 200_000


async def _ping_nested(ws: ClientConnection, depth: int) -> str:
    """What a ping whose nonce nests ``depth`` lists gets: "pong" or an error's code."""
    await ws.send('{"type":"ping","nonce":' + nested_lists(depth) + "}")
    async with asyncio.timeout(RECV_S):
        raw = await ws.recv()
    assert isinstance(raw, str)
    # A pong this deep may be more than json.loads takes here: read its head.
    return "pong" if raw.startswith('{"type":"pong",') else str(json.loads(raw)["code"])


@pytest.mark.asyncio
async def test_a_ping_nested_at_the_decoders_edge_gets_a_pong_or_an_error_never_a_drop(
    server: ReferenceServer, alice: TestUser
) -> None:
    # At the edge, a nonce can decode and yet be too deep to encode back into the pong
    # (on Python 3.11, two levels below the limit; on 3.15, the top 7,000 levels or so):
    # the handler raised and the connection closed with 1011. The server's edge is
    # found by asking it: its stack is not this test's, so on 3.11, where the decoder
    # counts Python's frames, it lies up to dozens of levels off `decoder_depth_limit`.
    limit = decoder_depth_limit()
    async with open_client(server.url, alice.token, max_size=None) as ws:
        await established(ws)
        low, high = limit // 2, 4 * limit
        assert await _ping_nested(ws, low) == "pong"
        while (answer := await _ping_nested(ws, high)) == "pong":  # it decodes deeper
            assert high < EDGE_SEARCH_CEILING, f"the server decoded a ping {high:,} deep"
            low, high = high, 2 * high
        assert answer == "invalid_json", (high, answer)
        while high - low > 1:  # the least depth that gets an error, by bisection
            middle = (low + high) // 2
            answer = await _ping_nested(ws, middle)
            assert answer in ("pong", "invalid_json"), (middle, answer)
            low, high = (middle, high) if answer == "pong" else (low, middle)
        around = range(high - EDGE_LEVELS, high + EDGE_LEVELS + 1)
        answers = {depth: await _ping_nested(ws, depth) for depth in around}
    assert set(answers.values()) == {"pong", "invalid_json"}, answers


@pytest.mark.asyncio
async def test_websocket_ping_is_answered(server: ReferenceServer, alice: TestUser) -> None:
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        pong_waiter = await ws.ping()
        async with asyncio.timeout(RECV_S):
            latency = await pong_waiter
    assert latency >= 0


@pytest.mark.asyncio
async def test_server_sends_its_own_pings_at_ping_interval(
    tokens: TokenFactory, alice: TestUser
) -> None:
    """Seen with websockets' sans-I/O client over a raw socket: the asyncio client
    answers pings silently, so it cannot show them."""
    config = fast_config(tokens, ping_interval=0.05, ping_timeout=RECV_S)
    async with ReferenceServer(config) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            protocol = ClientProtocol(parse_uri(server.url))
            request = protocol.connect()
            request.headers["Authorization"] = f"Bearer {alice.token}"
            protocol.send_request(request)
            pings = 0
            async with asyncio.timeout(RECV_S):
                while pings < 2:
                    writer.write(b"".join(protocol.data_to_send()))
                    data = await reader.read(65536)
                    assert data, "server closed the connection"
                    protocol.receive_data(data)
                    for event in protocol.events_received():
                        if isinstance(event, Response):
                            assert event.status_code == 101
                        elif isinstance(event, Frame) and event.opcode is Opcode.PING:
                            pings += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# -- faults ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_leak_fault_sends_a_users_events_to_other_users(
    server: ReferenceServer, alice: TestUser, bob: TestUser
) -> None:
    server.set_faults(LEAK)
    async with open_client(server.url, alice.token) as a, open_client(server.url, bob.token) as b:
        await established(a)
        await established(b)
        run_id = await start_run(a, "alice's secret plan")
        leaked = await collect_run(b, run_id)
    assert [f["type"] for f in leaked] == AGENT_TYPES
    assert {f["user_id"] for f in leaked} == {alice.id}
    assert leaked[0]["input"] == "alice's secret plan"


@pytest.mark.asyncio
async def test_drop_event_fault_drops_tool_completed_leaving_a_seq_gap(
    server: ReferenceServer, alice: TestUser
) -> None:
    server.set_faults(DROP_EVENT)
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        frames = await collect_run(ws, await start_run(ws))
    types = [f["type"] for f in frames]
    assert "tool_completed" not in types
    assert types == [t for t in AGENT_TYPES if t != "tool_completed"]
    seqs = [f["seq"] for f in frames]
    gaps = [b - a for a, b in itertools.pairwise(seqs)]
    assert gaps.count(2) == 1 and set(gaps) == {1, 2}
    assert seqs[types.index("agent_completed")] - seqs[types.index("tool_executing")] == 2


@pytest.mark.asyncio
async def test_reorder_events_fault_sends_tool_completed_before_tool_executing(
    server: ReferenceServer, alice: TestUser
) -> None:
    server.set_faults(REORDER_EVENTS)
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        frames = await collect_run(ws, await start_run(ws))
    types = [f["type"] for f in frames]
    assert types.index("tool_completed") < types.index("tool_executing")
    assert sorted(types) == sorted(AGENT_TYPES)


@pytest.mark.asyncio
async def test_duplicate_event_fault_delivers_tool_executing_twice_identically(
    server: ReferenceServer, alice: TestUser
) -> None:
    server.set_faults(DUPLICATE_EVENT)
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        raw = await collect_run_raw(ws, await start_run(ws))
    executing = [r for r in raw if json.loads(r)["type"] == "tool_executing"]
    assert len(executing) == 2
    assert executing[0] == executing[1]  # same frame, same seq
    assert len(raw) == len(AGENT_TYPES) + 1


@pytest.mark.asyncio
async def test_slow_accept_fault_delays_the_handshake(
    tokens: TokenFactory, alice: TestUser
) -> None:
    delay = 0.4
    async with ReferenceServer(fast_config(tokens, slow_accept_s=delay)) as server:
        server.set_faults(SLOW_ACCEPT)
        started = time.monotonic()
        async with open_client(server.url, alice.token) as ws:
            slow = time.monotonic() - started
            await established(ws)
        server.set_faults()
        started = time.monotonic()
        async with open_client(server.url, alice.token) as ws:
            fast = time.monotonic() - started
    assert slow >= delay * 0.8
    assert fast < slow


@pytest.mark.asyncio
async def test_lose_history_fault_forgets_history_on_reconnect(
    server: ReferenceServer, alice: TestUser
) -> None:
    server.set_faults(LOSE_HISTORY)
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        await collect_run(ws, await start_run(ws, "remember me", thread_id="t-lost"))
        await send_json(ws, {"type": "get_history", "thread_id": "t-lost"})
        assert len((await recv_json(ws))["messages"]) == 2  # kept while connected
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        await send_json(ws, {"type": "get_history", "thread_id": "t-lost"})
        assert (await recv_json(ws))["messages"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["expired", "wrong_key"])
async def test_accept_invalid_tokens_fault_accepts_bad_tokens_as_their_subject(
    server: ReferenceServer, tokens: TokenFactory, alice: TestUser, kind: str
) -> None:
    server.set_faults(ACCEPT_INVALID_TOKENS)
    token = tokens.expired(alice) if kind == "expired" else tokens.wrong_key(alice)
    async with open_client(server.url, token) as ws:
        assert (await established(ws))["user_id"] == alice.id


@pytest.mark.asyncio
async def test_accept_invalid_tokens_fault_accepts_malformed_but_not_missing_tokens(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    server.set_faults(ACCEPT_INVALID_TOKENS)
    async with open_client(server.url, tokens.malformed()) as ws:
        assert (await established(ws))["user_id"]
    await expect_rejected(server.url, None, "header")


@pytest.mark.asyncio
async def test_set_faults_switches_behaviour_at_runtime(
    server: ReferenceServer, alice: TestUser
) -> None:
    assert server.faults == frozenset()
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        clean = await collect_run(ws, await start_run(ws))
        server.set_faults(REORDER_EVENTS, DROP_EVENT)
        assert server.faults == {REORDER_EVENTS, DROP_EVENT}
        faulty = await collect_run(ws, await start_run(ws))
        server.set_faults()
        healed = await collect_run(ws, await start_run(ws))
    assert [f["type"] for f in clean] == [f["type"] for f in healed] == AGENT_TYPES
    assert [f["type"] for f in faulty] == [t for t in AGENT_TYPES if t != "tool_completed"]
    with pytest.raises(ValueError, match="unknown fault 'nope'"):
        server.set_faults("nope")


def test_parse_faults_names_the_unknown_fault_and_the_valid_ones() -> None:
    assert parse_faults(["leak", "drop_event"]) == {LEAK, DROP_EVENT}
    assert parse_faults("leak") == {LEAK}
    with pytest.raises(ValueError) as info:
        parse_faults(["leak", "gremlins"])
    message = str(info.value)
    assert "\n" not in message and "'gremlins'" in message
    assert all(name in message for name in FAULTS)


def test_agent_plan_applies_faults_without_io() -> None:
    run = AgentRun(run_id="r", thread_id="t", user_id="u", text="hi")
    clean = plan_run(run, thinking_steps=1, faults=frozenset())
    assert [p.event["type"] for p in clean] == [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    ]
    assert all(p.copies == 1 for p in clean)
    faulty = plan_run(run, thinking_steps=1, faults={DROP_EVENT, DUPLICATE_EVENT})
    copies = {p.event["type"]: p.copies for p in faulty}
    assert copies["tool_completed"] == 0 and copies["tool_executing"] == 2


# -- lifecycle -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stop_with_open_and_stalled_clients_returns_promptly(
    tokens: TokenFactory, alice: TestUser
) -> None:
    server = await ReferenceServer(fast_config(tokens)).start()
    stop_timeout = 1.0
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(open_client(server.url, alice.token))]
        clients.append(await stack.enter_async_context(open_client(server.url, alice.token)))
        for ws in clients:
            await established(ws)
        # A TCP client that never sends its handshake request: only aborting ends it.
        _, stalled = await asyncio.open_connection(server.host, server.port)
        stack.callback(stalled.close)
        await start_run(clients[0])  # a run in flight is cancelled too
        started = time.monotonic()
        await server.stop(timeout=stop_timeout)
        elapsed = time.monotonic() - started
        assert elapsed < stop_timeout + 1.0
        for ws in clients:
            async with asyncio.timeout(RECV_S):
                await ws.wait_closed()
            assert ws.close_code == 1001
    assert not server.running
    await server.stop()  # idempotent
    with pytest.raises(OSError):
        async with open_client(server.url, alice.token):
            pass


@pytest.mark.asyncio
async def test_stats_count_handshakes_connections_and_messages(
    server: ReferenceServer, alice: TestUser
) -> None:
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        await assert_nothing_pending(ws)
        assert server.stats.active_connections == 1
    await expect_rejected(server.url, None, "header")
    stats = server.stats.snapshot()
    assert stats.handshakes_attempted == 2
    assert stats.handshakes_rejected == 1
    assert stats.connections_opened == 1
    assert stats.messages_received == 1
    assert stats.messages_sent == 2


# -- embedded server -------------------------------------------------------------------


@pytest.fixture
def embedded(tokens: TokenFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(fast_config(tokens)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_embedded_server_serves_a_test_running_on_another_loop(
    embedded: EmbeddedServer, alice: TestUser
) -> None:
    server_threads = [t for t in threading.enumerate() if t.name == "ws-reference-server"]
    assert server_threads and threading.current_thread() not in server_threads
    assert embedded.running and str(embedded) == embedded.url
    assert embedded.url == f"ws://127.0.0.1:{embedded.port}/"
    async with open_client(embedded.url, alice.token) as ws:
        await established(ws)
        embedded.set_faults(DUPLICATE_EVENT)  # from this thread, applied on the server loop
        raw = await collect_run_raw(ws, await start_run(ws))
    assert len(raw) == len(AGENT_TYPES) + 1
    assert embedded.faults == {DUPLICATE_EVENT}
    assert embedded.stats.connections_opened == 1


def test_embedded_server_outlives_successive_event_loops(
    embedded: EmbeddedServer, alice: TestUser
) -> None:
    async def one_run() -> list[dict[str, Any]]:
        async with open_client(embedded.url, alice.token) as ws:
            await established(ws)
            return await collect_run(ws, await start_run(ws))

    for _ in range(2):
        assert [f["type"] for f in asyncio.run(one_run())] == AGENT_TYPES


def test_embedded_server_lifecycle_is_bounded_and_idempotent(tokens: TokenFactory) -> None:
    server = EmbeddedServer(fast_config(tokens))
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
    server.set_faults(LEAK)  # before start: part of the starting config
    assert server.config.faults == {LEAK}
    server.stop()  # never started: nothing to do
    with server:
        assert server.running and server.faults == {LEAK}
        started = time.monotonic()
    assert time.monotonic() - started < 5.0 + 1.0
    assert not server.running
    server.stop()
    with pytest.raises(ValueError, match="unknown fault"):
        server.set_faults("bogus")


def test_embedded_server_reports_a_port_it_cannot_bind(tokens: TokenFactory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedServer(fast_config(tokens, port=port))
        with pytest.raises(WsResilienceError, match="failed to start"):
            server.start(timeout=RECV_S)
    assert not server.running


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"host": "0.0.0.0"}, "not loopback"),
        ({"host": "example.com"}, "not loopback"),
        ({"secret": None}, "needs a secret"),
        ({"faults": frozenset({"gremlins"})}, "unknown fault 'gremlins'"),
        ({"accepted_auth": ("carrier-pigeon",)}, "unknown auth method"),
        ({"accepted_auth": ()}, "at least one accepted_auth"),
        ({"thinking_steps": 0}, "thinking_steps"),
        ({"agent_delay_s": -1.0}, "agent_delay_s"),
        ({"join_delay_s": -0.1}, "join_delay_s must be >= 0"),
        ({"max_message_size": 0}, "max_message_size"),
        ({"port": 70000}, "port"),
        ({"ping_interval": 0.0}, "ping_interval"),
        ({"public_key": "not a key"}, "public_key"),
    ],
)
def test_server_config_rejects_bad_values_in_one_line(
    tokens: TokenFactory, changes: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValueError) as info:
        ServerConfig(**{"secret": tokens.secret, **changes})
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_server_config_accepts_loopback_hosts(tokens: TokenFactory, host: str) -> None:
    assert ServerConfig(host=host, secret=tokens.secret).host == host


def test_server_config_repr_hides_keys(tokens: TokenFactory, rsa_keys: RsaKeyPair) -> None:
    config = ServerConfig(secret=tokens.secret, public_key=rsa_keys.public_pem)
    text = repr(config)
    assert tokens.secret is not None and tokens.secret not in text
    assert "BEGIN PUBLIC KEY" not in text and "redacted" in text


@pytest.mark.asyncio
async def test_a_closed_connection_leaves_no_trace_in_fan_out(
    server: ReferenceServer, alice: TestUser
) -> None:
    async with open_client(server.url, alice.token) as gone:
        await established(gone)
    async with open_client(server.url, alice.token) as ws:
        await established(ws)
        frames = await collect_run(ws, await start_run(ws))
    assert [f["type"] for f in frames] == AGENT_TYPES
    with pytest.raises(ConnectionClosed):
        await gone.send("after close")


def test_token_lookup_follows_the_method_order_and_ignores_other_methods() -> None:
    from websockets.datastructures import Headers

    from pytest_ws_resilience.testing.token_check import extract_token

    headers = Headers(
        [
            ("Sec-WebSocket-Protocol", "jwt-auth, jwt.from-subprotocol"),
            ("Authorization", "Bearer from-header"),
            ("Cookie", "theme=dark; access_token=from-cookie"),
        ]
    )
    path = "/?token=from-query"
    every = ("subprotocol", "query", "header", "cookie")
    found = extract_token(path, headers, methods=every)
    assert found is not None and (found.method, found.token) == ("subprotocol", "from-subprotocol")
    found = extract_token(path, headers, methods=("cookie", "header"))
    assert found is not None and (found.method, found.token) == ("cookie", "from-cookie")
    assert extract_token("/", Headers(), methods=every) is None
    assert "from-header" not in repr(extract_token(path, headers, methods=("header",)))
