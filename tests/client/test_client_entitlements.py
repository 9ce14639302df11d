"""A client's entitlement timeline (`client/entitlements.py`): grants, revokes, grace,
sources, and `WsClient.entitle` / ``revoke`` / ``entitlements``; pure, no socket."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.client import entitlements as module
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.entitlements import (
    EXPLICIT,
    PATH,
    RECEIVED,
    SENT,
    EntitlementTimeline,
    scope_value,
)


def test_a_grant_takes_effect_at_once_and_nothing_is_entitled_before() -> None:
    timeline = EntitlementTimeline()
    timeline.grant("room", "a", at=10.0)
    assert not timeline.entitled("room", "a", 9.999)
    assert timeline.entitled("room", "a", 10.0)
    assert not timeline.entitled("room", "b", 11.0)
    assert not timeline.entitled("game", "a", 11.0)


def test_a_received_revoke_is_immediate_even_with_a_grace() -> None:
    timeline = EntitlementTimeline()
    timeline.grant("room", "a", at=1.0, source=SENT)
    timeline.revoke("room", "a", at=2.0, source=RECEIVED)
    assert timeline.entitled("room", "a", 1.999, grace=0.25)
    assert not timeline.entitled("room", "a", 2.0, grace=0.25)


@pytest.mark.parametrize("source", [SENT, EXPLICIT])
def test_a_sent_or_explicit_revoke_waits_for_the_readers_grace(source: str) -> None:
    timeline = EntitlementTimeline()
    timeline.grant("room", "a", at=1.0)
    timeline.revoke("room", "a", at=2.0, source=source)
    assert timeline.entitled("room", "a", 2.2, grace=0.25)
    assert not timeline.entitled("room", "a", 2.25, grace=0.25)
    assert not timeline.entitled("room", "a", 2.0, grace=0.0)


def test_a_grant_during_a_pending_revoke_wins() -> None:
    timeline = EntitlementTimeline()
    timeline.grant("room", "a", at=1.0)
    timeline.revoke("room", "a", at=2.0, source=SENT)
    timeline.grant("room", "a", at=2.1, source=SENT)
    assert timeline.entitled("room", "a", 5.0, grace=0.25)


def test_a_back_dated_change_is_placed_in_time_order() -> None:
    timeline = EntitlementTimeline()
    timeline.revoke("room", "a", at=5.0, source=RECEIVED)
    timeline.grant("room", "a", at=1.0, source=PATH)  # learned late, true from 1.0
    assert timeline.entitled("room", "a", 3.0)
    assert not timeline.entitled("room", "a", 6.0)
    assert [c.at for c in timeline.changes] == [1.0, 5.0]


def test_held_lists_the_values_in_effect() -> None:
    timeline = EntitlementTimeline()
    timeline.grant("room", "b", at=1.0)
    timeline.grant("room", "a", at=1.0)
    timeline.grant("game", "g", at=1.0)
    timeline.revoke("room", "b", at=2.0, source=RECEIVED)
    assert timeline.held("room", 1.5) == ["a", "b"]
    assert timeline.held("room", 2.5) == ["a"]
    assert timeline.scopes() == ["game", "room"]


def test_ints_are_compared_as_their_digits_and_bools_are_refused() -> None:
    timeline = EntitlementTimeline()
    timeline.grant("room", 7, at=1.0)
    assert timeline.entitled("room", "7", 2.0)
    with pytest.raises(ValueError, match=r"^scope 'room' must be a str or an int, got True$"):
        timeline.grant("room", True, at=1.0)
    with pytest.raises(ValueError, match="must not be empty"):
        scope_value("", "room")
    with pytest.raises(ValueError, match=r"got 1\.5"):
        scope_value(1.5, "room")


def test_bad_names_and_sources_are_one_line_errors() -> None:
    timeline = EntitlementTimeline()
    with pytest.raises(ValueError, match="scope name must be a non-empty string"):
        timeline.grant("", "a", at=1.0)
    with pytest.raises(ValueError, match="source must be one of"):
        timeline.grant("room", "a", at=1.0, source="gossip")
    with pytest.raises(ValueError, match=r"entitle\(\) needs at least one scope=value"):
        timeline.apply(1.0, EXPLICIT, {}, grant=True)
    # A bad value among several writes none of them.
    with pytest.raises(ValueError):
        timeline.apply(1.0, EXPLICIT, {"room": "a", "game": None}, grant=True)
    assert len(timeline) == 0


def test_lines_show_connects_and_changes_from_the_first_connect() -> None:
    timeline = EntitlementTimeline()
    timeline.grant("room", "early", at=99.0)
    timeline.connected(100.0)
    timeline.grant("room", "a", at=100.5, source=SENT)
    timeline.grant("game", "g", at=100.6)
    timeline.connected(101.0)
    timeline.revoke("room", "a", at=102.0, source=RECEIVED)
    assert timeline.origin == 100.0
    assert timeline.lines("room", until=101.5) == [
        "-1.000s granted room 'early' (explicit)",
        "+0.000s connected (first)",
        "+0.500s granted room 'a' (sent frame)",
        "+1.000s connected (reconnect)",
    ]
    assert len(timeline.lines()) == 6


def test_a_client_that_joins_and_leaves_in_a_loop_keeps_a_bounded_timeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "_MAX_CHANGES", 10)
    timeline = EntitlementTimeline()
    timeline.grant("room", "kept", at=0.0)
    for step in range(1, 50):
        timeline.grant("room", "a", at=float(step), source=SENT)
        timeline.revoke("room", "a", at=step + 0.5, source=RECEIVED)
    assert len(timeline) <= 20 and timeline.folded > 0
    assert timeline.entitled("room", "kept", 100.0)
    assert timeline.entitled("room", "a", 49.2) and not timeline.entitled("room", "a", 49.6)
    assert timeline.lines()[0].endswith("earlier changes folded)")


def test_the_client_owns_its_timeline_and_writes_explicit_changes() -> None:
    client = WsClient("ws://127.0.0.1:9/")
    assert len(client.entitlements) == 0 and client.entitlements.origin is None
    client.entitle(room="a", game=3)
    client.revoke(room="a")
    changes = client.entitlements.changes
    assert [(c.action, c.scope, c.value, c.source) for c in changes] == [
        ("grant", "room", "a", EXPLICIT),
        ("grant", "game", "3", EXPLICIT),
        ("revoke", "room", "a", EXPLICIT),
    ]
    with pytest.raises(ValueError, match=r"revoke\(\) needs at least one scope=value"):
        client.revoke()
    with pytest.raises(ValueError, match="must be a str or an int"):
        client.entitle(room=["a"])
