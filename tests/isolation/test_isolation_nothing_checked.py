"""The detector says when it has nothing to look for, and scans close reasons
(issue 17: no silent green). Pure logic, plus one real server closing with a reason."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.server import ServerConnection, serve

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.errors import WsConnectionClosedError
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.guard import IsolationGuard
from pytest_ws_resilience.isolation.nothing_checked import isolation_nothing_checked
from pytest_ws_resilience.isolation.options import read_isolation_options


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


def test_users_with_ids_and_emails_below_the_minimum_leave_nothing_to_look_for(tokens):
    detector = IsolationDetector()
    detector.add_user(tokens.user(id="u1", email="a@b.c"))
    detector.add_user(tokens.user(id="u2", email="d@e.f"))
    why = detector.nothing_to_look_for()
    assert why is not None
    assert "shorter than marker_min_length=6" in why and "id 'u1' of 'u1'" in why
    # Their tokens are markers, but not ones a leak would carry: they do not count.
    assert detector.marker_count >= 2


def test_a_long_id_canary_or_registered_marker_is_something_to_look_for(tokens):
    detector = IsolationDetector()
    detector.add_user(tokens.user())
    assert detector.nothing_to_look_for() is None
    short = IsolationDetector()
    short.add_user(tokens.user(id="u1", email="a@b.c"))
    short.register("u1", "room-of-u1")
    assert short.nothing_to_look_for() is None


def test_identity_and_taint_off_leave_nothing_to_look_for(tokens):
    detector = IsolationDetector()
    detector.configure(read_isolation_options({"identity": False, "taint": False}))
    detector.add_user(tokens.user())
    assert "identity off" in (detector.nothing_to_look_for() or "")
    assert "no user was watched" in (IsolationDetector().nothing_to_look_for() or "")


def test_the_vacuity_rule_and_its_one_exemption():
    assert (
        isolation_nothing_checked(checks=0, clients=2, connected=0, nothing_to_look_for=None)
        is None
    ), "every connection refused at the handshake: an auth test, exempt"
    blind = isolation_nothing_checked(checks=3, clients=2, connected=2, nothing_to_look_for="x")
    assert blind is not None and blind.area == "isolation" and not blind.required
    assert str(blind) == "the isolation detector: nothing was checked: 3 frame(s) scanned, but x"
    assert (
        isolation_nothing_checked(checks=3, clients=2, connected=2, nothing_to_look_for=None)
        is None
    )


def test_a_strict_guard_fails_its_verdict_once_when_nothing_was_checked(tokens):
    seen = (1, 1)
    guard = IsolationGuard(IsolationDetector(), strict=True, clients_seen=lambda: seen)
    verdict = guard.verdict()
    assert verdict is not None and verdict.startswith("websocket_security: the isolation")
    assert guard.failed_vacuous and not guard.failed
    assert guard.verdict() is None  # once
    lenient = IsolationGuard(IsolationDetector(), clients_seen=lambda: seen)
    assert lenient.verdict() is None and lenient.nothing_checked() is not None


def test_a_close_reason_carrying_another_users_id_is_a_violation(tokens):
    alice, bob = tokens.user(), tokens.user()
    detector = IsolationDetector()
    detector.add_user(alice)
    detector.add_user(bob)
    [violation] = detector.observe_close(bob.id, 4000, f"room of {alice.id} closed", "bob#1")
    assert violation.owner == alice.id and violation.receiver == bob.id
    assert violation.receiver_connection == "bob#1, close frame (code 4000)"
    assert detector.checks == 1
    assert detector.observe_close(bob.id, 1000, "") == [] and detector.checks == 1


@pytest.mark.asyncio
async def test_a_real_close_reason_is_scanned_by_the_attached_detector(tokens):
    alice, bob = tokens.user(), tokens.user()

    async def handler(conn: ServerConnection) -> None:
        await conn.send(json.dumps({"type": "connection_established"}))
        await conn.close(4000, f"room of {alice.id} closed")

    detector = IsolationDetector()
    detector.add_user(alice)
    async with serve(handler, "127.0.0.1", 0, close_timeout=0.5) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        client = WsClient(url, user=bob, auth="query")
        detector.attach(client)
        async with client:
            with pytest.raises(WsConnectionClosedError):
                await client.expect(type="never", timeout=5)
    [violation] = detector.violations
    assert violation.owner == alice.id
    assert "close frame (code 4000)" in violation.receiver_connection
