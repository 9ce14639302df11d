"""Specs of the test services, shared by the process and Docker service tests."""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.errors import WsTimeoutError
from pytest_ws_resilience.redaction import register_secret
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.images import HOST_IMAGE, host_python_mounts

LATE_SERVER = str(Path(__file__).with_name("late_server.py").resolve())
_LISTENING_RE = re.compile(r"^ws-listening (\d+\.\d+)$", re.MULTILINE)


def late_spec(
    name: str, mode: str, seconds: float = 0.0, *, image: bool = False, **options: Any
) -> ServiceSpec:
    """A `late_server.py` service, as a local process or in the host image."""
    command = [sys.executable, LATE_SERVER, "{port}", mode, str(seconds)]
    if image:
        return ServiceSpec(
            name, image=HOST_IMAGE, command=command, mounts=host_python_mounts(), **options
        )
    return ServiceSpec(name, command=command, **options)


def ws_listening_at(logs: str) -> float:
    """The monotonic time the late server printed when its WebSocket endpoint opened."""
    match = _LISTENING_RE.search(logs)
    assert match is not None, f"no ws-listening line in:\n{logs}"
    return float(match.group(1))


def reference_spec(
    name: str, *, image: bool = False, **options: Any
) -> tuple[ServiceSpec, TokenFactory]:
    """The reference server (auth on, a fresh secret) and the token factory for it."""
    secret = secrets.token_urlsafe(32)
    register_secret(secret)
    command = [
        sys.executable,
        "-m",
        "pytest_ws_resilience.testing",
        "--port={port}",
        f"--secret={secret}",
    ]
    if image:
        spec = ServiceSpec(
            name, image=HOST_IMAGE, command=command, mounts=host_python_mounts(), **options
        )
    else:
        spec = ServiceSpec(name, command=command, **options)
    return spec, TokenFactory(secret)


@asynccontextmanager
async def connected_client(handle: ServiceHandle, tokens: TokenFactory) -> AsyncIterator[WsClient]:
    """A connected client of a fresh user on the service, with short timeouts (so a
    paused service shows quickly), closed on exit."""
    ws = WsClient(
        handle.url,
        user=tokens.user(),
        recv_timeout=0.5,
        connect_timeout=2.0,
        close_timeout=0.5,
        ping_interval=None,
    )
    await ws.connect()
    try:
        yield ws
    finally:
        await ws.close()


async def round_trip(ws: WsClient) -> None:
    """One ping/pong application round trip through the reference server."""
    await ws.send_json({"type": "ping", "n": 1})
    await ws.expect(type="pong", timeout=5.0)


async def check_pause_stalls_pings(handle: ServiceHandle, client: WsClient) -> None:
    """Pausing the service makes the client's ping time out; unpausing recovers it."""
    await client.ping()
    await handle.pause()
    try:
        with pytest.raises(WsTimeoutError):
            await client.ping()
    finally:
        await handle.unpause()
    assert await client.ping() > 0
