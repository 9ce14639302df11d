"""The fixtures as users use them: pytester runs of small suites with -p ws_resilience."""

import json

import pytest

pytestmark = pytest.mark.websocket_integration


def test_strict_mode_async_fixtures_give_connected_clients(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_client(ws_client, ws_user):
            welcome = await ws_client.expect(type="connection_established")
            assert welcome["user_id"] == ws_user.id
            assert ws_client.connected

        @pytest.mark.asyncio
        async def test_factory(ws_client_factory, ws_user_factory):
            a = await ws_client_factory()
            b = await ws_client_factory(ws_user_factory(role="admin"), connect=False)
            assert a.connected and not b.connected
            await b.connect()
            assert (await b.expect(type="connection_established"))["user_id"] == b.user.id

        def test_sync_fixtures(ws_server, ws_settings, ws_tokens, ws_user):
            assert str(ws_server) == ws_server.url
            assert ws_server.url.startswith("ws://127.0.0.1:")
            assert ws_settings.env == "local"
            assert ws_user.token and ws_user.id and ws_user.email
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "--strict-markers")
    result.assert_outcomes(passed=3)


def test_clients_are_closed_at_teardown_and_server_started_once(ws_pytester, tmp_path):
    record = tmp_path / "record.jsonl"
    ws_pytester.makeconftest(
        f"""
        import json
        import pytest

        CLIENTS = []

        @pytest.fixture(autouse=True)
        def remember(request):
            yield
            with open({str(record)!r}, "a") as fh:
                for c in CLIENTS:
                    fh.write(json.dumps({{"closed": c.closed}}) + "\\n")
                CLIENTS.clear()
        """
    )
    ws_pytester.makepyfile(
        f"""
        import json
        import pytest
        from conftest import CLIENTS

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(10))
        async def test_uses_clients(ws_client_factory, ws_server, n):
            CLIENTS.extend([await ws_client_factory(), await ws_client_factory()])
            with open({str(record)!r}, "a") as fh:
                fh.write(json.dumps({{"url": ws_server.url}}) + "\\n")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=10)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    urls = {entry["url"] for entry in lines if "url" in entry}
    closed = [entry["closed"] for entry in lines if "closed" in entry]
    assert len(urls) == 1, f"the embedded server should start once per session: {urls}"
    assert len(closed) == 20 and all(closed)


def test_plugin_can_be_disabled(ws_pytester):
    ws_pytester.makepyfile(
        """
        def test_no_fixture(request):
            assert "ws_client" not in request.fixturenames
        """
    )
    result = ws_pytester.runpytest_subprocess("-p", "no:ws_resilience", "--fixtures")
    assert result.ret == 0
    assert "ws_client_factory" not in result.stdout.str()
    enabled = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "--fixtures")
    enabled.stdout.fnmatch_lines(["*ws_client_factory*"])


def test_fault_switches_are_scoped_to_a_block(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_leak_inside_the_block_only(ws_server, ws_client_factory):
            alice, bob = await ws_client_factory(), await ws_client_factory()
            with ws_server.faults("leak"):
                assert ws_server.embedded.faults == {"leak"}
                await alice.send_json({"type": "user_message", "text": "private words"})
                leaked = await bob.expect(type="agent_completed", user_id=alice.user.id)
                assert "private words" in leaked["result"]
            assert ws_server.embedded.faults == frozenset()

        def test_next_test_sees_a_clean_server(ws_server):
            assert ws_server.embedded.faults == frozenset()
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=2)


def test_faults_need_the_embedded_server(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        def test_external(ws_server):
            with pytest.raises(RuntimeError, match="embedded reference server"):
                ws_server.set_faults("leak")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "--ws-url=ws://127.0.0.1:9/")
    result.assert_outcomes(passed=1)
