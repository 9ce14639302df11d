"""``ServiceHandle.resources()`` of a real container (the machine's daemon, the host
image, host network): the Docker stats API and the container's process read from this
host; the reference server with ``leak_connections`` in a container is caught by
``assert_server_growth``. No daemon is a failure here, not a skip."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from service_apps.support import reference_spec

from pytest_ws_resilience.errors import ServerResourcesUnavailableError, StormThresholdError
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.images import ensure_host_image
from pytest_ws_resilience.servers.labels import new_run_id
from pytest_ws_resilience.servers.reaper import remove_run

pytestmark = pytest.mark.websocket_integration

STOP_S = 5.0
RUN_ID = new_run_id()
CYCLES = 100


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.fail(reason)
    client = docker_client()
    ensure_host_image(client)
    try:
        yield client
    finally:
        remove_run(client, RUN_ID, timeout=STOP_S)
        client.close()


@pytest.mark.asyncio
async def test_a_leaking_container_is_caught_by_its_growth(docker: Any) -> None:
    spec, tokens = reference_spec("growth-docker", image=True, auth=True, startup_timeout=30)
    assert spec.command is not None and not isinstance(spec.command, str)
    leaky = dataclasses.replace(spec, command=[*spec.command, "--fault=leak_connections"])
    handle = ServiceHandle(leaky, run_id=RUN_ID, docker=docker, token_factory=tokens).start()
    try:
        sample = handle.resources()
        assert handle.container_id is not None
        assert sample.source.startswith(f"container {handle.container_id[:12]} (host pid ")
        assert sample.container_memory_bytes and sample.container_pids
        async with Storm(handle.url, tokens, resources=handle.resources) as storm:
            result = await storm.cycles(CYCLES, concurrency=5)
        result.assert_errors(max=0)
        with pytest.raises(StormThresholdError) as caught:
            result.assert_server_growth(fds=50)
        assert "server fds growth per 1,000 cycles = +1000.0 > max 50" in str(caught.value)
    finally:
        handle.discard(STOP_S)
    with pytest.raises(ServerResourcesUnavailableError, match=r"'growth-docker' is not running"):
        handle.resources()
