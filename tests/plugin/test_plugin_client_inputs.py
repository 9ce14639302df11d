"""Where ``ws_client`` and ``ws_client_factory`` get their server, settings and users
(issue 16): the session's own values when nothing is overridden, without those fixtures
(or pytest's ``request``) in the test's closure; a conftest's override of any of them,
followed; the test they serve, from the plugin's setup hook.

pytester runs with ``-p ws_resilience`` and the embedded reference server, as users run.
"""

from __future__ import annotations

from typing import cast

import pytest

from pytest_ws_resilience.plugin.stash import CurrentTest

INPUTS = ("ws_server", "ws_settings", "ws_tokens", "ws_user_factory", "ws_user")

# Each test's closure as pytest collected it, and what each fixture asked for.
CLOSURES_CONFTEST = """
CLOSURES = {}
ARGUMENTS = {}


def pytest_collection_modifyitems(items):
    for item in items:
        CLOSURES[item.name] = list(item.fixturenames)


def pytest_fixture_setup(fixturedef):
    ARGUMENTS[fixturedef.argname] = fixturedef.argnames
"""

PLAIN = f"""
import jwt
import pytest

from conftest import ARGUMENTS, CLOSURES

INPUTS = {INPUTS!r}
SEEN = {{}}


@pytest.mark.asyncio
async def test_closure_has_no_inputs(ws_client):
    # pytest resolves every name of the closure on every test: the inputs are not in
    # it, and ws_client takes only pytest-asyncio's runner (its loop), not pytest's
    # request (a fixture definition more, three times a test).
    await ws_client.send_json({{"type": "ping"}})
    await ws_client.expect(type="pong")
    assert not set(INPUTS) & set(CLOSURES["test_closure_has_no_inputs"])
    assert ARGUMENTS["ws_client"] == ("_function_scoped_runner",)
    SEEN["url"] = ws_client.url


@pytest.mark.asyncio
async def test_same_user_when_asked_for(ws_client, ws_user):
    assert ws_client.user is ws_user


@pytest.mark.asyncio
async def test_same_server_and_settings(ws_client, ws_server, ws_settings, ws_tokens):
    assert ws_client.url == SEEN["url"] == ws_server.url
    assert ws_client.close_timeout == ws_settings.close_timeout
    claims = jwt.decode(ws_client.user.token, ws_tokens.secret, algorithms=["HS256"])
    assert claims["sub"] == ws_client.user.id


@pytest.mark.asyncio
async def test_factory_users_are_fresh(ws_client_factory, ws_user):
    first = await ws_client_factory()
    second = await ws_client_factory(ws_user)
    assert first.user.id != ws_user.id
    assert second.user is ws_user
    await first.send_json({{"type": "ping"}})
    await first.expect(type="pong")
"""


def test_without_overrides_the_inputs_are_the_sessions_own(ws_pytester):
    ws_pytester.makeconftest(CLOSURES_CONFTEST)
    ws_pytester.makepyfile(test_plain=PLAIN)
    result = ws_pytester.runpytest("-p", "ws_resilience", "-v")
    result.assert_outcomes(passed=4)
    # One server for the whole session, whether a test asked for ws_server or not.
    servers = [line for line in result.outlines if line.startswith("server: ")]
    assert len(servers) == 1, servers
    assert servers[0].count("ws://") == 1, servers


OVERRIDES = {
    "ws_user": """
        @pytest.fixture
        def ws_user(ws_user_factory):
            return ws_user_factory(id="override-" + uuid.uuid4().hex[:8])
        """,
    "ws_user_factory": """
        @pytest.fixture(scope="session")
        def ws_user_factory(ws_tokens):
            def make(**claims):
                return ws_tokens.user(id="override-" + uuid.uuid4().hex[:8], **claims)
            return make
        """,
    "ws_tokens": """
        class Tagging:
            def __init__(self, inner):
                self.inner = inner

            def user(self, **claims):
                return self.inner.user(id="override-" + uuid.uuid4().hex[:8], **claims)

            def __getattr__(self, name):
                return getattr(self.inner, name)

        @pytest.fixture(scope="session")
        def ws_tokens(ws_tokens):
            return Tagging(ws_tokens)
        """,
}


