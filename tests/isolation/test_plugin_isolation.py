"""ws_isolation and the websocket_security marker, as users use them (pytester runs)."""

LEAKY_TEST = """
import pytest

@pytest.mark.asyncio
{marker}
async def test_alice_and_bob(ws_server, ws_client_factory{fixture}):
    alice, bob = await ws_client_factory(), await ws_client_factory()
    with ws_server.faults({faults}):
        await alice.send_json({{"type": "user_message", "text": "alice private note"}})
        await alice.expect(type="agent_completed")
        await bob.send_json({{"type": "ping"}})
        await bob.expect(type="pong")
"""


def write_leaky(pytester, *, marker="", fixture=", ws_isolation", faults='"leak"'):
    pytester.makepyfile(LEAKY_TEST.format(marker=marker, fixture=fixture, faults=faults))


def test_a_leak_fails_the_test_with_a_report_naming_both_users(ws_pytester):
    write_leaky(ws_pytester)
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "alice private note" in out or "user-" in out
    result.stdout.fnmatch_lines(["*received*"])
    assert "Traceback" not in out


def test_the_clean_server_passes_with_checks_done(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_clean(ws_client, ws_client_factory, ws_isolation):
            bob = await ws_client_factory()
            for client in (ws_client, bob):
                await client.send_json({"type": "user_message", "text": "hello there, my friend"})
            for client in (ws_client, bob):
                await client.expect(type="agent_completed")
            assert ws_isolation.violations == []
            assert ws_isolation.checks > 0
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_clients_made_before_the_detector_are_watched_too(ws_pytester):
    # ws_client is set up before ws_isolation here (argument order), yet is watched.
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_order(ws_client, ws_client_factory, ws_server, request):
            guard = request.getfixturevalue("ws_isolation")
            guard.expect_violations()
            other = await ws_client_factory()
            with ws_server.faults("leak"):
                await other.send_json({"type": "user_message", "text": "other user's words"})
                await other.expect(type="agent_completed")
                await ws_client.send_json({"type": "ping"})
                await ws_client.expect(type="pong")
            assert {v.receiver for v in guard.violations} == {ws_client.user.id}
            assert {v.owner for v in guard.violations} == {other.user.id}
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_expected_violations_let_a_test_assert_on_them(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_prove_the_leak_is_seen(ws_server, ws_client_factory, ws_isolation):
            ws_isolation.expect_violations()
            alice, bob = await ws_client_factory(), await ws_client_factory()
            with ws_server.faults("leak"):
                await alice.send_json({"type": "user_message", "text": "alice private note"})
                await alice.expect(type="agent_completed")
                await bob.send_json({"type": "ping"})
                await bob.expect(type="pong")
            assert ws_isolation.violations
            first = ws_isolation.violations[0]
            assert (first.receiver, first.owner) == (bob.user.id, alice.user.id)
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_websocket_security_turns_the_detector_on_by_itself(ws_pytester):
    write_leaky(ws_pytester, marker="@pytest.mark.websocket_security", fixture="")
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*received*"])


def test_websocket_security_is_strict(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_cannot_expect(ws_isolation, ws_client):
            with pytest.raises(RuntimeError, match="not allowed in a websocket_security test"):
                ws_isolation.expect_violations()
            assert ws_isolation.strict
            await ws_client.expect(type="connection_established")
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_websocket_security_skips_without_authentication(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.websocket_security
        def test_needs_auth(ws_client):
            raise AssertionError("must not run: no fixture may start")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "--ws-url=ws://127.0.0.1:9/", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*websocket_security needs authentication*jwt_secret_env*"])


def test_websocket_security_runs_against_an_external_server_with_auth(ws_pytester, monkeypatch):
    ws_pytester.makepyprojecttoml(
        """
        [tool.ws_resilience]
        jwt_secret_env = "TEST_WS_SECRET"
        """
    )
    monkeypatch.setenv("TEST_WS_SECRET", "x" * 40)
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.websocket_security
        def test_runs(ws_isolation):
            assert ws_isolation.strict
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "--ws-url=ws://127.0.0.1:9/")
    # It ran (not skipped): strict, and failed for checking nothing.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*websocket_security: the isolation detector: nothing was*"])


def test_a_test_that_fails_on_a_leak_itself_is_reported_once(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_own_assert(ws_server, ws_client_factory, ws_isolation):
            alice, bob = await ws_client_factory(), await ws_client_factory()
            with ws_server.faults("leak"):
                await alice.send_json({"type": "user_message", "text": "alice private note"})
                await alice.expect(type="agent_completed")
                await bob.send_json({"type": "ping"})
                await bob.expect(type="pong")
            assert ws_isolation.violations == []
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1, errors=0)  # no second report at teardown
    result.stdout.fnmatch_lines(["*ws-isolation*", "*isolation violations*"])
