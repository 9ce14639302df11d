"""The isolation detector on real loopback sockets against the reference server.

Each leak scenario is run twice: with the server's ``leak`` fault (every agent event of
a user also goes to every other user), where the detector must name receiver,
connection, owner and marker; and against the clean server, where it must stay silent
while having checked frames (so silence is not vacuous).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.markers import CANARY, TAINT, USER_ID
from pytest_ws_resilience.testing import LEAK, ReferenceServer, ServerConfig

FAST_BACKOFF = Backoff(base=0.02, cap=0.08)
#: Bound of every wait here: far above what a loopback run takes.
WAIT_S = 10.0
SECRET_TEXT = "alice's secret plan for the launch"


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    config = ServerConfig(secret=tokens.secret, agent_delay_s=0.001, ping_interval=None)
    async with ReferenceServer(config) as running:
        yield running


@contextlib.asynccontextmanager
async def watched(
    url: str, detector: IsolationDetector, users: list[TestUser]
) -> AsyncIterator[list[WsClient]]:
    """Clients of ``users``, attached to ``detector`` before they connect, closed after."""
    clients = [
        WsClient(url, user=user, settings=WsSettings(), backoff=FAST_BACKOFF) for user in users
    ]
    for client in clients:
        detector.attach(client)
    try:
        await asyncio.gather(*(client.connect() for client in clients))
        await asyncio.gather(
            *(client.expect("connection_established", timeout=WAIT_S) for client in clients)
        )
        yield clients
    finally:
        await asyncio.gather(*(client.close() for client in clients))


async def assert_nothing_pending(client: WsClient) -> None:
    """The server writes in order: a fresh pong proves no (leaked) frame is on its way."""
    nonce = f"nonce-{uuid.uuid4().hex}"
    await client.send_json({"type": "ping", "nonce": nonce})
    await client.expect("pong", nonce=nonce, timeout=WAIT_S)


async def alice_runs_bob_watches(
    server: ReferenceServer,
    detector: IsolationDetector,
    alice: TestUser,
    bob: TestUser,
    *,
    leak: bool,
    canary: bool = False,
) -> tuple[WsClient, WsClient, str]:
    """Alice runs the agent once; Bob receives her events only when the server leaks.

    Returns Alice's and Bob's clients and the text Alice sent.
    """
    server.set_faults(LEAK) if leak else server.set_faults()
    async with watched(server.url, detector, [alice, bob]) as (alice_client, bob_client):
        text = SECRET_TEXT
        if canary:
            text = f"please remember {alice_client.canary()}"
        # No run_id or thread_id: the server assigns them, so only the text is Alice's.
        await alice_client.send_json({"type": "user_message", "text": text})
        await alice_client.expect("agent_completed", timeout=WAIT_S)
        if leak:
            await bob_client.expect("agent_completed", user_id=alice.id, timeout=WAIT_S)
        else:
            await assert_nothing_pending(bob_client)
        await assert_nothing_pending(alice_client)
    return alice_client, bob_client, text


def assert_names_bob_alice(
    detector: IsolationDetector, bob_client: WsClient, alice: TestUser, bob: TestUser
) -> None:
    assert detector.violations, detector.report()
    expected_connection = f"{bob_client.name} / {bob_client.connection_id}"
    assert bob_client.connection_id is not None
    for violation in detector.violations:
        assert violation.receiver == bob.id
        assert violation.receiver_connection == expected_connection
        assert violation.owner == alice.id
        assert violation.frame_index >= 1  # frame 0 is Bob's own connection_established
        assert f"{bob.id} (connection {expected_connection}) received a frame holding " in str(
            violation
        )


# -- the leak, caught by each kind of marker alone ---------------------------------------


@pytest.mark.asyncio
async def test_identity_markers_alone_catch_a_leak(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    detector = IsolationDetector(taint=False)
    alice, bob = tokens.user(), tokens.user()
    _, bob_client, _ = await alice_runs_bob_watches(server, detector, alice, bob, leak=True)
    assert_names_bob_alice(detector, bob_client, alice, bob)
    assert {(v.marker_kind, v.marker) for v in detector.violations} == {(USER_ID, repr(alice.id))}
    # One per leaked agent event: started, thinking..., tool x2, completed.
    assert len(detector.violations) >= 5


@pytest.mark.asyncio
async def test_taint_alone_catches_a_leak(server: ReferenceServer, tokens: TokenFactory) -> None:
    detector = IsolationDetector(identity=False)
    alice, bob = tokens.user(), tokens.user()
    _, bob_client, text = await alice_runs_bob_watches(server, detector, alice, bob, leak=True)
    assert_names_bob_alice(detector, bob_client, alice, bob)
    assert {(v.marker_kind, v.marker) for v in detector.violations} == {(TAINT, repr(text))}
    # agent_started's input and agent_completed's result both carry the text.
    assert len(detector.violations) >= 2


@pytest.mark.asyncio
async def test_a_canary_alone_catches_a_leak(server: ReferenceServer, tokens: TokenFactory) -> None:
    detector = IsolationDetector(identity=False, taint=False)
    alice, bob = tokens.user(), tokens.user()
    alice_client, bob_client, text = await alice_runs_bob_watches(
        server, detector, alice, bob, leak=True, canary=True
    )
    (canary,) = alice_client.canaries
    assert canary in text
    assert_names_bob_alice(detector, bob_client, alice, bob)
    assert {(v.marker_kind, v.marker) for v in detector.violations} == {(CANARY, repr(canary))}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("identity", "taint"),
    [(True, False), (False, True), (False, False), (True, True)],
    ids=["identity", "taint", "canary", "all"],
)
async def test_the_clean_server_raises_no_violation(
    server: ReferenceServer, tokens: TokenFactory, identity: bool, taint: bool
) -> None:
    detector = IsolationDetector(identity=identity, taint=taint)
    alice, bob = tokens.user(), tokens.user()
    await alice_runs_bob_watches(server, detector, alice, bob, leak=False, canary=True)
    assert detector.violations == [], detector.report()
    detector.assert_clean()
    # Alice: established + her run + pong; Bob: established + pong.
    assert detector.checks >= 9


@pytest.mark.asyncio
async def test_a_canary_made_before_attaching_is_still_watched(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    detector = IsolationDetector(identity=False, taint=False)
    alice, bob = tokens.user(), tokens.user()
    server.set_faults(LEAK)
    early = WsClient(server.url, user=alice, backoff=FAST_BACKOFF)
    canary = early.canary("early")
    async with watched(server.url, detector, [bob]) as (bob_client,):
        detector.attach(early)
        async with early:
            await early.send_json({"type": "user_message", "text": f"note {canary}"})
            await bob_client.expect("agent_completed", user_id=alice.id, timeout=WAIT_S)
    assert {(v.owner, v.marker_kind) for v in detector.violations} == {(alice.id, CANARY)}


# -- several connections, detach ---------------------------------------------------------


@pytest.mark.asyncio
async def test_a_users_frames_on_its_other_connections_are_not_violations(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    detector = IsolationDetector()
    alice = tokens.user()
    async with watched(server.url, detector, [alice, alice]) as (first, second):
        await first.send_json({"type": "user_message", "text": SECRET_TEXT})
        # The server sends a user's events to every connection of that user.
        await first.expect("agent_completed", timeout=WAIT_S)
        await second.expect("agent_completed", timeout=WAIT_S)
    assert detector.users == (alice.id,)
    assert detector.violations == [], detector.report()
    assert detector.checks >= 2 * 6


@pytest.mark.asyncio
async def test_a_detached_client_is_no_longer_checked(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    detector = IsolationDetector()
    async with watched(server.url, detector, [tokens.user()]) as (client,):
        detector.detach(client)
        detector.detach(client)  # idempotent
        before = detector.checks
        await assert_nothing_pending(client)
        assert detector.checks == before
        assert client.observers == ()


# -- many users, common words: quiet when clean, live when leaking ------------------------

COMMON = ["hello", "ok", "thanks", "42", "2024", "hello there", "ok thanks", "thanks a lot",
          "see you in 2024", "42 is the answer", "hello 42", "good morning"]  # fmt: skip
ROOM = "room-general-2024"


async def chat(
    client: WsClient, rng: random.Random, messages: int, sent: list[tuple[str, str]]
) -> None:
    """Send ``messages`` user messages in the shared room, each awaited to completion."""
    assert client.user is not None
    for _ in range(messages):
        text = " ".join(rng.sample(COMMON, rng.randrange(1, 4)))
        sent.append((client.user.id, text))
        await client.send_json({"type": "user_message", "text": text, "thread_id": ROOM})
        await client.expect("agent_completed", user_id=client.user.id, timeout=WAIT_S)


async def twenty_users_chat(
    server: ReferenceServer, tokens: TokenFactory, *, leak: bool
) -> tuple[IsolationDetector, list[tuple[str, str]]]:
    """20 users, 4 messages each, concurrently; returns the detector and who sent what."""
    server.set_faults(LEAK) if leak else server.set_faults()
    detector = IsolationDetector(allow=[ROOM])
    users = [tokens.user() for _ in range(20)]
    rng = random.Random(2024)
    seeds = [rng.randrange(1 << 30) for _ in users]
    sent: list[tuple[str, str]] = []
    async with watched(server.url, detector, users) as clients:
        async with asyncio.timeout(4 * WAIT_S):
            await asyncio.gather(
                *(
                    chat(client, random.Random(seed), 4, sent)
                    for client, seed in zip(clients, seeds, strict=True)
                )
            )
            await asyncio.gather(*(assert_nothing_pending(client) for client in clients))
    return detector, sent


@pytest.mark.asyncio
async def test_twenty_users_chatting_with_common_words_raise_no_false_alarm(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    detector, sent = await twenty_users_chat(server, tokens, leak=False)
    assert detector.violations == [], detector.report()
    # 20 x (established + 4 runs of 6 events + pong), all checked.
    assert detector.checks >= 20 * (1 + 4 * 6 + 1)
    assert detector.owner_of(ROOM) is None
    senders: dict[str, set[str]] = {}
    for user_id, text in sent:
        senders.setdefault(text, set()).add(user_id)
    shared = [text for text, who in senders.items() if len(who) > 1 and len(text) >= 8]
    assert shared  # the scenario does exercise shared values...
    assert all(detector.owner_of(text) is None for text in shared)  # ...owned by nobody


@pytest.mark.asyncio
async def test_twenty_users_chatting_on_a_leaking_server_raise_violations(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    detector, _ = await twenty_users_chat(server, tokens, leak=True)
    assert detector.violation_count > 0
    assert all(v.receiver != v.owner for v in detector.violations)
    assert USER_ID in {v.marker_kind for v in detector.violations}
    assert repr(ROOM) not in {v.marker for v in detector.violations}
