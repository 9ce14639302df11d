"""The services' pytest glue on the real Docker engine: a service in a container
healthy by handshake, one container for two xdist workers removed once, a SIGKILLed
run's container reaped by the next run, a private container for chaos.

The containers run the reference server from an empty local image with this host's
Python bind-mounted read-only (``ensure_host_image``, ``host_python_mounts``), on the
host network: no registry, loopback only. Each test names its service uniquely, so
containers are counted by the ``ws_resilience.service`` label.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.config.validation import REQUIRE_ENV_VAR
from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
from pytest_ws_resilience.servers.images import HOST_IMAGE, ensure_host_image, host_python_mounts
from pytest_ws_resilience.servers.labels import LABEL_SERVICE
from pytest_ws_resilience.servers.reaper import list_containers

# One worker runs these one after the other: a run's session start reaps dead runs'
# containers, and must not take the one the SIGKILL test leaves for its next run.
pytestmark = [pytest.mark.websocket_integration, pytest.mark.xdist_group("ws-docker-services")]

PYTEST_TABLE = """
[tool.pytest.ini_options]
asyncio_mode = "strict"
asyncio_default_fixture_loop_scope = "function"
asyncio_default_test_loop_scope = "function"
"""
REFERENCE_CMD = [sys.executable, "-m", "pytest_ws_resilience.testing", "--port", "{port}"]
_WAIT_S = 60.0


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    """The engine; these tests skip without one, unless services are required (CI)."""
    reason = docker_unavailable_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV_VAR, "").lower() in ("1", "true", "yes", "on"):
            pytest.fail(f"{REQUIRE_ENV_VAR} is set but {reason}", pytrace=False)
        pytest.skip(reason)
    client = docker_client()
    ensure_host_image(client)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _inner_runs_decide_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV_VAR, raising=False)
    monkeypatch.delenv("WS_ENV", raising=False)


@pytest.fixture
def service_name() -> str:
    return f"ref-{uuid.uuid4().hex[:10]}"


def containers_of(docker: Any, service: str) -> list[Any]:
    # Tolerant of a container removed while listed (a run stopping or reaping it).
    return list_containers(docker, {"label": f"{LABEL_SERVICE}={service}"})


def docker_project(pytester: pytest.Pytester, service: str) -> None:
    """A project whose pyproject defines ``service``: the reference server in the host
    image, healthy after an authenticated handshake and a ping."""
    mounts = ", ".join(
        f"{json.dumps(k)} = {json.dumps(v)}" for k, v in host_python_mounts().items()
    )
    pytester.makepyprojecttoml(
        PYTEST_TABLE
        + f"""
[tool.ws_resilience.services.{service}]
image = "{HOST_IMAGE}"
command = {json.dumps(REFERENCE_CMD)}
mounts = {{ {mounts} }}
auth = true
ping = true
startup_timeout = 30
"""
    )


ROUND_TRIP_TESTS = """
import os
import pytest

SERVICE = {service!r}
SEEN = {seen!r}

@pytest.mark.ws_services(SERVICE)
@pytest.mark.parametrize("n", range({count}))
@pytest.mark.asyncio
async def test_round_trip(n, ws_services, ws_client_factory):
    handle = ws_services[SERVICE]
    assert handle.backend == "docker" and handle.url.startswith("ws://127.0.0.1:")
    with open(SEEN, "a") as fh:
        fh.write(f"{{os.environ.get('PYTEST_XDIST_WORKER', 'main')}} {{handle.container_id}}\\n")
    client = await ws_client_factory(url=handle.url)   # authenticated with the run's key
    await client.send_json({{"type": "ping"}})
    await client.expect(type="pong")
