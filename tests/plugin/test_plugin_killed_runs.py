"""Nothing outlives a SIGKILLed pytest run: the ``--ws-server-cmd`` server and the
``--ws-app-subprocess`` uvicorn die with it (their parent-death signal); what that
signal cannot reach (a grandchild a shell left running) is reaped by the next run from
the dead run's state directory, and the next run passes. Real pytest runs killed with
SIGKILL, real servers on loopback; every wait bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pytest_ws_resilience.servers.run_state import OWNER_FILE, RUN_DIR_PREFIX

pytestmark = pytest.mark.websocket_integration

#: Bound of every wait here: a start under load, a death, a reap.
_WAIT_S = 60.0

HANGING_TEST = """
import os, time

def test_hangs(ws_server):
    with open({url_file!r} + ".tmp", "w") as fh:
        fh.write(ws_server.url)
    os.replace({url_file!r} + ".tmp", {url_file!r})
    deadline = time.monotonic() + 120   # bounded: the outer test kills it first
    while time.monotonic() < deadline:
        time.sleep(0.05)
"""

NEXT_TEST = """
import pytest

@pytest.mark.asyncio
async def test_next(ws_client):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
"""

# A raw ASGI app (no framework): accepts every WebSocket and answers pings.
RAW_APP = """
import json

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if json.loads(message.get("text") or "{}").get("type") == "ping":
            await send({"type": "websocket.send", "text": json.dumps({"type": "pong"})})
"""


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = _WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout:g} s"
        time.sleep(0.05)


def inner_env(pytester: pytest.Pytester) -> dict[str, str]:
    """The inner run is a top-level run, whatever this suite runs under, with a temp
    directory of its own: the runs of other tests (which reap dead runs' state
    directories too) never see the killed run's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "WS_"))}
    temp = pytester.path / "tmp"
    temp.mkdir(exist_ok=True)
    env.update(PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(temp))
    return env


def killed_run(pytester: pytest.Pytester, *args: str) -> tuple[int, int]:
    """Run ``pytest ARGS test_hang.py`` until its test holds the server, SIGKILL it (the
    pytest process only, as a CI runner or an IDE does); the server's port and the
    killed pytest's pid."""
    url_file = pytester.path / "url.txt"
    pytester.makepyfile(test_hang=HANGING_TEST.format(url_file=str(url_file)))
    command = [sys.executable, "-m", "pytest", "-p", "ws_resilience", *args, "test_hang.py"]
    victim = subprocess.Popen(
        command,
        cwd=pytester.path,
        env=inner_env(pytester),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: url_file.exists() or victim.poll() is not None, "the server came up")
        assert victim.poll() is None, "the run ended before its server was up"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=_WAIT_S)
    port = urlsplit(url_file.read_text()).port
    assert port is not None
    return port, victim.pid


def next_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_next=NEXT_TEST)
    command = [sys.executable, "-m", "pytest", "-p", "ws_resilience", *args, "test_next.py"]
    completed = subprocess.run(
        command,
        cwd=pytester.path,
        env=inner_env(pytester),
        capture_output=True,
        text=True,
        timeout=_WAIT_S * 2,
    )
    result = pytest.RunResult(
        completed.returncode, completed.stdout.splitlines(), completed.stderr.splitlines(), 0.0
    )
    result.assert_outcomes(passed=1)
    return result


def run_dirs_of(pytester: pytest.Pytester, owner_pid: int) -> list[Path]:
    """The state directories a run whose owner was ``owner_pid`` left."""
    found = []
    for directory in (pytester.path / "tmp").glob(f"{RUN_DIR_PREFIX}*"):
        try:
            owner = json.loads((directory / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if owner.get("owner_pid") == owner_pid:
            found.append(directory)
    return found


@pytest.fixture
def project(ws_pytester: pytest.Pytester) -> pytest.Pytester:
    ws_pytester.makepyfile(app=RAW_APP)
    return ws_pytester


def test_a_killed_runs_server_command_dies_with_it_and_the_next_run_passes(
    project: pytest.Pytester,
) -> None:
    server = f"{sys.executable} -m pytest_ws_resilience.testing --port {{port}}"
    port, pid = killed_run(project, f"--ws-server-cmd={server}")
    wait_until(lambda: not listening(port), f"the killed run's server on port {port} stopped")
    assert run_dirs_of(project, pid), "the killed run left no state directory: nothing to check"
    next_run(project, f"--ws-server-cmd={server}")
    assert not listening(port)
    assert run_dirs_of(project, pid) == []  # the next run removed the dead run's state directory


def test_a_killed_runs_app_subprocess_dies_with_it_and_the_next_run_passes(
    project: pytest.Pytester,
) -> None:
    args = ("--ws-app=app:app", "--ws-app-subprocess")
    port, _ = killed_run(project, *args)
    wait_until(lambda: not listening(port), f"the killed run's uvicorn on port {port} stopped")
    next_run(project, *args)


def test_what_the_death_signal_misses_is_reaped_by_the_next_run(
    project: pytest.Pytester,
) -> None:
    # The shell dies with pytest; the server it started in the background does not.
    server = f"{sys.executable} -m pytest_ws_resilience.testing --port {{port}}"
    shell = f"sh -c '{server} & wait'"
    port, _ = killed_run(project, f"--ws-server-cmd={shell}")
    assert listening(port), "the background server died with the shell: nothing to reap"
    result = next_run(project, f"--ws-server-cmd={shell}")
    assert not listening(port)
    result.stdout.fnmatch_lines(["ws-resilience: reaped * state director* of dead runs: run *pid*"])
