"""``ws_isolation.scope``: scope rules as users use them (pytester runs against the
reference server's rooms and its room faults). Each bug class is caught by the rule
alone, no assertion on fields; each clean variant passes 20 runs in a row."""

from __future__ import annotations

import pytest

# Two users in two rooms post one event each. The fault (or "" for the clean server)
# is switched on around the posts; nothing in the test looks at a field.
ROOMS_TEST = """
import pytest

FAULTS = {faults!r}

@pytest.mark.asyncio
@pytest.mark.parametrize("run", range({runs}))
async def test_{name}(run, ws_server, ws_client_factory, ws_isolation):
    ws_isolation.scope("room", join={{"type": "join"}}, leave={{"type": "left"}})
    alice, bob = await ws_client_factory(), await ws_client_factory()
    {body}
"""

ANOTHER_ROOM = """
    for client, room in ((alice, "a"), (bob, "b")):
        await client.send_json({"type": "join", "room": room})
        await client.expect(type="joined")
    with ws_server.faults(*FAULTS):
        await alice.send_json({"type": "post", "room": "a", "value": 1})
        await alice.expect(type="room_event")
        await bob.send_json({"type": "post", "room": "b", "value": 2})
        await bob.expect(type="room_event", room="b")
"""

AFTER_LEAVE = """
    for client in (alice, bob):
        await client.send_json({"type": "join", "room": "a"})
        await client.expect(type="joined")
    with ws_server.faults(*FAULTS):
        await bob.send_json({"type": "leave", "room": "a"})
        await bob.expect(type="left")
        await alice.send_json({"type": "post", "room": "a", "value": 1})
        await alice.expect(type="room_event")
        await bob.send_json({"type": "ping"})
        await bob.expect(type="pong")
"""


def rooms_test(body: str, *, name: str, faults: tuple[str, ...] = (), runs: int = 1) -> str:
    indented = "\n".join(line[4:] if line.strip() else "" for line in body.strip("\n").split("\n"))
    body_text = indented.replace("\n", "\n    ")
    return ROOMS_TEST.format(faults=faults, runs=runs, name=name, body=body_text)


def test_an_anonymous_event_sent_to_another_room_is_caught_with_the_timeline(ws_pytester):
    ws_pytester.makepyfile(rooms_test(ANOTHER_ROOM, name="leak", faults=("room_leak",)))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*isolation rule violation*",
            # 1 or 2: the leak of bob's event to alice may come after the body (then
            # it joins the report at teardown as a note, not a second failure).
            "*scope 'room' (field 'room'): * violation*",
            "*[[]scope[]] received a frame of room 'a' it is not entitled to (entitled to: 'b')",
            '*frame: {"type":"room_event","room":"a"*',
            "*entitlement timeline of user-*",
            "*+0.000s connected (first)",
            "*granted room 'b' (sent frame)",
            "*this frame: room 'a'  <-- not entitled",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_delivery_after_leave_is_caught_with_the_revoke_in_the_timeline(ws_pytester):
    ws_pytester.makepyfile(rooms_test(AFTER_LEAVE, name="leave", faults=("deliver_after_leave",)))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*scope 'room' (field 'room'): 1 violation*",
            "*received a frame of room 'a' it is not entitled to (entitled to: none)",
            "*granted room 'a' (sent frame)",
            "*revoked room 'a' (received frame)",
            "*this frame: room 'a'  <-- not entitled",
        ]
    )


@pytest.mark.parametrize(("body", "name"), [(ANOTHER_ROOM, "rooms"), (AFTER_LEAVE, "leave")])
def test_each_clean_variant_passes_20_runs_in_a_row(ws_pytester, body, name):
    ws_pytester.makepyfile(rooms_test(body, name=name, runs=20))
    result = ws_pytester.runpytest("-p", "ws_resilience", "-W", "error::UserWarning")
    result.assert_outcomes(passed=20)


