"""The isolation detector against protocol B, a server it has never seen: ids live in
``account``, events in ``event``, runs in ``job``. Nothing is configured for isolation:
identity, taint and canaries work from what users send and receive alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from protocol_b import ProtocolBServer

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.markers import CANARY, IDENTITY_KINDS, TAINT

# Not websocket_security: these tests drive their own detectors over raw WsClients,
# which the plugin's detector never sees (it would warn that it checked no frame).
pytestmark = pytest.mark.asyncio

WAIT_S = 5.0
# Protocol B takes its token as ?access=...: that is client configuration, not isolation.
SETTINGS = WsSettings(auth_query_param="access")


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def server(tokens: TokenFactory) -> AsyncIterator[ProtocolBServer]:
    assert tokens.secret is not None
    async with ProtocolBServer(tokens.secret) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="function")
async def pair(
    server: ProtocolBServer, tokens: TokenFactory
) -> AsyncIterator[tuple[WsClient, WsClient]]:
    alice = WsClient(server.url, user=tokens.user(), auth="query", settings=SETTINGS)
    bob = WsClient(server.url, user=tokens.user(), auth="query", settings=SETTINGS)
    async with alice, bob:
        yield alice, bob


async def alice_asks_then_bob_pings(alice: WsClient, bob: WsClient, prompt: str) -> None:
    """Alice runs a job; once Bob's own pong is back, any leaked frame has reached him."""
    await alice.send_json({"op": "ask", "prompt": prompt})
    await alice.expect(event="job.result", timeout=WAIT_S)
    await bob.send_json({"op": "ping"})
    await bob.expect(kind="pong", timeout=WAIT_S)


@pytest.mark.parametrize(
    ("switches", "kinds"),
    [
        ({"taint": False}, IDENTITY_KINDS),
        ({"identity": False}, {TAINT}),
        ({"identity": False, "taint": False}, {CANARY}),
    ],
    ids=["identity", "taint", "canary"],
)
async def test_a_leak_is_caught_by_each_kind_of_marker_alone(
    server: ProtocolBServer,
    pair: tuple[WsClient, WsClient],
    switches: dict[str, bool],
    kinds: set[str],
) -> None:
    alice, bob = pair
    detector = IsolationDetector(**switches)
    for client in pair:
        detector.attach(client)
    server.set_faults("leak")

    # Only the canary test embeds a canary (canaries are always on): each kind alone.
    marker = alice.canary() if kinds == {CANARY} else "for my eyes only"
    await alice_asks_then_bob_pings(alice, bob, f"quarterly numbers {marker}")

    assert detector.violations, detector.report()
    assert {(v.receiver, v.owner) for v in detector.violations} == {(bob.user.id, alice.user.id)}
    seen = {v.marker_kind for v in detector.violations}
    assert seen and seen <= set(kinds), seen


async def test_the_clean_server_raises_nothing(pair: tuple[WsClient, WsClient]) -> None:
    detector = IsolationDetector()
    for client in pair:
        detector.attach(client)

    for client in pair:
        await client.send_json({"op": "ask", "prompt": f"my own question {client.canary()}"})
    for client in pair:
        await client.expect(event="job.result", timeout=WAIT_S)

    assert detector.violations == []
    assert detector.checks >= 6  # greeting + 3 job events per user: the check was live