@pytest.mark.parametrize("outside_first", [False, True], ids=["inside-first", "outside-first"])
@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_an_overridden_user_source_is_followed_only_where_it_is_visible(
    ws_pytester, name, outside_first
):
    # In either order: a session-scoped ws_user_factory, made for the first test that
    # took it, minted the other directory's users with the first directory's tokens.
    ws_pytester.makeconftest("import pytest")
    ws_pytester.mkpydir("overridden")
    ws_pytester.path.joinpath("overridden", "conftest.py").write_text(
        "import uuid\n\nimport pytest\n\n" + _dedent(OVERRIDES[name])
    )
    test = """
import pytest


@pytest.mark.asyncio
async def test_client(ws_client):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
    assert ws_client.user.id.startswith("override-") is OVERRIDDEN


@pytest.mark.asyncio
async def test_factory(ws_client_factory):
    client = await ws_client_factory()
    assert client.user.id.startswith("override-") is FRESH_USERS_OVERRIDDEN


def test_users(ws_user, ws_user_factory):
    assert ws_user.id.startswith("override-") is OVERRIDDEN
    assert ws_user_factory().id.startswith("override-") is FRESH_USERS_OVERRIDDEN
"""
    # The factory's fresh users come from ws_user_factory: an override of ws_user
    # alone does not change them.
    fresh = name != "ws_user"
    inside = f"OVERRIDDEN = True\nFRESH_USERS_OVERRIDDEN = {fresh}\n"
    ws_pytester.path.joinpath("overridden", "test_in.py").write_text(inside + test)
    outside = "OVERRIDDEN = False\nFRESH_USERS_OVERRIDDEN = False\n"
    ws_pytester.makepyfile(test_out=outside + test)
    order = ["test_out.py", "overridden"] if outside_first else ["overridden", "test_out.py"]
    result = ws_pytester.runpytest("-p", "ws_resilience", "-v", *order)
    result.assert_outcomes(passed=6)
    ran = [line.split("::")[0] for line in result.outlines if " PASSED" in line]
    assert ran[0].startswith(order[0]) and ran[-1].startswith(order[1]), ran


def test_an_overridden_server_is_followed(ws_pytester):
    # The user's own server: a second reference server, on a port of its own.
    ws_pytester.makeconftest(
        """
        import pytest
        from pytest_ws_resilience.servers.under_test import ServerUnderTest
        from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

        @pytest.fixture(scope="session")
        def ws_server(ws_tokens):
            with EmbeddedServer(ServerConfig(secret=ws_tokens.secret)) as server:
                yield ServerUnderTest(url=server.url, source="conftest")
        """
    )
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_client(ws_client, ws_server):
            assert ws_server.source == "conftest"
            assert ws_client.url == ws_server.url
            await ws_client.send_json({"type": "ping"})
            await ws_client.expect(type="pong")

        @pytest.mark.asyncio
        async def test_factory_alone(ws_client_factory, request):
            client = await ws_client_factory()
            assert client.url == request.getfixturevalue("ws_server").url
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=2)


def test_overridden_settings_are_followed(ws_pytester):
    ws_pytester.makeconftest(
        """
        import dataclasses

        import pytest
        from pytest_ws_resilience.config.timeouts import TimeoutValue

        @pytest.fixture(scope="session")
        def ws_settings(ws_settings):
            return dataclasses.replace(ws_settings, close_timeout=TimeoutValue(4.5, "conftest"))
        """
    )
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_client(ws_client):
            assert ws_client.close_timeout.value == 4.5
            assert ws_client.close_timeout.source == "conftest"
            await ws_client.send_json({"type": "ping"})
            await ws_client.expect(type="pong")
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip()