"""


def test_a_docker_service_is_healthy_and_removed_at_the_end(
    docker: Any, pytester: pytest.Pytester, service_name: str, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    docker_project(pytester, service_name)
    pytester.makepyfile(ROUND_TRIP_TESTS.format(service=service_name, seen=str(seen), count=2))
    result = pytester.runpytest_subprocess("-p", "ws_resilience", "-rs")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"*{service_name}: started docker container * ({HOST_IMAGE}) at ws://127.0.0.1:*,"
            " ready in *"
        ]
    )
    assert len({line.split()[1] for line in seen.read_text().splitlines()}) == 1
    assert containers_of(docker, service_name) == []


def test_under_two_workers_one_container_serves_both_and_is_removed_once(
    docker: Any, pytester: pytest.Pytester, service_name: str, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    seen = tmp_path / "seen.txt"
    docker_project(pytester, service_name)
    pytester.makepyfile(ROUND_TRIP_TESTS.format(service=service_name, seen=str(seen), count=8))
    since = int(time.time()) - 1
    result = pytester.runpytest_subprocess("-p", "ws_resilience", "-n", "2")
    result.assert_outcomes(passed=8)
    rows = [line.split() for line in seen.read_text().splitlines()]
    assert {worker for worker, _ in rows} == {"gw0", "gw1"}
    assert len({container for _, container in rows}) == 1
    result.stdout.fnmatch_lines(
        ["ws-resilience services: removed 1 service(s) of run * at the end"]
    )
    assert containers_of(docker, service_name) == []
    # The engine's own record: the service's containers created and destroyed, once each.
    events = docker.events(
        since=since,
        until=int(time.time()) + 1,
        filters={"label": f"{LABEL_SERVICE}={service_name}", "type": "container"},
        decode=True,
    )
    actions = [event["Action"] for event in events]
    assert actions.count("create") == 1, actions
    assert actions.count("destroy") == 1, actions


def test_a_killed_runs_container_is_reaped_by_the_next_run(
    docker: Any, pytester: pytest.Pytester, service_name: str, tmp_path: Path
) -> None:
    docker_project(pytester, service_name)
    release = tmp_path / "release"
    pytester.makepyfile(
        test_hang=f"""
        import os, time
        import pytest

        @pytest.mark.ws_services({service_name!r})
        def test_hangs():
            deadline = time.monotonic() + 120   # bounded: the outer test kills it first
            while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:
                time.sleep(0.05)
        """,
        test_next="def test_next():\n    pass\n",
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-p", "ws_resilience", "test_hang.py"]
    victim = subprocess.Popen(
        command, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + _WAIT_S
        while not [c for c in containers_of(docker, service_name) if c.status == "running"]:
            assert victim.poll() is None, "the run ended before its container was up"
            assert time.monotonic() < deadline, "the container never came up"
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    leftover = containers_of(docker, service_name)
    assert len(leftover) == 1  # no teardown ran: the container outlived its run
    result = pytester.runpytest_subprocess("-p", "ws_resilience", "test_next.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"ws-resilience services: reaped 1 leftover container(s) of dead runs: {leftover[0].name}"]
    )
    assert containers_of(docker, service_name) == []
    # The next run also removed the killed run's state directory (its lock file).
    assert not list(
        Path(tempfile.gettempdir()).glob(f"ws-resilience-run-*/*-{service_name}.json.lock")
    )


KILLED_XDIST_TESTS = """
import os, time
import pytest

@pytest.mark.ws_services({service!r})
@pytest.mark.xdist_group("{group}")
def test_holds_{group}(ws_services):
    with open(os.path.join({marks!r}, os.environ["PYTEST_XDIST_WORKER"]), "w") as fh:
        fh.write(str(os.getpid()))
    deadline = time.monotonic() + 120   # bounded: the outer test kills the run first
    while time.monotonic() < deadline:
        time.sleep(0.05)
"""

# The services defined in code: each worker reaps on its first start, both at once.
NEXT_XDIST_CONFTEST = """
import pytest
from pytest_ws_resilience import ServiceSpec