def test_a_per_room_endpoint_is_entitled_by_its_path(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("faults", [(), ("room_leak",)], ids=["clean", "leak"])
        async def test_path(faults, ws_server, ws_client_factory, ws_isolation):
            ws_isolation.scope("room", path="/rooms/{room}")
            red = await ws_client_factory(path="/rooms/{room}", path_params={"room": "red"})
            blue = await ws_client_factory(path="/rooms/{room}", path_params={"room": "blue"})
            for client in (red, blue):
                await client.expect(type="joined")
            with ws_server.faults(*faults):
                await red.send_json({"type": "post", "room": "red", "value": 1})
                await red.expect(type="room_event")
                await blue.send_json({"type": "post", "room": "blue", "value": 2})
                await blue.expect(type="room_event", room="blue")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_path?leak?*",
            # 1 or 2: the leak of blue's event to red may come after the body.
            "*scope 'room' (field 'room', path '/rooms/{room}'): * violation*",
            "*granted room 'blue' (path)",
            "*this frame: room 'red'  <-- not entitled",
        ]
    )


STORM_TEST = """
import pytest

@pytest.mark.asyncio
@pytest.mark.parametrize("faults", [(), ("room_leak",)], ids=["clean", "leak"])
async def test_storm(faults, ws_server, ws_storm, ws_isolation):
    ws_isolation.scope("room", path="/rooms/{room}")
    result = await ws_storm.connect(
        8, hold=True, path="/rooms/{room}", path_params=lambda i: {"room": f"r{i % 2}"}
    )
    result.assert_error_rate(max=0)
    for client in result.clients:
        await client.expect(type="joined")
    with ws_server.faults(*faults):
        for i, client in enumerate(result.clients):
            await client.send_json({"type": "post", "room": f"r{i % 2}", "value": i})
        for i, client in enumerate(result.clients):
            await client.expect(type="room_event", value=i)
"""


def test_a_storm_is_watched_by_the_scope_rule(ws_pytester):
    ws_pytester.makepyfile(STORM_TEST)
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_storm?leak?*", "*scope 'room'*violations*"])


def test_the_rule_spans_a_reconnect(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_reconnect(ws_server, ws_client_factory, ws_isolation):
            ws_isolation.expect_violations()
            rule = ws_isolation.scope("room", join={"type": "join"})
            alice, bob = await ws_client_factory(), await ws_client_factory()
            for client, room in ((alice, "a"), (bob, "b")):
                await client.send_json({"type": "join", "room": room})
                await client.expect(type="joined")
            await bob.reconnect()  # the server forgets bob's room, the client does not
            await bob.send_json({"type": "join", "room": "b"})
            await bob.expect(type="joined")
            with ws_server.faults("room_leak"):
                await alice.send_json({"type": "post", "room": "a", "value": 1})
                await alice.expect(type="room_event")
                await bob.send_json({"type": "ping"})
                await bob.expect(type="pong")
            [found] = rule.violations
            assert found.receiver == bob.user.id
            assert "connected (reconnect)" in "\\n".join(found.detail)
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_a_rule_that_never_applied_warns_loudly(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_wrong_field(ws_client_factory, ws_isolation):
            ws_isolation.scope("room", field="channel")
            alice = await ws_client_factory()
            await alice.send_json({"type": "join", "room": "a"})
            await alice.expect(type="joined")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*WsIsolationWarning*scope 'room' (field 'channel'): no received frame carried field*"]
    )


def test_a_rule_that_never_applied_fails_a_security_test(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_wrong_field(ws_client_factory, ws_isolation):
            ws_isolation.scope("room", field="channel")
            alice = await ws_client_factory()
            await alice.send_json({"type": "join", "room": "a"})
            await alice.expect(type="joined")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no received frame carried field 'channel'*"])


def test_scope_rules_work_under_xdist(ws_pytester):
    pytest.importorskip("xdist")  # the tox env without xdist skips it
    ws_pytester.makepyfile(
        test_leak=rooms_test(ANOTHER_ROOM, name="leak", faults=("room_leak",)),
        test_clean=rooms_test(ANOTHER_ROOM, name="clean", runs=4),
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "-n", "2")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*entitlement timeline of user-*"])
