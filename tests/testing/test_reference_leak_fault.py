"""The reference server's ``leak_connections`` fault: every closed connection leaves
one file descriptor behind (and memory), counted in this process's own fd table;
a stopped server gives them back; the CLI takes the fault by name."""

from __future__ import annotations

import asyncio
import os

import pytest
from websockets.asyncio.client import connect

from pytest_ws_resilience.testing.__main__ import build_parser, config_from_args
from pytest_ws_resilience.testing.faults import FAULTS, LEAK_CONNECTIONS
from pytest_ws_resilience.testing.server import ReferenceServer
from pytest_ws_resilience.testing.server_config import ServerConfig

CONNECTIONS = 12


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def cycle(server: ReferenceServer, n: int) -> None:
    for _ in range(n):
        async with connect(server.url) as ws:
            await ws.recv()  # the greeting: the handler ran
    async with asyncio.timeout(5):  # until the last handler's cleanup ran
        while server.stats.active_connections:  # noqa: ASYNC110 (no event to await)
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc")
async def test_each_closed_connection_keeps_one_fd_until_the_server_stops() -> None:
    config = ServerConfig(require_auth=False, faults=frozenset({LEAK_CONNECTIONS}))
    server = await ReferenceServer(config).start()
    try:
        await cycle(server, 1)  # warm up: whatever the first connection opens for good
        before = open_fds()
        await cycle(server, CONNECTIONS)
        assert open_fds() - before == CONNECTIONS
    finally:
        await server.stop(2.0)
    assert open_fds() < before


@pytest.mark.asyncio
async def test_without_the_fault_closed_connections_keep_nothing() -> None:
    server = await ReferenceServer(ServerConfig(require_auth=False)).start()
    try:
        await cycle(server, 1)
        before = open_fds()
        await cycle(server, CONNECTIONS)
        assert open_fds() == before
    finally:
        await server.stop(2.0)


def test_the_cli_takes_the_fault_by_name() -> None:
    args = build_parser().parse_args(["--no-auth", "--fault", "leak_connections"])
    assert config_from_args(args, environ={}).faults == frozenset({LEAK_CONNECTIONS})
    assert LEAK_CONNECTIONS in FAULTS
