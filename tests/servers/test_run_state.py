"""Children that die with their parent (`process_backend.spawn`), and the run's state
directory (`run_state`): creation by racing processes, process records, reaping by
process group. Real processes throughout; every wait bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_ws_resilience.servers.process_backend import spawn
from pytest_ws_resilience.servers.run_state import (
    OWNER_FILE,
    PROCESSES_DIR,
    ensure_state_dir,
    forget_process,
    process_identity,
    reap_processes,
    record_process,
    running_as,
)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)
_WAIT_S = 30.0
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {_WAIT_S:g} s"
        time.sleep(0.02)


@linux_only
def test_a_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pytest_ws_resilience.servers.process_backend import spawn\n"
            f"child = spawn({SLEEPER!r})\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        identity = process_identity(child_pid)
        assert running_as(child_pid, identity)
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
    wait_until(lambda: not running_as(child_pid, identity), "the orphan died")


@linux_only
def test_a_child_spawned_from_a_short_lived_thread_outlives_the_thread() -> None:
    # The death signal follows the forking *thread*: spawn forks on a long-lived one.
    children: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=lambda: children.append(spawn(SLEEPER)))
    thread.start()
    thread.join(_WAIT_S)
    child = children[0]
    try:
        time.sleep(0.3)  # the moment a signal tied to the dead thread would have come
        assert child.poll() is None, f"the child died with its thread: {child.returncode}"
    finally:
        child.kill()
        child.wait(10)


def test_racing_processes_create_one_complete_state_directory(tmp_path: Path) -> None:
    target = tmp_path / "ws-resilience-run-abc"
    errors: list[BaseException] = []

    def create() -> None:
        try:
            ensure_state_dir(target, owner_pid=os.getpid())
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_WAIT_S)
    assert errors == []
    owner = json.loads((target / OWNER_FILE).read_text())
    assert owner["owner_pid"] == os.getpid()
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no staging left


def test_a_recorded_process_group_is_reaped_and_a_stopped_one_forgotten(tmp_path: Path) -> None:
    leader = subprocess.Popen(SLEEPER, start_new_session=True)
    stopped = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        record_process(tmp_path, leader.pid, what="service 'api'", owner_pid=os.getpid())
        record_process(tmp_path, stopped.pid, what="service 'db'", owner_pid=os.getpid())
        stopped.kill()
        stopped.wait(10)
        forget_process(tmp_path, stopped.pid)
        # Spawned by this live process: not an orphan, so the end-of-run sweep keeps it.
        assert reap_processes(tmp_path, timeout=5.0, orphans_only=True) == []
        assert leader.poll() is None
        assert reap_processes(tmp_path, timeout=5.0) == [f"pid {leader.pid} (service 'api')"]
        assert leader.wait(10) == -signal.SIGTERM
        assert list((tmp_path / PROCESSES_DIR).iterdir()) == []
    finally:
        for process in (leader, stopped):
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_a_record_whose_pid_now_names_another_process_is_not_signalled(tmp_path: Path) -> None:
    other = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        path = record_process(tmp_path, other.pid, what="service 'api'", owner_pid=os.getpid())
        record = json.loads(path.read_text())
        record["identity"] = "1"  # started at boot: not this process
        path.write_text(json.dumps(record))
        assert reap_processes(tmp_path, timeout=1.0) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(10)
