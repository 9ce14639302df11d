"""A run leaves nothing in the temp directory: its state directory (service logs,
process records, locks) is removed at its end by its owner, and the state directories
of dead runs (owner gone) are reaped at the next start, with what they left running.
Each inner run gets a temp directory of its own (``TMPDIR``), so the checks see only it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_ws_resilience.servers.run_state import (
    OWNER_FILE,
    RUN_DIR_PREFIX,
    process_identity,
    record_process,
)

pytestmark = pytest.mark.websocket_integration

_RUN_BOUND_S = 120.0

PING_TEST = """
import pytest

@pytest.mark.asyncio
async def test_ping(ws_client):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
"""


def run_in(project: Path, temp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "WS_"))}
    env.update(TMPDIR=str(temp), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-p", "ws_resilience", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=_RUN_BOUND_S,
    )


@pytest.fixture
def temp(tmp_path: Path) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def test_a_server_command_run_leaves_no_log_and_no_state_directory(
    ws_pytester: pytest.Pytester, temp: Path
) -> None:
    ws_pytester.makepyfile(test_ping=PING_TEST)
    server = f"{sys.executable} -m pytest_ws_resilience.testing --port {{port}}"
    # One process (no xdist workers), also where pytest-xdist is not installed.
    serial = ("-n", "0") if importlib.util.find_spec("xdist") else ()
    completed = run_in(ws_pytester.path, temp, f"--ws-server-cmd={server}", *serial)
    assert completed.returncode == 0, completed.stdout
    assert sorted(p.name for p in temp.iterdir()) == []


def test_a_failed_start_says_what_the_log_said_and_leaves_no_file(
    ws_pytester: pytest.Pytester, temp: Path
) -> None:
    # The failure message carries the log's digest: the file is not needed afterwards.
    ws_pytester.makepyfile(test_ping=PING_TEST)
    server = (
        f"{sys.executable} -c \"print('cannot bind: no such thing'); raise SystemExit(3)\" {{port}}"
    )
    completed = run_in(ws_pytester.path, temp, f"--ws-server-cmd={server}")
    assert completed.returncode != 0
    assert "cannot bind: no such thing" in completed.stdout
    assert sorted(p.name for p in temp.iterdir()) == []


def _dead_pid_and_identity() -> tuple[int, str]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = process_identity(child.pid)
    assert identity is not None, "no /proc: process identities cannot be read here"
    child.kill()
    child.wait(10)
    return child.pid, identity


def _fake_run_dir(temp: Path, run_id: str, *, owner_pid: int, identity: str | None) -> Path:
    directory = temp / f"{RUN_DIR_PREFIX}{run_id}"
    directory.mkdir()
    owner = {"owner_pid": owner_pid, "owner_identity": identity, "host": os.uname().nodename}
    (directory / OWNER_FILE).write_text(json.dumps(owner))
    return directory


def test_the_next_run_reaps_dead_runs_directories_and_what_they_left_running(
    ws_pytester: pytest.Pytester, temp: Path
) -> None:
    ws_pytester.makepyfile(test_ping=PING_TEST)
    dead_pid, dead_identity = _dead_pid_and_identity()
    dead = _fake_run_dir(temp, "deadrun", owner_pid=dead_pid, identity=dead_identity)
    # What the dead run left: a server in its own process group, recorded.
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    record_process(dead, orphan.pid, what="service 'api'", owner_pid=dead_pid)
    live = _fake_run_dir(
        temp, "liverun", owner_pid=os.getpid(), identity=process_identity(os.getpid())
    )
    try:
        completed = run_in(ws_pytester.path, temp)
        assert completed.returncode == 0, completed.stdout
        assert orphan.wait(30) == -signal.SIGTERM
        assert not dead.exists()
        assert live.is_dir()  # its owner (this process) is alive
        line = next(x for x in completed.stdout.splitlines() if "state director" in x)
        assert line == (
            "ws-resilience: reaped 1 state directory(ies) of dead runs: run deadrun "
            f"(pid {orphan.pid} (service 'api'))"
        )
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(10)


def test_a_directory_whose_owner_pid_was_reused_is_reaped(
    ws_pytester: pytest.Pytester, temp: Path
) -> None:
    # The pid is alive (this process) but its start time is not the recorded one.
    ws_pytester.makepyfile(test_ping=PING_TEST)
    reused = _fake_run_dir(temp, "reusedpid", owner_pid=os.getpid(), identity="1")
    completed = run_in(ws_pytester.path, temp)
    assert completed.returncode == 0, completed.stdout
    assert not reused.exists()


def test_a_directory_without_owner_is_kept_while_young_and_reaped_once_old(
    ws_pytester: pytest.Pytester, temp: Path
) -> None:
    ws_pytester.makepyfile(test_ping=PING_TEST)
    young = temp / f"{RUN_DIR_PREFIX}young"
    old = temp / f"{RUN_DIR_PREFIX}old"
    for directory in (young, old):
        directory.mkdir()
        (directory / "ws-services-x-api.json.lock").write_text("")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    completed = run_in(ws_pytester.path, temp)
    assert completed.returncode == 0, completed.stdout
    assert young.is_dir() and not old.exists()
