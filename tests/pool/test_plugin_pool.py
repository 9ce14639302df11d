"""ws_pool as users use it: reuse across tests in the session loop, per-test leases."""

import json

import pytest

pytestmark = pytest.mark.websocket_integration

SESSION_LOOP_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = session
ws_loop_scope = session
"""


def test_pooled_connection_is_reused_across_tests(pytester, tmp_path):
    record = tmp_path / "record.jsonl"
    pytester.makeini(SESSION_LOOP_INI)
    pytester.makepyfile(
        f"""
        import json
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(10))
        async def test_uses_the_pool(ws_pool, n):
            client = await ws_pool.acquire()
            # Nothing from the previous lease is visible: only this test's traffic.
            assert not [e for e in client.events if e.get("type") == "pong"]
            await client.send_json({{"type": "ping", "n": n}})
            await client.expect(type="pong", n=n)
            with open({str(record)!r}, "a") as fh:
                fh.write(json.dumps({{"connection": client.connection_id,
                                      "stats": ws_pool.stats.as_dict()}}) + "\\n")
        """
    )
    result = pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=10)
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert len({row["connection"] for row in rows}) == 1
    last = rows[-1]["stats"]
    assert (last["hits"], last["misses"]) == (9, 1)


def test_function_loops_empty_the_pool_after_each_test(ws_pytester, tmp_path):
    record = tmp_path / "record.jsonl"
    ws_pytester.makepyfile(
        f"""
        import json
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_uses_the_pool(ws_pool, n):
            client = await ws_pool.acquire()
            again = await ws_pool.acquire()
            assert again is not client  # each lease is exclusive
            await ws_pool.release(again)
            reused = await ws_pool.acquire()
            assert reused is again       # reuse within the test
            with open({str(record)!r}, "a") as fh:
                fh.write(json.dumps(ws_pool.stats.as_dict()) + "\\n")
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=3)
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [row["size"] for row in rows] == [2, 2, 2]
    assert rows[-1]["hits"] == 3


def test_pool_in_the_wrong_loop_says_how_to_fix_it(pytester):
    pytester.makeini(SESSION_LOOP_INI.replace("asyncio_default_test_loop_scope = session", ""))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio(loop_scope="function")
        async def test_wrong_loop(ws_pool):
            await ws_pool.acquire()
        """
    )
    result = pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ws_pool lives in the session-scoped event loop*"])


def test_isolation_sees_pooled_clients(pytester):
    pytester.makeini(SESSION_LOOP_INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_leak_between_pooled_users(ws_pool, ws_user_factory, ws_server, ws_isolation):
            ws_isolation.expect_violations()
            alice = await ws_pool.acquire(ws_user_factory())
            bob = await ws_pool.acquire(ws_user_factory())
            with ws_server.faults("leak"):
                await alice.send_json({"type": "user_message", "text": "alice pooled secret"})
                await alice.expect(type="agent_completed")
                await bob.send_json({"type": "ping"})
                await bob.expect(type="pong")
            assert {(v.receiver, v.owner) for v in ws_isolation.violations} == {
                (bob.user.id, alice.user.id)
            }

        @pytest.mark.asyncio
        async def test_next_test_is_clean(ws_pool, ws_isolation):
            client = await ws_pool.acquire()
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")
            assert ws_isolation.violations == []
        """
    )
    pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=2)


def test_invalid_loop_scope_is_a_usage_error(pytester):
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nws_loop_scope = module\n"
    )
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "ws_resilience")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: ini ws_loop_scope = 'module' is invalid*"])
