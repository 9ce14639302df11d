"""Where ``ws_client`` and ``ws_client_factory`` get their server, settings and users
(issue 16): the session's own values when nothing is overridden, without those fixtures
in the test's closure; a conftest's override of any of them, followed.

pytester runs with ``-p ws_resilience`` and the embedded reference server, as users run.
"""

from __future__ import annotations

import pytest

INPUTS = ("ws_server", "ws_settings", "ws_tokens", "ws_user_factory", "ws_user")

PLAIN = f"""
import jwt
import pytest

INPUTS = {INPUTS!r}
SEEN = {{}}


@pytest.mark.asyncio
async def test_closure_has_no_inputs(request, ws_client):
    # pytest resolves every name of the closure on every test: the inputs are not in it.
    await ws_client.send_json({{"type": "ping"}})
    await ws_client.expect(type="pong")
    assert not set(INPUTS) & set(request.fixturenames)
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
    ws_pytester.makepyfile(test_plain=PLAIN)
    result = ws_pytester.runpytest("-p", "ws_resilience", "-p", "no:randomly", "-v")
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


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_an_overridden_user_source_is_followed_only_where_it_is_visible(ws_pytester, name):
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
"""
    # The factory's fresh users come from ws_user_factory: an override of ws_user
    # alone does not change them.
    fresh = name != "ws_user"
    inside = f"OVERRIDDEN = True\nFRESH_USERS_OVERRIDDEN = {fresh}\n"
    ws_pytester.path.joinpath("overridden", "test_in.py").write_text(inside + test)
    outside = "OVERRIDDEN = False\nFRESH_USERS_OVERRIDDEN = False\n"
    ws_pytester.makepyfile(test_out=outside + test)
    result = ws_pytester.runpytest("-p", "ws_resilience", "-p", "no:randomly")
    result.assert_outcomes(passed=4)


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
    ws_pytester.runpytest("-p", "ws_resilience", "-p", "no:randomly").assert_outcomes(passed=2)


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
    ws_pytester.runpytest("-p", "ws_resilience", "-p", "no:randomly").assert_outcomes(passed=1)


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip()
