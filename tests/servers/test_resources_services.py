"""``resources()`` of what the plugin starts as a process: a local-process service (the
reference server with and without ``leak_connections``, measured over real cycles) and
an ASGI app served by uvicorn in a subprocess."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_apps.support import reference_spec

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.errors import ServerResourcesUnavailableError
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.servers.asgi_process import AsgiAppProcess
from pytest_ws_resilience.servers.handle import ServiceHandle

pytestmark = pytest.mark.websocket_integration

CYCLES = 100


def reference_service(*faults: str) -> tuple[ServiceHandle, TokenFactory]:
    spec, tokens = reference_spec("growth", auth=True)
    assert spec.command is not None and not isinstance(spec.command, str)
    command = [*spec.command, *(f"--fault={name}" for name in faults)]
    return ServiceHandle(dataclasses.replace(spec, command=command), token_factory=tokens), tokens


@pytest.fixture
def leaky() -> Iterator[tuple[ServiceHandle, TokenFactory]]:
    handle, tokens = reference_service("leak_connections")
    with handle:
        yield handle, tokens


@pytest.mark.asyncio
async def test_cycles_against_a_leaking_service_measure_one_fd_per_cycle(
    leaky: tuple[ServiceHandle, TokenFactory],
) -> None:
    handle, tokens = leaky
    async with Storm(handle.url, tokens, resources=handle.resources) as storm:
        result = await storm.cycles(CYCLES, concurrency=5)
    result.assert_errors(max=0)
    growth = result.server_growth
    assert growth is not None, result.server_growth_note
    assert growth.change("fds") == CYCLES  # one devnull descriptor kept per closed connection
    assert growth.per_thousand("fds") == 1000
    assert growth.change("sockets") == 0  # the sockets themselves were closed
    # 64 KiB kept per connection: at least that much resident memory more.
    assert (growth.change("rss_mib") or 0) >= CYCLES * 64 / 1024
    assert growth.after.source == f"process tree of pid {handle.pid}"


@pytest.mark.asyncio
async def test_cycles_against_the_clean_service_leave_no_fd_behind() -> None:
    handle, tokens = reference_service()
    with handle:
        async with Storm(handle.url, tokens, resources=handle.resources) as storm:
            result = await storm.cycles(CYCLES, concurrency=5)
            elsewhere = await storm.cycles(2, url="ws://127.0.0.1:9/")
    result.assert_errors(max=0)
    result.assert_server_growth(fds=0, sockets=0)
    assert elsewhere.server_growth is None
    assert elsewhere.server_growth_note == (
        "url= ws://127.0.0.1:9/ is not the server whose resources are known"
    )


def test_a_service_that_is_not_running_says_so() -> None:
    handle, _ = reference_service()
    with pytest.raises(ServerResourcesUnavailableError, match=r"^service 'growth' is not running"):
        handle.resources()


ACCEPTING_APP = """
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
"""


def test_an_app_in_a_subprocess_is_sampled_until_it_stops(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="the asgi extra is part of .[dev]")
    (tmp_path / "growthapp.py").write_text(textwrap.dedent(ACCEPTING_APP))
    app = AsgiAppProcess(AppPath("growthapp", "app"), app_dirs=[str(tmp_path)], lifespan="off")
    with app.start(timeout=30):
        sample = app.resources()
        assert sample.source == f"process tree of pid {app.pid}"
        assert sample.fds is not None and sample.sockets is not None and sample.sockets >= 1
    with pytest.raises(ServerResourcesUnavailableError, match=r"growthapp:app.* is not running"):
        app.resources()
