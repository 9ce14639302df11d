"""``ws-resilience-load``, the multi-machine command line, run on loopback: a master
with local workers (``--workers``), and a master with a worker started apart
(``--master`` / ``--worker --master-host``) as on two machines. The reference server
runs in its own process; the secret reaches everyone through the environment."""

from __future__ import annotations

import secrets
import selectors
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from locust_processes import LOCUST_GROUP, left_behind

pytestmark = [pytest.mark.websocket_integration, LOCUST_GROUP]

#: Bound on any one command of these tests.
COMMAND_TIMEOUT_S = 180
SCENARIO = """
from pytest_ws_resilience.load.scenario import Scenario

PING = Scenario("ping").connect().send({"type": "ping"}).expect(type="pong").close()
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_ws_resilience.locust.cli", *args]


def run_cli(cwd: Path, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> CompletedProcess[str]:
    """``ws-resilience-load ARGS`` in ``cwd``, to its end (bounded), output captured."""
    return subprocess.run(
        _cli(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = secrets.token_urlsafe(32)
    monkeypatch.setenv("WS_RESILIENCE_SECRET", secret)
    return secret


@pytest.fixture
def server_url(secret_env: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_ws_resilience.testing"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=30), "the reference server did not start in 30 s"
        line = proc.stdout.readline().strip()
        assert " listening on " in line, line
        yield line.rsplit(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "load_scenarios.py").write_text(SCENARIO)
    return tmp_path


def _free_port() -> int:
    """A free loopback port (closed again at once, for the master to bind)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_one_command_leads_a_run_with_local_workers(server_url, project):
    done = run_cli(
        project,
        "--workers",
        "2",
        "--scenario",
        "load_scenarios:PING",
        "--url",
        server_url,
        "--users",
        "30",
        "--spawn-rate",
        "30",
        "--run-time",
        "60",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "users: 30/30 finished, 30 passed every step" in done.stdout
    assert done.stdout.count("connects (") == 2
    assert left_behind() == []


def test_a_master_and_a_worker_started_apart_play_the_run(server_url, project):
    port = _free_port()
    # The worker writes to a file: a pipe nobody reads would block it once full.
    worker_log = project / "worker.log"
    with worker_log.open("w") as log:
        worker = subprocess.Popen(
            _cli("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        done = run_cli(
            project,
            "--master",
            "--bind-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--expect-workers",
            "1",
            "--scenario",
            "load_scenarios:PING",
            "--url",
            server_url,
            "--users",
            "20",
            "--spawn-rate",
            "20",
            "--run-time",
            "60",
            "--startup-timeout",
            "60",
        )
        worker.wait(timeout=30)  # a worker ends with its master
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=5)
    assert done.returncode == 0, done.stdout + done.stderr + worker_log.read_text()
    assert "users: 20/20 finished, 20 passed every step" in done.stdout
    assert "20 connects (100% of 20)" in done.stdout
    assert left_behind() == []


def test_a_bad_command_line_is_one_line_and_status_2(project):
    done = run_cli(
        project,
        "--workers",
        "2",
        "--scenario",
        "nowhere:PING",
        "--url",
        "ws://127.0.0.1:1/",
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ws-resilience-load: error: --scenario nowhere:PING: cannot import nowhere: "
        "No module named 'nowhere'"
    ]


def test_a_user_whose_connection_drops_replays_with_backoff(project, secret_env):
    """Nothing listens: every play is refused; each user replays twice (after the
    settings' backoff), and every attempt is a failed connect event of kind refused."""
    port = _free_port()  # closed again: connections to it are refused
    (project / "pyproject.toml").write_text(
        "[tool.ws_resilience]\nbackoff_base = 0.05\nbackoff_cap = 0.1\n"
    )
    done = run_cli(
        project,
        "--workers",
        "1",
        "--scenario",
        "load_scenarios:PING",
        "--url",
        f"ws://127.0.0.1:{port}/",
        "--users",
        "3",
        "--spawn-rate",
        "3",
        "--reconnects",
        "2",
        "--run-time",
        "60",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "errors: refused=9" in done.stdout
    assert "users: 3/3 finished, 0 passed every step" in done.stdout
    assert left_behind() == []
