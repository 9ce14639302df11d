"""Servers that check no credential (``auth_methods = ["none"]``), Origin-checking servers
and many routes, as a user meets them: pytester runs of small suites with
``-p ws_resilience`` against a plain websockets chat server run with ``--ws-server-cmd``.
"""

from __future__ import annotations

import sys

import pytest

from pytest_ws_resilience.config.routes import route_url
from pytest_ws_resilience.plugin.markers import security_skip_reason
from pytest_ws_resilience.report.summary import auth_text

#: A plain websockets chat server, as users write them: one room per path
#: (``/chat/<room>``), every message broadcast to the room; ``--leak`` broadcasts to every
#: room (the bug the isolation detector must catch); ``--origin`` answers 403 to any other
#: Origin (as Django Channels' ``AllowedHostsOriginValidator``).
CHAT_SERVER = """
import argparse
import asyncio

from websockets.asyncio.server import broadcast, serve

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--origin")
parser.add_argument("--leak", action="store_true")
args = parser.parse_args()
rooms = {}


def check(connection, request):
    if args.origin and request.headers.get("Origin") != args.origin:
        return connection.respond(403, "origin not allowed\\n")
    if request.path != "/" and not request.path.startswith("/chat/"):
        return connection.respond(404, "no such route\\n")
    return None


async def chat(connection):
    members = rooms.setdefault(connection.request.path, set())
    members.add(connection)
    try:
        async for message in connection:
            everyone = [c for room in rooms.values() for c in room]
            broadcast(everyone if args.leak else members, message)
    finally:
        members.discard(connection)


async def main():
    async with serve(chat, "127.0.0.1", args.port, process_request=check) as server:
        await server.serve_forever()


asyncio.run(main())
"""

ORIGIN = "http://chat.example.test"

UNAUTHENTICATED = """
[tool.ws_resilience]
auth_methods = ["none"]
greeting = false
"""

ROOMS_SUITE = """
import pytest


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_rooms_do_not_leak(ws_client_factory, ws_user_factory):
    alice_user, bob_user = ws_user_factory(), ws_user_factory()
    alice = await ws_client_factory(alice_user, path="/chat/{room}", path_params={"room": "a"})
    bob = await ws_client_factory(bob_user, path="/chat/{room}", path_params={"room": "b b"})
    assert alice.url.endswith("/chat/a") and bob.url.endswith("/chat/b%20b")
    secret = alice.canary()
    await alice.send_json({"type": "say", "text": secret})
    assert (await alice.expect("say"))["text"] == secret
    await bob.send_json({"type": "say", "text": "bob says hello to his own room"})
    await bob.expect("say")
    # Users keep their ids; their tokens are never presented.
    assert alice.user.id != bob.user.id
    assert alice.auth_method == bob.auth_method == "none"
"""


def _server_cmd(pytester: pytest.Pytester, *flags: str) -> str:
    script = pytester.path / "chat_server.py"
    script.write_text(CHAT_SERVER)
    return " ".join([sys.executable, str(script), "--port", "{port}", *flags])


def test_websocket_security_runs_against_an_unauthenticated_server(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyprojecttoml(UNAUTHENTICATED)
    ws_pytester.makepyfile(test_rooms=ROOMS_SUITE)
    command = _server_cmd(ws_pytester)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", f"--ws-server-cmd={command}", "-rs"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            'ws-resilience auth: none (auth_methods = [[]"none"[]]: no token is presented)',
            "*connections opened: 2 (auth: none)*",
            "isolation: * frames checked in 1 test, 0 violations",
        ]
    )


def test_websocket_security_catches_the_leak_of_an_unauthenticated_server(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyprojecttoml(UNAUTHENTICATED)
    ws_pytester.makepyfile(test_rooms=ROOMS_SUITE)
    command = _server_cmd(ws_pytester, "--leak")
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", f"--ws-server-cmd={command}")
    # The leak fails the test, once: no second report at teardown.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*user-*'s data reached user-*", "*received a frame holding user-*'s canary marker*"]
    )


def test_an_external_server_with_no_key_and_no_declaration_names_both_ways_out(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(test_rooms=ROOMS_SUITE)
    command = _server_cmd(ws_pytester)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", f"--ws-server-cmd={command}", "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*websocket_security needs authentication: set jwt_secret_env*"
            'or declare auth_methods = [[]"none"[]] if the server checks no credential'
        ]
    )


