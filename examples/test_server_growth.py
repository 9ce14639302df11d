"""Server resource growth: does the server give back what each connection took?

A server that keeps a file descriptor, a socket or a buffer per closed connection runs
fine for a day and then stops accepting. Connect/disconnect cycles against the server's
*own* process show it: the storm samples the server before and after (RSS, open fds,
threads, TCP sockets, children included) and reports its growth per 1,000 cycles.

The embedded reference server runs inside the test process, where the clients' fds and
memory would count too, so these tests start the reference server as a process of its
own (a private service; no Docker needed). Against your server, run the suite with
``--ws-server-cmd "... {port}"`` (or ``--ws-app ... --ws-app-subprocess``) and use
``ws_storm.cycles(...)`` directly: ``ws_server.resources()`` is sampled for you.
"""

import sys

import pytest

from pytest_ws_resilience import ServiceSpec, Storm, StormThresholdError

pytestmark = pytest.mark.asyncio

REFERENCE = [sys.executable, "-m", "pytest_ws_resilience.testing", "--port", "{port}"]


async def cycles_against(server, ws_tokens, ws_settings, n=300):
    """Warm up, then ``n`` measured cycles against ``server`` (a ServiceHandle)."""
    async with Storm(server.url, ws_tokens, ws_settings, resources=server.resources) as storm:
        await storm.cycles(50)  # first-use allocations are not a leak
        result = await storm.cycles(n, concurrency=10)
    print(result.describe())
    result.assert_errors(max=0)
    return result


async def test_reconnect_churn_leaves_nothing_behind(ws_service_factory, ws_tokens, ws_settings):
    server = ws_service_factory(ServiceSpec("reference-process", command=REFERENCE, auth=True))
    result = await cycles_against(server, ws_tokens, ws_settings)
    result.assert_server_growth(fds=10, sockets=10, threads=5)


async def test_a_leak_per_connection_is_caught(ws_service_factory, ws_tokens, ws_settings):
    leaky = [*REFERENCE, "--fault", "leak_connections"]  # keeps one fd per closed connection
    server = ws_service_factory(ServiceSpec("leaky-reference", command=leaky, auth=True))
    result = await cycles_against(server, ws_tokens, ws_settings)
    with pytest.raises(StormThresholdError, match=r"server fds growth per 1,000 cycles = \+1000"):
        result.assert_server_growth(fds=10)
