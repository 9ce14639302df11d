"""A client fixture's connections start closing when the test's body has passed and
nothing set up after the fixture can use them (issue 16): the close frame goes out
before pytest reports the body, and the fixture's teardown ends the handshake. Whatever
can still use a client after the body (a fixture that takes it or pytest's ``request``,
set up after it; a test that takes ``request``; a body that failed) keeps it open until
its teardown, as before.

pytester runs with ``-p ws_resilience`` and the embedded reference server, as users run;
a conftest hook looks at each client's state when the test's teardown begins.
"""

from __future__ import annotations

import json

from pytest_ws_resilience.plugin.early_close import nothing_uses_after

# At the start of each test's teardown (before any fixture is torn down): the state
# of the clients the test put in its module's CLIENTS, by test name.
PROBE_CONFTEST = """
import pytest

STATES = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    clients = getattr(item.module, "CLIENTS", {}).get(item.name, [])
    STATES[item.name] = [c.connection.protocol.state.name for c in clients]
    print(f"\\nSTATE {item.name} {' '.join(STATES[item.name])}")
"""

SUITE = """
import pytest
import pytest_asyncio

CLIENTS = {}
AFTER = {}


async def ping(client):
    await client.send_json({"type": "ping"})
    await client.expect(type="pong")


@pytest.mark.asyncio
async def test_plain(ws_client):
    CLIENTS["test_plain"] = [ws_client]
    await ping(ws_client)


@pytest.mark.asyncio
async def test_factory(ws_client_factory):
    clients = [await ws_client_factory(), await ws_client_factory()]
    CLIENTS["test_factory"] = clients
    for client in clients:
        await ping(client)


@pytest_asyncio.fixture
async def logged_in(ws_client):
    yield ws_client
    # Used after the body: the client must still be open here.
    await ping(ws_client)
    AFTER["logged_in"] = ws_client.connected


@pytest.mark.asyncio
async def test_a_fixture_takes_it(logged_in):
    CLIENTS["test_a_fixture_takes_it"] = [logged_in]
    await ping(logged_in)


@pytest.fixture
def fetched(request):
    client = request.getfixturevalue("ws_client")
    yield client
    AFTER["fetched"] = client.connected  # its teardown comes before ws_client's


@pytest.mark.asyncio
async def test_a_fixture_fetches_it(fetched):
    CLIENTS["test_a_fixture_fetches_it"] = [fetched]
    await ping(fetched)


@pytest.mark.asyncio
async def test_the_test_takes_request(ws_client, request):
    CLIENTS["test_the_test_takes_request"] = [ws_client]
    await ping(ws_client)


@pytest.mark.asyncio
async def test_failing(ws_client):
    CLIENTS["test_failing"] = [ws_client]
    await ping(ws_client)
    assert False, "the body failed"


def test_after_the_others():
    # Teardowns that used their client after the body found it open.
    assert AFTER == {"logged_in": True, "fetched": True}
"""


def _states(result) -> dict[str, list[str]]:
    states = {}
    for line in result.outlines:
        if line.startswith("STATE "):
            _, name, *rest = line.split()
            states[name] = rest
    return states


def test_clients_start_closing_only_when_nothing_can_use_them(ws_pytester):
    ws_pytester.makeconftest(PROBE_CONFTEST)
    ws_pytester.makepyfile(test_suite=SUITE)
    report = ws_pytester.path / "report.json"
    result = ws_pytester.runpytest("-p", "ws_resilience", "-s", f"--ws-report={report}")
    result.assert_outcomes(passed=6, failed=1)
    states = _states(result)
    # The close frame went out before pytest reported the body (CLOSING, or CLOSED
    # when the server's answer was already read: not before teardown, no loop ran).
    assert states["test_plain"] == ["CLOSING"]
    assert states["test_factory"] == ["CLOSING", "CLOSING"]
    # Something could still use the client after the body: open until its teardown.
    for name in (
        "test_a_fixture_takes_it",
        "test_a_fixture_fetches_it",
        "test_the_test_takes_request",
        "test_failing",
    ):
        assert states[name] == ["OPEN"], (name, states[name])
    # Every connection, closed early or not, ended with a normal closing handshake
    # started by the client.
    records = json.loads(report.read_text())["tests"]
    connections = [c for r in records for c in r["connections"]]
    assert len(connections) == 7
    for connection in connections:
        assert (connection["close_code"], connection["closed_by"]) == (1000, "client"), connection


