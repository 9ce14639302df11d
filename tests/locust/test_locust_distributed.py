"""``ws_storm.distributed`` as users run it (pytester, ``-p ws_resilience``): a Locust
master and local worker processes against the embedded server, statistics from every
worker, isolation failures carrying the report, bounded, no process left behind.

Sizes stay small (2 workers x 50 users): the 3,000-connection run is
``benchmarks/distributed_load.py``.
"""

from __future__ import annotations

import json

import pytest
from locust_processes import LOCUST_GROUP, left_behind

pytestmark = [pytest.mark.websocket_integration, LOCUST_GROUP]

#: The outer test's bound on an inner run (each distributed run bounds itself too).
INNER_TIMEOUT_S = 240

PING = """
import psutil
import pytest
from pytest_ws_resilience.load.scenario import Scenario

PING = Scenario("ping").connect().send({"type": "ping"}).expect(type="pong").close()

def _locust_children():
    return [p for p in psutil.Process().children(recursive=True)
            if "locust" in " ".join(p.cmdline())]

@pytest.mark.asyncio
async def test_distributed(ws_storm):
    result = await ws_storm.distributed(PING, users=100, spawn_rate=100, workers=2, run_time=60)
    print(result.describe())
    result.assert_errors(max=0)
    assert len(result.connect_ms) == 100
    assert len(result.round_trip_ms) == 100
    assert sorted(s.connects for s in result.workers.values()) == [50, 50]
    assert result.users_finished == 100
    assert _locust_children() == []
"""

LEAK = """
import pytest
from pytest_ws_resilience.load.scenario import Scenario

CHAT = (
    Scenario("chat")
    .connect()
    .send({"type": "user_message", "text": "hello from a user"})
    .expect(type="agent_completed")
    .hold(0.5)
    .close()
)

@pytest.mark.asyncio
async def test_leak_distributed(ws_server, ws_storm):
    with ws_server.faults("leak"):
        result = await ws_storm.distributed(CHAT, users=20, spawn_rate=20, workers=2, run_time=60)
    result.assert_errors(max=0)

@pytest.mark.asyncio
async def test_leak_in_process(ws_server, ws_storm, ws_isolation):
    with ws_server.faults("leak"):
        await ws_storm.run(CHAT, users=20, spawn_rate=20)
"""


def test_a_distributed_run_counts_every_workers_connections(ws_pytester, tmp_path):
    ws_pytester.makepyfile(test_ping=PING)
    report = tmp_path / "report.json"
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", "-s", f"--ws-report={report}", timeout=INNER_TIMEOUT_S
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*users: 100/100 finished*", "*worker *: 50 connects (50% of 100)*"]
    )
    text = report.read_text()
    assert "distributed ping users=100 workers=2" in text
    document = json.loads(text)
    assert '"workers"' in json.dumps(document)
    assert left_behind() == []


def test_a_leak_fails_the_distributed_run_with_the_isolation_report_as_in_process(ws_pytester):
    ws_pytester.makepyfile(test_leak=LEAK)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", timeout=INNER_TIMEOUT_S)
    result.assert_outcomes(failed=2)  # the same verdict from both runners
    result.stdout.fnmatch_lines(
        [
            "*_ test_leak_distributed _*",
            "*StormThresholdError*",
            "*isolation=*",
            "*isolation violation*data of one user reached another*",
            "*received a frame holding user-*'s id marker*",
            "*_ test_leak_in_process _*",
            "*isolation violation*data of one user reached another*",
        ]
    )
    assert left_behind() == []


BAD_INPUT = """
import pytest
from pytest_ws_resilience.load.scenario import Scenario

def make(index):
    return {"type": "ping", "n": index}

LOCAL = Scenario("local").connect().send(lambda index: {"type": "ping"}).expect(type="pong")
PING = Scenario("ping").connect().send(make).expect(type="pong")

@pytest.mark.asyncio
async def test_a_lambda_cannot_travel(ws_storm):
    with pytest.raises(ValueError) as caught:
        await ws_storm.distributed(LOCAL, users=2)
    print("LINE:", caught.value)
    assert "\\n" not in str(caught.value)

@pytest.mark.asyncio
async def test_no_users(ws_storm):
    with pytest.raises(ValueError, match="users") as caught:
        await ws_storm.distributed(PING, users=0)
    assert "\\n" not in str(caught.value)
"""


