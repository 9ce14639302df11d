"""Services in Docker: a server started for the tests, healthy by a real handshake,
and container chaos (pause, restart) on a private copy of it.

The service here is the reference server run in a container with no image to pull: an
empty local image (``HOST_IMAGE``, imported on demand) with this host's Python mounted
read-only, on the host network. Your own services are one table each in pyproject.toml
(``[tool.ws_resilience.services.NAME]``, see docs/services.md) or a `ServiceSpec` like
this one.

Without a Docker daemon these tests are skipped with the reason; with
``--ws-require-services`` (or ``WS_REQUIRE_SERVICES=1``, as CI sets) they fail instead.
"""

import asyncio
import sys

import pytest

from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.errors import WsTimeoutError
from pytest_ws_resilience.servers.images import HOST_IMAGE, host_python_mounts

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="session")
def ws_service_specs():
    """Services defined in code (they join the pyproject tables)."""
    return [
        ServiceSpec(
            "reference",
            image=HOST_IMAGE,
            command=[sys.executable, "-m", "pytest_ws_resilience.testing", "--port", "{port}"],
            mounts=host_python_mounts(),
            auth=True,  # healthy = an authenticated handshake (the run's token is accepted)
            ping=True,  # ... and one ping round trip
            startup_timeout=30,
        )
    ]


@pytest.mark.ws_services("reference")
async def test_agent_run_against_the_service(ws_services, ws_client_factory):
    server = ws_services["reference"]  # started once, shared by every test and worker
    client = await ws_client_factory(url=server.url)
    await client.send_json({"type": "user_message", "text": "hello from a container"})
    await client.expect(type="agent_completed")


@pytest.mark.reconnection
async def test_client_recovers_from_a_frozen_and_a_restarted_server(
    ws_service_factory, ws_chaos, ws_client_factory
):
    server = ws_service_factory("reference")  # a private container: chaos is allowed
    proxy = await ws_chaos(upstream_url=server.url)  # the client's URL never changes
    client = await ws_client_factory(url=proxy.url, recv_timeout=1.0)

    await server.pause()  # the process is frozen: the socket stays open, nobody answers
    with pytest.raises(WsTimeoutError):
        await client.ping()
    await server.unpause()
    await client.ping()

    await server.restart()  # returns once the server is healthy again
    async with asyncio.timeout(5):
        await client.reconnect()
    await client.send_json({"type": "ping"})
    await client.expect(type="pong")