def test_the_rule_looks_at_what_was_set_up_after_the_fixture():
    def uses_after(setup_order, test_args=()):
        return not nothing_uses_after(reversed(setup_order), "ws_client", test_args)

    runner = ("_function_scoped_runner", ("event_loop_policy", "request"))
    client = ("ws_client", ("_function_scoped_runner",))
    assert not uses_after([runner, client], ("ws_client",))
    # Set up before the client (it cannot hold it): not counted, even with request.
    assert not uses_after([("early", ("request",)), client])
    # Set up after it, without it or request: cannot reach it.
    assert not uses_after([client, ("other", ("tmp_path",))])
    # Set up after it and takes it, or takes request (getfixturevalue, finalizers).
    assert uses_after([client, ("dep", ("ws_client",))])
    assert uses_after([client, ("any", ("request",))])
    # The test takes request: its finalizers run before fixtures are torn down.
    assert uses_after([client], ("ws_client", "request"))
    # A fixture that was never set up offers nothing.
    assert uses_after([runner])


# A conftest hook that sends on the test's client after its body (before its fixtures
# are torn down): the case the rule cannot see, and what ``ws_early_close = false`` is
# for.
HOOK_CONFTEST = """
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    client = item.funcargs["ws_client"]
    print(f"\\nSTATE {item.name} {client.connection.protocol.state.name}")
    loop = item.funcargs["_function_scoped_runner"].get_loop()
    loop.run_until_complete(client.send_json({"type": "ping"}))
    print(f"\\nHOOK SENT {item.name}")
"""

HOOK_SUITE = """
import pytest


@pytest.mark.asyncio
async def test_plain(ws_client):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
"""


def _add_ini_line(pytester, line: str) -> None:
    ini = pytester.path / "tox.ini"  # ws_pytester's (pytester.makeini writes tox.ini)
    ini.write_text(ini.read_text().rstrip("\n") + "\n" + line + "\n")


def test_an_ini_key_keeps_the_clients_open_until_teardown(ws_pytester):
    ws_pytester.makeconftest(HOOK_CONFTEST)
    ws_pytester.makepyfile(test_suite=HOOK_SUITE)
    _add_ini_line(ws_pytester, "ws_early_close = false")
    result = ws_pytester.runpytest("-p", "ws_resilience", "-s")
    result.assert_outcomes(passed=1)
    assert _states(result)["test_plain"] == ["OPEN"]
    assert "HOOK SENT test_plain" in result.outlines


def test_by_default_such_a_hook_finds_the_client_closing(ws_pytester):
    # The same suite without the ini key: the hook's send fails on a closing client
    # (so the ini key above is what lets it work).
    ws_pytester.makeconftest(HOOK_CONFTEST)
    ws_pytester.makepyfile(test_suite=HOOK_SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience", "-s")
    result.assert_outcomes(passed=1, errors=1)
    assert _states(result)["test_plain"] == ["CLOSING"]
    assert "HOOK SENT test_plain" not in result.outlines
    result.stdout.fnmatch_lines(["E *.WsConnectionClosedError: cannot send: *we sent 1000 (OK)*"])


def test_a_bad_ini_value_is_one_line(ws_pytester):
    ws_pytester.makepyfile(test_suite=HOOK_SUITE)
    _add_ini_line(ws_pytester, "ws_early_close = maybe")
    result = ws_pytester.runpytest("-p", "ws_resilience")
    assert result.ret == 4
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [
        "ERROR: ini ws_early_close is invalid (invalid truth value 'maybe'): expected true or false"
    ], result.errlines
