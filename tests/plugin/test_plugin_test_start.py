"""What every test pays for the plugin (issue 16): the start fixture (services, the
``websocket_security`` guard) joins only the tests that need it, and the "nothing was
checked" verdicts still come after every test that used the plugin.

pytester runs with ``-p ws_resilience`` and the embedded reference server, as users run.
"""

from __future__ import annotations

START = "_ws_test_start"

PARAMETRIZED = f"""
import pytest

@pytest.mark.asyncio
@pytest.mark.parametrize(
    "secure", [pytest.param(True, marks=pytest.mark.websocket_security), False]
)
async def test_each(request, secure, ws_client):
    await ws_client.send_json({{"type": "ping"}})
    await ws_client.expect(type="pong")
    assert ("{START}" in request.fixturenames) is secure
    assert ("ws_isolation" in request.fixturenames) is secure


def test_plain(request):
    assert not [name for name in request.fixturenames if name.startswith("_ws_")]
"""


def test_only_the_tests_that_need_it_get_the_start_fixture(ws_pytester):
    # Before: an autouse fixture, in the closure of every test. The parametrized items
    # share one list of fixture names: the secure one's must not leak to the other.
    ws_pytester.makepyfile(PARAMETRIZED)
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=3)


def test_a_services_marker_starts_its_service_before_the_tests_fixtures(ws_pytester):
    # A service the env does not define: the start fixture fails the test with one line,
    # before ws_client connects anywhere.
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ws_services("nowhere")
        def test_needs_a_service(request):
            pass

        def test_needs_none(request):
            assert not [name for name in request.fixturenames if name.startswith("_ws_")]
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*nowhere*"])


def test_a_fault_that_never_fired_still_fails_a_strict_test_after_its_teardown(ws_pytester):
    # The verdict moved from the autouse fixture's teardown to the teardown hook.
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_unfired(ws_chaos, ws_client_factory):
            proxy = await ws_chaos()
            proxy.add_message_fault("drop", select=lambda frame: False)
            client = await ws_client_factory(url=proxy.url)
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*checks that checked nothing*"])
