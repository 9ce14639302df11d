"""Chaos faults that checked nothing are reported (issue 17: no silent green).

The pure rule (`fault_findings`), a real proxy's bookkeeping (`ChaosProxy.nothing_checked`),
and the plugin's end-of-test verdict, run as users run it (pytester): a warning, or a
failure with ``expect_fire=True`` or under ``websocket_security``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pytest_ws_resilience.chaos.message_faults import Message, MessageFault, fault_findings
from pytest_ws_resilience.chaos.proxy import ChaosProxy
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig


def test_a_fault_that_applied_zero_times_is_a_finding_and_says_why():
    drop = MessageFault("drop", select=99, name="drop#1")
    [unused] = fault_findings("chaos", [drop], applied={}, predicate_errors={}, connections=0)
    assert unused.area == "chaos" and not unused.required
    assert str(unused).startswith("message fault drop#1 (drop downstream) on chaos: nothing")
    assert "the proxy accepted no connection" in unused.reason
    [unmatched] = fault_findings("chaos", [drop], applied={}, predicate_errors={}, connections=2)
    assert "applied 0 times in 2 connection(s): no downstream message matched select=99" in (
        unmatched.reason
    )
    assert (
        fault_findings("c", [drop], applied={"drop#1": 1}, predicate_errors={}, connections=1) == []
    )


def test_a_raising_predicate_is_a_finding_even_when_the_fault_fired():
    fault = MessageFault("drop", select=lambda m: m.json()["x"], name="drop#2", expect_fire=True)
    [finding] = fault_findings(
        "p",
        [fault],
        applied={"drop#2": 3},
        predicate_errors={"drop#2": (2, "KeyError")},
        connections=1,
    )
    assert finding.required
    assert "its select predicate raised on 2 message(s), first: KeyError" in finding.reason


def test_expect_fire_must_be_a_bool():
    with pytest.raises(ValueError, match="expect_fire must be True or False"):
        MessageFault("drop", expect_fire="yes")  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[tuple[ReferenceServer, TokenFactory]]:
    tokens = TokenFactory()
    async with ReferenceServer(ServerConfig(secret=tokens.secret)) as srv:
        yield srv, tokens


@pytest.mark.asyncio
async def test_a_real_proxy_reports_unused_faults_raising_predicates_and_unused_toxics(server):
    srv, tokens = server

    def explode(message: Message) -> bool:
        raise KeyError("x")

    async with ChaosProxy(srv.url, seed=7, name="p1") as unused:
        unused.add_message_fault("drop")
        unused.add_toxic("latency", latency=10)
        found = unused.nothing_checked()
    assert [f.subject for f in found] == [
        "message fault drop#1 (drop downstream) on p1",
        "toxic latency_downstream on p1",
    ]

    async with ChaosProxy(srv.url, seed=7, name="p2") as proxy:
        fired = proxy.add_message_fault("duplicate", select=1)
        proxy.add_message_fault("drop", select=explode, name="bad")
        async with WsClient(proxy.url, user=tokens.user()) as client:
            await client.expect(type="connection_established")
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")
        [bad] = proxy.nothing_checked()
    assert fired.name not in bad.subject
    assert bad.subject == "message fault bad (drop downstream) on p2"
    assert "its select predicate raised on" in bad.reason and "KeyError" in bad.reason


SUITE = """
import pytest

{marker}
@pytest.mark.asyncio
async def test_chaos(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    proxy.add_message_fault("drop", select=2{options})
    client = await ws_client_factory()  # straight to the server: the proxy is never used
    await client.send_json({{"type": "ping"}})
    await client.expect(type="pong")
"""


def test_a_fault_on_a_proxy_the_client_never_used_warns(ws_pytester):
    # Before issue 17: passed with "0 faults applied" and no word.
    ws_pytester.makepyfile(SUITE.format(marker="", options=""))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*WsChaosWarning: test_chaos: message fault drop#1*nothing was checked*accepted no*"]
    )


def test_a_fault_armed_with_expect_fire_fails_when_it_never_fired(ws_pytester):
    ws_pytester.makepyfile(SUITE.format(marker="", options=", expect_fire=True"))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_chaos: checks that checked nothing:*", "*message fault drop#1*applied 0 times*"]
    )


def test_a_fault_that_never_fired_fails_a_websocket_security_test(ws_pytester):
    ws_pytester.makepyfile(SUITE.format(marker="@pytest.mark.websocket_security", options=""))
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*message fault drop#1*nothing was checked*"])