ORIGIN_SUITE = """
import pytest

from pytest_ws_resilience import WsAuthError


@pytest.mark.asyncio
async def test_a_storm_carries_the_configured_origin(ws_storm):
    result = await ws_storm.connect(
        4, path="/chat/{room}", path_params=lambda i: {"room": f"r{i % 2}"}
    )
    result.assert_errors(max=0)
    assert result.succeeded == 4


@pytest.mark.asyncio
async def test_pool_and_factory_carry_it_too(ws_pool, ws_client_factory):
    pooled = await ws_pool.acquire(path="/chat/{room}", path_params={"room": "p"})
    client = await ws_client_factory(url=pooled.url, headers={"X-Team": "qa"})
    await client.send_json({"type": "say", "n": 1})
    assert (await pooled.expect("say"))["n"] == 1
    with pytest.raises(WsAuthError, match="does not depend on the credentials"):
        await ws_client_factory(origin="http://evil.example.test")


@pytest.mark.asyncio
async def test_chaos_clients_carry_it(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    client = await ws_client_factory(url=proxy.url, path="/chat/{room}", path_params={"room": "c"})
    await client.send_json({"type": "say", "n": 2})
    assert (await client.expect("say"))["n"] == 2


@pytest.mark.asyncio
async def test_a_storm_from_another_origin(ws_storm):
    result = await ws_storm.connect(3, origin="http://evil.example.test")
    result.assert_errors(max=0)
"""


def test_an_origin_checking_server_accepts_the_configured_origin_everywhere(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyprojecttoml(UNAUTHENTICATED + f'origin = "{ORIGIN}"\n')
    ws_pytester.makepyfile(test_origin=ORIGIN_SUITE)
    command = _server_cmd(ws_pytester, "--origin", ORIGIN)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", f"--ws-server-cmd={command}")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a_storm_from_another_origin*",
            "*errors: auth=3*",
            "*auth, first: *none: HTTP 403*does not depend on the credentials*Origin*",
        ]
    )
    assert "check the token's secret" not in result.stdout.str()


#: A raw ASGI echo app: no framework, no authentication.
ECHO_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": event.get("text") or ""})
"""

ECHO_SUITE = """
import pytest


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_echo_is_private(ws_client_factory):
    alice, bob = await ws_client_factory(), await ws_client_factory()
    await alice.send_json({"type": "say", "text": alice.canary()})
    await bob.send_json({"type": "say", "text": bob.canary()})
    await alice.expect("say")
    await bob.expect("say")
    assert alice.auth_method == "none"
"""


def test_websocket_security_runs_under_ws_app_when_unauthenticated(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyprojecttoml(UNAUTHENTICATED)
    ws_pytester.makepyfile(echo_app=ECHO_APP, test_echo=ECHO_SUITE)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "--ws-app=echo_app:app")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*connections opened: 2 (auth: none)*"])


@pytest.mark.parametrize("kind", ["url", "app", "command"])
def test_the_security_skip_rule_for_servers_the_plugin_does_not_know(kind: str) -> None:
    reason = security_skip_reason(server_kind=kind, auth_configured=False)
    assert reason is not None
    assert "jwt_secret_env" in reason and 'auth_methods = ["none"]' in reason
    assert security_skip_reason(server_kind=kind, auth_configured=True) is None
    assert (
        security_skip_reason(server_kind=kind, auth_configured=False, unauthenticated=True) is None
    )
    assert security_skip_reason(server_kind="embedded", auth_configured=False) is None


def test_fixture_routes_fill_the_template_on_the_server_s_address() -> None:
    base = "ws://127.0.0.1:9/ws"
    assert route_url(base, None, None, None) == base
    assert route_url(base, None, "/chat/{room}", {"room": "a"}) == "ws://127.0.0.1:9/chat/a"
    assert route_url(base, "ws://127.0.0.1:7/x", "/y", None) == "ws://127.0.0.1:7/y"
    with pytest.raises(ValueError, match="path_params= needs path="):
        route_url(base, None, None, {"room": "a"})


def test_the_summary_says_auth_none_when_no_connection_presented_a_token() -> None:
    assert auth_text({"none": 219}) == "none"
    assert auth_text({"subprotocol": 3, "none": 1}) == "subprotocol 3, none 1"
