"""Differential runs and races on purpose, as users use them (pytester runs against the
reference server's rooms and its room faults)."""

from __future__ import annotations

import re

import pytest

# The recv timeout bounds the wait of a racing action that never sees its own post.
CONFIG = """
[tool.ws_resilience]
recv_timeout = 2
close_timeout = 3
"""

ROOMS = """
import pytest

async def join_and_post(client, index):
    room = f"room-{index}"
    await client.send_json({"type": "join", "room": room})
    await client.expect(type="joined", room=room)
    await client.send_json({"type": "post", "room": room, "value": 7})
    await client.expect(type="room_event", room=room)
"""


def _suite(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyprojecttoml(CONFIG)
    pytester.makepyfile(ROOMS + body)


RELABEL = """
@pytest.mark.asyncio
@pytest.mark.parametrize("run", range({runs}))
async def test_rooms_are_isolated(ws_server, ws_isolation, run):
    with ws_server.faults({faults}):
        await ws_isolation.differential(join_and_post, users=5)
"""


def test_an_event_relabelled_with_the_receivers_room_is_crosstalk(ws_pytester):
    _suite(ws_pytester, RELABEL.format(runs=1, faults='"room_relabel"'))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "[crosstalk]" in out
    result.stdout.fnmatch_lines(["*solo -> concurrent*", '*+ {"room":"room-*"room_event"*'])
    # The detector alone sees nothing here: no string of another user is in the frames.
    assert "isolation violation" not in out.split("[crosstalk]")[0].lower()


def test_the_clean_rooms_pass_the_differential_20_runs_in_a_row(ws_pytester):
    _suite(ws_pytester, RELABEL.format(runs=20, faults=""))
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=20)


def test_the_clean_rooms_pass_under_xdist_too(ws_pytester):
    pytest.importorskip("xdist")  # the tox env without xdist skips it
    _suite(ws_pytester, RELABEL.format(runs=4, faults=""))
    ws_pytester.runpytest("-p", "ws_resilience", "-n", "2").assert_outcomes(passed=4)


