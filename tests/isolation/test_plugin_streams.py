"""Stream rules and the resume helper as users use them (pytester runs): each bug class
is caught by a short test that declares a rule and resumes, with no assertion on
fields or sequences; each clean variant passes 20 runs in a row, under xdist too."""

import pytest

ROOM_TEST = """
import pytest

RUNS = {runs}

@pytest.mark.asyncio
@pytest.mark.parametrize("run", range(RUNS))
async def test_resume_after_away(ws_server, ws_client_factory, ws_isolation, run):
    ws_isolation.stream("room_seq", per="room")
    alice, bob = await ws_client_factory(), await ws_client_factory()
    room = f"r{{run}}"
    for client in (alice, bob):
        await client.send_json({{"type": "join", "room": room}})
        await client.expect("joined", room=room)
    with ws_server.faults({faults}):
        await bob.send_json({{"type": "post", "room": room, "value": 1}})
        await alice.expect("room_event", room=room)
        await alice.close()
        for value in (2, 3, 4):
            await bob.send_json({{"type": "post", "room": room, "value": value}})
            await bob.expect("room_event", room=room, value=value)
        await ws_isolation.resume(alice, {{"type": "resume", "room": room}}, sequence="room_seq")
        await bob.send_json({{"type": "post", "room": room, "value": 5}})
        await alice.expect("room_event", room=room, value=5)
"""


def write_rooms(pytester: pytest.Pytester, *, faults: str = "", runs: int = 1) -> None:
    pytester.makepyfile(ROOM_TEST.format(faults=faults, runs=runs))


def test_a_duplicated_replay_is_caught(ws_pytester: pytest.Pytester) -> None:
    write_rooms(ws_pytester, faults='"duplicate_replay"')
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "[duplicate] room='r0': room_seq 2 received again" in out
    # The resume does not repeat the live rule's finding (counted in the failure's
    # report: under CI pytest also prints it whole in the short summary).
    report = out.split("short test summary info")[0]
    assert report.count("room_seq 2 received again") == 1
    assert "Traceback" not in out


def test_events_lost_while_disconnected_are_caught(ws_pytester: pytest.Pytester) -> None:
    write_rooms(ws_pytester, faults='"lose_missed_events"')
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "[lost] room_seq of 'r0': after 1 the replay up to head 4 lacks 2, 3, 4" in out
    assert "[gap]" not in out  # one finding for one loss


def test_the_clean_server_passes_20_runs_in_a_row(ws_pytester: pytest.Pytester) -> None:
    write_rooms(ws_pytester, runs=20)
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=20)


def test_the_clean_server_passes_20_runs_under_xdist(ws_pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")  # the tox env without xdist skips it
    write_rooms(ws_pytester, runs=20)
    result = ws_pytester.runpytest("-p", "ws_resilience", "-n", "2")
    result.assert_outcomes(passed=20)


SEQ_TEST = """
import pytest

@pytest.mark.asyncio
@pytest.mark.parametrize("run", range({runs}))
async def test_agent_run(ws_server, ws_client, ws_isolation, run):
    ws_isolation.stream("seq", reset_on_reconnect=True)
    with ws_server.faults({faults}):
        await ws_client.send_json({{"type": "user_message", "text": "numbered"}})
        await ws_client.expect("agent_completed")
        await ws_client.reconnect()
        await ws_client.send_json({{"type": "ping"}})
        await ws_client.expect("pong")
"""


@pytest.mark.parametrize(
    ("fault", "finding"),
    [("drop_event", "[gap] seq 5 then 7: missing 6"), ("duplicate_event", "[duplicate] seq 5")],
)
def test_per_connection_seq_faults_are_caught(
    ws_pytester: pytest.Pytester, fault: str, finding: str
) -> None:
    ws_pytester.makepyfile(SEQ_TEST.format(faults=f'"{fault}"', runs=1))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    assert finding in result.stdout.str()


def test_reordered_events_keep_their_seq_order_so_the_contract_catches_them(
    ws_pytester: pytest.Pytester,
) -> None:
    # The reference server numbers frames as it sends them: a reordered run still
    # carries seq 1, 2, 3... in order. The stream rule is clean there (it judges
    # numbers, not event kinds); the event contract sees the swap.
    ws_pytester.makepyfile(
        """
        import pytest
        from pytest_ws_resilience import AGENT_EVENTS

        @pytest.mark.asyncio
        async def test_reordered(ws_server, ws_client, ws_isolation):
            ws_isolation.stream("seq", reset_on_reconnect=True)
            with ws_server.faults("reorder_events"):
                await ws_client.send_json({"type": "user_message", "text": "swap"})
                await ws_client.expect_contract(AGENT_EVENTS)
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "out of order" in out and "stream 'seq' per connection: clean" not in out


def test_the_clean_agent_stream_passes_20_runs(ws_pytester: pytest.Pytester) -> None:
    ws_pytester.makepyfile(SEQ_TEST.format(faults="", runs=20))
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=20)


def test_a_stream_rule_that_checked_nothing_says_so(ws_pytester: pytest.Pytester) -> None:
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_nothing(ws_client, ws_isolation):
            ws_isolation.stream("room_seq", per="room")
            await ws_client.send_json({"type": "ping"})
            await ws_client.expect("pong")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "-W", "always")
    out = result.stdout.str()
    assert "no frame carried the sequence field 'room_seq'" in out
