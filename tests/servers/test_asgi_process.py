"""`AsgiAppProcess`: ``python -m uvicorn`` in a real subprocess, waited for by the one
readiness rule; its port is read from uvicorn's output."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.errors import AsgiAppStartupError
from pytest_ws_resilience.servers.asgi_process import AsgiAppProcess, parse_listening_port

#: A raw ASGI app module: the WebSocket path answers 404, or the lifespan raises when
#: PROC_APP_FAIL is set.
APP_MODULE = """
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup" and os.environ.get("PROC_APP_FAIL"):
                raise RuntimeError("database unreachable at startup")
            kind = message["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no such endpoint"})
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "procapp.py").write_text(textwrap.dedent(APP_MODULE))
    return tmp_path


def test_the_listening_port_is_read_from_uvicorns_output():
    text = (
        "INFO:     Started server process [7]\n"
        "INFO:     Uvicorn running on http://127.0.0.1:43117 (Press CTRL+C to quit)\n"
    )
    assert parse_listening_port(text) == 43117
    assert parse_listening_port("INFO:     Waiting for application startup.") is None


def test_an_endpoint_answering_404_fails_at_once_naming_url_and_status(app_dir):
    server = AsgiAppProcess(AppPath("procapp", "app"), path="/nope", app_dirs=[str(app_dir)])
    with pytest.raises(AsgiAppStartupError) as info:
        server.start(timeout=30)
    first = str(info.value).splitlines()[0]
    assert first.startswith("ASGI app procapp:app (subprocess) at ws://127.0.0.1:")
    assert "/nope answered HTTP 404 to the WebSocket handshake: wrong path?" in first
    assert "its log (trimmed):" in str(info.value)
    # uvicorn's own line, logged before the 404 goes out (websockets' "connection
    # rejected" line comes after it, and a stopped process may never write it).
    assert '"WebSocket /nope" 404' in str(info.value)
    assert not server.running and server.exit_reason() == "was stopped"


def test_a_process_that_exits_fails_at_once_with_its_output(app_dir, monkeypatch):
    monkeypatch.setenv("PROC_APP_FAIL", "1")
    server = AsgiAppProcess(AppPath("procapp", "app"), app_dirs=[str(app_dir)])
    began = time.monotonic()
    with pytest.raises(AsgiAppStartupError) as info:
        server.start(timeout=30)
    assert time.monotonic() - began < 20
    message = str(info.value)
    assert message.startswith("ASGI app procapp:app (subprocess) exited with code ")
    assert "before serving; its output (trimmed):" in message
    assert "database unreachable at startup" in message