def test_in_the_session_loop_the_client_fixtures_take_its_runner(ws_pytester):
    # ws_loop_scope = session: the fixtures take pytest-asyncio's session runner and
    # connect in the loop every test of the session runs in.
    ws_pytester.makeini(
        """
        [pytest]
        asyncio_mode = strict
        asyncio_default_fixture_loop_scope = function
        asyncio_default_test_loop_scope = session
        ws_loop_scope = session
        """
    )
    ws_pytester.makeconftest(CLOSURES_CONFTEST)
    ws_pytester.makepyfile(
        """
        import asyncio

        import pytest

        from conftest import ARGUMENTS

        LOOPS = []


        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_client(ws_client, n):
            LOOPS.append(asyncio.get_running_loop())
            await ws_client.send_json({"type": "ping", "n": n})
            await ws_client.expect(type="pong", n=n)
            assert ARGUMENTS["ws_client"] == ("_session_scoped_runner",)


        @pytest.mark.asyncio
        async def test_factory(ws_client_factory):
            client = await ws_client_factory()
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")
            assert LOOPS[0] is LOOPS[1] is asyncio.get_running_loop()
            assert ARGUMENTS["ws_client_factory"] == ("_session_scoped_runner",)
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=3)


def test_asking_for_ws_client_inside_the_running_loop_is_one_clear_error(ws_pytester):
    # ws_client runs its loop until the connection is open: from an async fixture or
    # test (the loop already running) that cannot be; the error says how to ask
    # instead, not asyncio's "This event loop is already running".
    ws_pytester.makepyfile(
        """
        import pytest
        import pytest_asyncio


        @pytest_asyncio.fixture
        async def fetched(request):
            return request.getfixturevalue("ws_client")


        @pytest.mark.asyncio
        async def test_fetched_in_an_async_fixture(fetched):
            pass


        @pytest.mark.asyncio
        async def test_fetched_in_the_test(request):
            request.getfixturevalue("ws_client")


        @pytest.mark.asyncio
        async def test_the_factory_connects_later_and_works(request):
            # Its setup runs no loop: only its clients connect, awaited here.
            client = await request.getfixturevalue("ws_client_factory")()
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")


        @pytest.fixture
        def fetched_sync(request):
            return request.getfixturevalue("ws_client")


        @pytest.mark.asyncio
        async def test_fetched_in_a_sync_fixture_works(fetched_sync):
            await fetched_sync.send_json({"type": "ping"})
            await fetched_sync.expect(type="pong")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=2, errors=1, failed=1)
    line = (
        "*ws_client was asked for from inside the running event loop (request."
        "getfixturevalue in an async fixture or test): take ws_client as an argument "
        "of that fixture or test instead"
    )
    result.stdout.fnmatch_lines([line, line], consecutive=False)
    result.stdout.no_fnmatch_line("*This event loop is already running*")


def test_the_current_test_is_required_between_tests():
    # No I/O. pytest sets up no function fixture of a test before its runner's setup
    # hook, which comes after the plugin's (tryfirst): a client fixture always finds its
    # test. Should that ever change, the fixture says so in one line, never serves
    # the previous test.
    current = CurrentTest()
    with pytest.raises(RuntimeError, match=r"^the client fixtures ran outside a test's setup"):
        current.require("the client fixtures")
    item = cast(pytest.Item, object())
    current.item = item
    assert current.require("the client fixtures") is item


def test_a_pytest_asyncio_without_runner_fixtures_is_one_clear_error(monkeypatch):
    # No I/O: the name check made once at configure time (pytest-asyncio 1.0 named its
    # loop fixtures otherwise).
    import pytest_asyncio.plugin

    from pytest_ws_resilience.plugin.loop_fixtures import runner_fixture

    assert runner_fixture("session") == "_session_scoped_runner"
    monkeypatch.delattr(pytest_asyncio.plugin, "_function_scoped_runner")
    with pytest.raises(pytest.UsageError) as caught:
        runner_fixture("function")
    message = str(caught.value)
    assert "_function_scoped_runner" in message
    assert "pytest-asyncio>=1.1,<2" in message
    assert "\n" not in message
