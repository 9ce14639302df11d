"""The resume helper: the pure judgement of a replay, and resumes against the reference
server's rooms over real sockets (clean, a duplicated replay, events lost while away),
with and without a live stream rule."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.guard import IsolationGuard
from pytest_ws_resilience.isolation.resume import ReplayChecks, judge_replay, last_in_log
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

# -- the pure judgement ---------------------------------------------------------------


def test_an_exact_replay_is_ok() -> None:
    result = judge_replay(2, [3, 4, 5], 5)
    assert result.ok and bool(result)
    assert (result.missing, result.duplicated, result.head) == ((), (), 5)


def test_a_number_replayed_twice_or_already_had_is_duplicated() -> None:
    assert judge_replay(2, [3, 3, 4], 4).duplicated == (3,)
    assert judge_replay(2, [2, 3], 3).duplicated == (2,)
    assert not judge_replay(2, [3, 3, 3], 3).ok


def test_numbers_up_to_the_head_not_replayed_are_missing() -> None:
    assert judge_replay(2, [], 5).missing == (3, 4, 5)
    assert judge_replay(2, [3, 5], 5).missing == (4,)


def test_without_a_head_the_highest_replayed_is_the_head() -> None:
    assert judge_replay(2, [3, 5], None).head == 5
    assert judge_replay(2, [], None).head == 2 and judge_replay(2, [], None).ok


def test_the_last_number_is_read_from_the_log_within_the_scope() -> None:
    client = WsClient("ws://127.0.0.1:9/ws", name="alice")
    for frame in ({"room": "a", "n": 4}, {"room": "b", "n": 9}, {"room": "a", "n": 5}, {"x": 1}):
        client.log.append(json.dumps(frame))
    assert last_in_log(client.log, ("n",), lambda d: d.get("room") == "a") == 5
    assert last_in_log(client.log, ("n",), lambda d: True) == 9
    assert last_in_log(client.log, ("m",), lambda d: True) is None


def test_replay_checks_say_when_no_resume_was_judged() -> None:
    checks = ReplayChecks()
    assert checks.nothing_checked() == "no resume was judged"


# -- against the reference server's rooms ---------------------------------------------


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest_asyncio.fixture(loop_scope="function")
async def rooms(tokens: TokenFactory) -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(ServerConfig(secret=tokens.secret)) as running:
        yield running


async def away_while_posted(
    server: ReferenceServer, tokens: TokenFactory, guard: IsolationGuard, **resume: Any
) -> tuple[Any, WsClient, str | None]:
    """Alice and Bob in room r; 2 events; Alice away while Bob posts 3 more; Alice
    resumes. Both clients are watched by the guard's rules."""
    alice = WsClient(server.url, user=tokens.user(), name="alice")
    bob = WsClient(server.url, user=tokens.user(), name="bob")
    for client in (alice, bob):
        for rule in guard.rules:
            client.add_observer(rule)
        await client.connect()
        await client.send_json({"type": "join", "room": "r"})
        await client.expect("joined", room="r")
    for value in (1, 2):
        await bob.send_json({"type": "post", "room": "r", "value": value})
        await alice.expect("room_event", room_seq=value)
    await alice.close()
    for value in (3, 4, 5):
        await bob.send_json({"type": "post", "room": "r", "value": value})
        await bob.expect("room_event", room_seq=value)
    result = await guard.resume(
        alice, {"type": "resume", "room": "r"}, sequence="room_seq", **resume
    )
    await bob.send_json({"type": "post", "room": "r", "value": 6})
    await alice.expect("room_event", room_seq=6)
    failure, _ = guard.teardown_verdict()  # finish() every rule, then the verdict
    await alice.close()
    await bob.close()
    return result, alice, failure


@pytest.mark.asyncio
async def test_a_clean_resume_replays_exactly_what_was_missed(
    rooms: ReferenceServer, tokens: TokenFactory
) -> None:
    guard = IsolationGuard(IsolationDetector())
    stream = guard.stream("room_seq", per="room")
    result, alice, failure = await away_while_posted(rooms, tokens, guard)
    assert (result.after, result.replayed, result.head) == (2, (3, 4, 5), 5)
    assert result.ok and guard.rule_violations == [] and failure is None
    assert stream.last_seen(alice, "r") == 6 and stream.checks > 6


@pytest.mark.asyncio
async def test_a_duplicated_replay_is_reported_once(
    rooms: ReferenceServer, tokens: TokenFactory
) -> None:
    guard = IsolationGuard(IsolationDetector())
    guard.stream("room_seq", per="room")
    rooms.set_faults("duplicate_replay")
    result, _, failure = await away_while_posted(rooms, tokens, guard)
    assert result.duplicated == (3,) and failure is not None
    found = [(v.kind, v.rule) for v in guard.rule_violations]
    assert found == [("duplicate", "stream 'room_seq' per 'room'")]  # not twice
    report = guard.report()
    assert "room='r': room_seq 3 received again" in report


@pytest.mark.asyncio
async def test_without_a_stream_rule_the_resume_reports_the_duplicate(
    rooms: ReferenceServer, tokens: TokenFactory
) -> None:
    guard = IsolationGuard(IsolationDetector())
    rooms.set_faults("duplicate_replay")
    result, _, failure = await away_while_posted(rooms, tokens, guard, scope={"room": "r"})
    assert result.after == 2
    assert [v.kind for v in guard.rule_violations] == ["replayed_twice"]
    assert "room_seq of {'room': 'r'}: 3 replayed twice" in guard.report()
    assert failure is not None and "replayed_twice" in failure


@pytest.mark.asyncio
async def test_events_lost_while_away_are_reported_once(
    rooms: ReferenceServer, tokens: TokenFactory
) -> None:
    guard = IsolationGuard(IsolationDetector())
    guard.stream("room_seq", per="room")
    rooms.set_faults("lose_missed_events")
    result, _, failure = await away_while_posted(rooms, tokens, guard)
    assert (result.replayed, result.missing, result.head) == ((), (3, 4, 5), 5)
    assert failure is not None
    assert [v.kind for v in guard.rule_violations] == ["lost"]  # no gap at 6 as well
    assert "after 2 the replay up to head 5 lacks 3, 4, 5" in guard.report()


@pytest.mark.asyncio
async def test_bad_resume_arguments_are_one_line_errors(
    rooms: ReferenceServer, tokens: TokenFactory
) -> None:
    guard = IsolationGuard(IsolationDetector())
    client = WsClient(rooms.url, user=tokens.user())
    for kwargs, named in (
        ({"sequence": ""}, "sequence="),
        ({"sequence": "n", "after_field": ""}, "after_field="),
        ({"sequence": "n", "done": {}}, "done="),
        ({"sequence": "n", "scope": "r"}, "scope="),
        ({"sequence": "n", "reconnect": "yes"}, "reconnect="),
    ):
        with pytest.raises(ValueError, match=named) as raised:
            await guard.resume(client, {"type": "resume"}, **kwargs)
        assert "\n" not in str(raised.value)
        assert str(raised.value).startswith("ws_isolation.resume(): ")
    assert not client.connected  # nothing was tried