def test_bad_input_is_one_line_before_any_process_starts(ws_pytester):
    ws_pytester.makepyfile(test_bad=BAD_INPUT)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "-s", timeout=120)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*LINE: *does not pickle*lambda*"])
    assert left_behind() == []


REMOTE = """
import pytest
from pytest_ws_resilience.load.scenario import Scenario

PING = Scenario("ping").connect().send({"type": "ping"}).expect(type="pong").close()

@pytest.mark.asyncio
async def test_remote(ws_storm):
    for users in (20, 12):  # two runs on one long-lived master
        result = await ws_storm.distributed(PING, users=users, workers=1, run_time=60)
        print(result.describe())
        result.assert_errors(max=0)
        assert [s.connects for s in result.workers.values()] == [users]
        assert result.users_finished == users
"""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_with_ws_locust_master_runs_play_on_a_master_and_workers_started_apart(
    ws_pytester, monkeypatch
):
    """As on three machines: a master serving runs (``ws-resilience-load --master
    --web-port``) and a worker (``--worker``) are started by hand; the test attaches
    to the master's web UI. The worker finds the key through the profile's variable."""
    import secrets
    import subprocess
    import sys

    monkeypatch.setenv("LOAD_TEST_SECRET", secrets.token_urlsafe(32))
    ws_pytester.makepyprojecttoml('[tool.ws_resilience]\njwt_secret_env = "LOAD_TEST_SECRET"\n')
    ws_pytester.makepyfile(test_remote=REMOTE)
    port, web_port = _free_port(), _free_port()
    cli = [sys.executable, "-m", "pytest_ws_resilience.locust.cli"]
    started = [
        subprocess.Popen(
            [*cli, "--master", "--port", str(port), "--web-port", str(web_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                *cli,
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
                "--project-dir",
                str(ws_pytester.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        result = ws_pytester.runpytest_subprocess(
            "-p",
            "ws_resilience",
            "-s",
            f"--ws-locust-master=127.0.0.1:{web_port}",
            timeout=INNER_TIMEOUT_S,
        )
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*users: 20/20 finished*", "*users: 12/12 finished*"])
    assert left_behind() == []


NO_WORKER = """
import pytest
from pytest_ws_resilience.errors import LocustRunError
from pytest_ws_resilience.load.scenario import Scenario

PING = Scenario("ping").connect().send({"type": "ping"}).expect(type="pong").close()

@pytest.mark.asyncio
async def test_no_worker_comes(ws_storm):
    with pytest.raises(LocustRunError) as caught:
        await ws_storm.distributed(PING, users=5, workers=1, run_time=5, startup_timeout=2)
    print("ERROR:", caught.value)
"""


def test_a_master_that_never_answers_ends_the_run_within_its_bound(ws_pytester):
    """``--ws-locust-master`` naming an address where no master listens: the run gives
    up after ``startup_timeout`` and says what it saw."""
    ws_pytester.makepyfile(test_no_worker=NO_WORKER)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", "-s", f"--ws-locust-master=127.0.0.1:{_free_port()}", timeout=120
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR: the Locust master at http://127.0.0.1:* was not ready within "
            "startup_timeout=2s: URLError*"
        ]
    )
    assert left_behind() == []


CONTRACT = """
import pytest
from pytest_ws_resilience import AGENT_EVENTS
from pytest_ws_resilience.load.scenario import Scenario

AGENT = (
    Scenario("agent")
    .connect()
    .send({"type": "user_message", "text": "hi"})
    .expect_contract(AGENT_EVENTS)
    .close()
)

@pytest.mark.asyncio
async def test_contract(ws_server, ws_storm):
    with ws_server.faults("drop_event"):
        result = await ws_storm.distributed(AGENT, users=6, workers=2, run_time=60)
    assert result.errors["contract"] == 6
    print("EXAMPLE:", result.error_examples["contract"])
"""


def test_a_broken_event_contract_is_an_error_of_kind_contract(ws_pytester):
    ws_pytester.makepyfile(test_contract=CONTRACT)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "-s", timeout=INNER_TIMEOUT_S)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*EXAMPLE: [[]contract] contract:AGENT_EVENTS: contract AGENT_EVENTS*", "*(missing)*"]
    )
    assert left_behind() == []