@pytest.fixture(scope="session")
def ws_service_specs():
    return [ServiceSpec({service!r}, image={image!r}, command={command!r},
                        mounts={mounts!r}, auth=True, startup_timeout=30)]
"""

NEXT_XDIST_TEST = """
import pytest

@pytest.mark.xdist_group("{group}")
@pytest.mark.asyncio
async def test_next_{group}(ws_services, ws_client_factory):
    client = await ws_client_factory(url=ws_services[{service!r}].url)
    await client.send_json({{"type": "ping"}})
    await client.expect(type="pong")
"""


def test_a_killed_two_worker_runs_container_is_reaped_and_the_next_two_worker_run_passes(
    docker: Any, pytester: pytest.Pytester, service_name: str, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    docker_project(pytester, service_name)
    marks = tmp_path / "workers"
    marks.mkdir()
    for group in ("one", "two"):
        pytester.makepyfile(
            **{
                f"test_hang_{group}": KILLED_XDIST_TESTS.format(
                    service=service_name, group=group, marks=str(marks)
                )
            }
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-m", "pytest", "-p", "ws_resilience", "-n", "2"]
    command += ["--dist", "loadgroup", "test_hang_one.py", "test_hang_two.py"]
    victim = subprocess.Popen(
        command, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + _WAIT_S
        while len(list(marks.iterdir())) < 2:
            assert victim.poll() is None, "the run ended before both workers held the service"
            assert time.monotonic() < deadline, "the workers never both held the service"
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)  # the controller only, as a CI runner does
        victim.wait(timeout=10)
    assert [c for c in containers_of(docker, service_name) if c.status == "running"]
    worker_pids = [int(path.read_text()) for path in marks.iterdir()]
    deadline = time.monotonic() + _WAIT_S
    while any(_alive(pid) for pid in worker_pids):
        assert time.monotonic() < deadline, "the killed run's workers outlived it"
        time.sleep(0.05)

    # The next run: two workers, the service defined in code, so both reap at their
    # first start, concurrently (this is where Docker answered 409 to one of them).
    pytester.makepyprojecttoml(PYTEST_TABLE)
    pytester.makeconftest(
        NEXT_XDIST_CONFTEST.format(
            service=service_name,
            image=HOST_IMAGE,
            command=REFERENCE_CMD,
            mounts=host_python_mounts(),
        )
    )
    for group in ("one", "two"):
        pytester.makepyfile(
            **{f"test_next_{group}": NEXT_XDIST_TEST.format(service=service_name, group=group)}
        )
    result = pytester.runpytest_subprocess(
        "-p",
        "ws_resilience",
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "-rs",
        "test_next_one.py",
        "test_next_two.py",
        timeout=_WAIT_S * 3,
    )
    result.assert_outcomes(passed=2)
    deadline = time.monotonic() + _WAIT_S
    while containers_of(docker, service_name):
        assert time.monotonic() < deadline, "a container outlived both runs"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def test_a_private_container_for_chaos_is_removed_at_teardown(
    docker: Any, pytester: pytest.Pytester, service_name: str
) -> None:
    docker_project(pytester, service_name)
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_ws_resilience.servers.labels import LABEL_SERVICE

        @pytest.mark.asyncio
        async def test_chaos(ws_service_factory, ws_client_factory):
            private = ws_service_factory({service_name!r})
            assert not private.shared and private.container_id
            client = await ws_client_factory(url=private.url)
            await private.pause()
            await private.unpause()
            await private.restart()
            await client.reconnect()
            await client.send_json({{"type": "ping"}})
            await client.expect(type="pong")

        def test_after(ws_services):
            import docker
            client = docker.from_env()
            label = f"{{LABEL_SERVICE}}={service_name}"
            assert client.containers.list(all=True, filters={{"label": label}}) == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "ws_resilience")
    result.assert_outcomes(passed=2)
    assert containers_of(docker, service_name) == []