def test_per_room_endpoints_and_an_expected_finding_read_from_the_result(ws_pytester):
    _suite(
        ws_pytester,
        """
async def post_in_my_room(client, index):
    await client.expect(type="joined")
    await client.send_json({"type": "post", "room": f"r{index}", "value": index})
    await client.expect(type="room_event", room=f"r{index}")

@pytest.mark.asyncio
async def test_relabel_through_room_paths(ws_server, ws_isolation):
    ws_isolation.expect_violations()
    with ws_server.faults("room_relabel"):
        result = await ws_isolation.differential(
            post_in_my_room, users=3, path="/rooms/{room}",
            path_params=lambda i: {"room": f"r{i}"},
        )
    assert not result.ok
    assert {v.kind for v in result.violations} == {"crosstalk"}
    assert ws_isolation.violation_count == len(result.violations)
    assert "differential" in ws_isolation.report()
""",
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


RACE = """
@pytest.mark.asyncio
@pytest.mark.parametrize("run", range({runs}))
async def test_joins_race(ws_server, ws_isolation, run):
    with ws_server.faults({faults}):
        await ws_isolation.race(join_and_post, users=20, rounds={rounds}{seed})
"""


def test_sequential_joins_do_not_show_the_join_race(ws_pytester):
    _suite(
        ws_pytester,
        """
@pytest.mark.asyncio
async def test_one_after_another(ws_server, ws_client_factory, ws_isolation):
    with ws_server.faults("join_race"):
        for index in range(10):
            await join_and_post(await ws_client_factory(), index)
""",
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_a_race_catches_the_join_race_and_its_seed_replays_it(ws_pytester):
    _suite(ws_pytester, RACE.format(runs=1, faults='"join_race"', rounds=50, seed=""))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    caught = re.search(r"race caught in round (\d+) of 50 \(seed (\d+)\)", out)
    assert caught, out
    seed = caught.group(2)
    assert f"replay with ws_isolation.race(..., seed={seed}, rounds=1)" in out
    result.stdout.fnmatch_lines(["*ws_isolation.race: 20 users x 50 round(s), seed *"])

    # The seed replays the clients' jitter, not the server's scheduling: a few rounds
    # from it, starting with the same round, catch it again on a loaded machine too.
    _suite(ws_pytester, RACE.format(runs=1, faults='"join_race"', rounds=10, seed=f", seed={seed}"))
    replay = ws_pytester.runpytest("-p", "ws_resilience", "-s")
    replay.assert_outcomes(failed=1)
    replay.stdout.fnmatch_lines(
        [f"*ws_isolation.race: 20 users x 10 round(s), seed {seed},*", "*race caught in round *"]
    )


def test_the_clean_server_passes_the_race_20_runs_in_a_row(ws_pytester):
    _suite(ws_pytester, RACE.format(runs=20, faults="", rounds=2, seed=""))
    result = ws_pytester.runpytest("-p", "ws_resilience", "-s")
    result.assert_outcomes(passed=20)
    assert (
        len(re.findall(r"race clean: 2 round\(s\) of 20 users, base seed \d+", result.stdout.str()))
        == 20
    )


def test_the_clean_race_passes_under_xdist(ws_pytester):
    pytest.importorskip("xdist")  # the tox env without xdist skips it
    _suite(ws_pytester, RACE.format(runs=4, faults="", rounds=2, seed=""))
    ws_pytester.runpytest("-p", "ws_resilience", "-n", "2").assert_outcomes(passed=4)


def test_many_releases_handshakes_together_with_a_printed_seed(ws_pytester):
    _suite(
        ws_pytester,
        """
@pytest.mark.asyncio
async def test_many(ws_client_factory):
    clients = await ws_client_factory.many(
        12, jitter=0.002, seed=5, path="/rooms/{room}", path_params=lambda i: {"room": f"r{i % 3}"}
    )
    assert len(clients) == 12 and all(c.connected for c in clients)
    assert ws_client_factory.last_seed == 5
    for client in clients:
        await client.expect(type="joined")
    print("made", len(clients))
""",
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ws_client_factory.many(12): jitter 2 ms, seed 5*"])


def test_storm_clients_are_watched_by_the_detector(ws_pytester):
    _suite(
        ws_pytester,
        """
@pytest.mark.asyncio
async def test_storm_sees_the_leak(ws_server, ws_storm, ws_client_factory, ws_isolation):
    ws_isolation.expect_violations()
    result = await ws_storm.connect(5, hold=True)
    sender = await ws_client_factory()
    with ws_server.faults("leak"):
        await sender.send_json({"type": "user_message", "text": "sender's private words"})
        await sender.expect(type="agent_completed")
        for client in result.clients:
            await client.expect(type="agent_completed")
    receivers = {v.receiver for v in ws_isolation.violations}
    assert receivers == {c.user.id for c in result.clients}
""",
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


SCOPED_RACE = """
async def join_shared_room_and_post(client, index):
    room = f"shared-{{index % 4}}"
    await client.send_json({{"type": "join", "room": room}})
    await client.expect(type="joined", room=room)
    await client.send_json({{"type": "post", "room": room, "value": index}})

@pytest.mark.asyncio
@pytest.mark.parametrize("run", range({runs}))
async def test_joins_race_scoped(ws_server, ws_isolation, run):
    ws_isolation.scope("room", join={{"type": "join"}}, leave={{"type": "left"}})
    with ws_server.faults({faults}):
        await ws_isolation.race(join_shared_room_and_post, users=20, rounds={rounds}{seed})
"""


def test_a_scope_rule_catches_the_join_race_in_a_race_and_the_seed_replays_it(ws_pytester):
    _suite(ws_pytester, SCOPED_RACE.format(runs=1, faults='"join_race"', rounds=50, seed=""))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    caught = re.search(r"race caught in round (\d+) of 50 \(seed (\d+)\)", out)
    assert caught, out
    assert "[scope]" in out  # the finding is the rule's, not a failed action
    seed = caught.group(2)
    replay = SCOPED_RACE.format(runs=1, faults='"join_race"', rounds=10, seed=f", seed={seed}")
    _suite(ws_pytester, replay)
    again = ws_pytester.runpytest("-p", "ws_resilience", "-s")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(
        [f"*ws_isolation.race: 20 users x 10 round(s), seed {seed},*", "*race caught in round *"]
    )


def test_the_scoped_race_passes_the_clean_server_20_runs_in_a_row(ws_pytester):
    _suite(ws_pytester, SCOPED_RACE.format(runs=20, faults="", rounds=2, seed=""))
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=20)


def test_the_scoped_race_passes_the_clean_server_under_xdist(ws_pytester):
    pytest.importorskip("xdist")  # the tox env without xdist skips it
    _suite(ws_pytester, SCOPED_RACE.format(runs=4, faults="", rounds=2, seed=""))
    ws_pytester.runpytest("-p", "ws_resilience", "-n", "2").assert_outcomes(passed=4)
