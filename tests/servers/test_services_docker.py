"""Services in real Docker containers (the machine's daemon, host network, no registry):
readiness by a real handshake, fast failure with logs, reaping of dead runs' containers,
reuse, sharing, and container chaos with real clients.

Every container is labelled with a run id made for this module; the module's teardown
removes whatever is left of it (bounded), and the last test checks nothing is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from service_apps.support import (
    check_pause_stalls_pings,
    connected_client,
    late_spec,
    reference_spec,
    round_trip,
    ws_listening_at,
)

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.errors import (
    ServiceExitedError,
    ServiceNotReadyError,
    WsConnectionClosedError,
    WsTimeoutError,
)
from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.images import HOST_IMAGE, ensure_host_image, host_python_mounts
from pytest_ws_resilience.servers.labels import (
    LABEL_PID,
    LABEL_RUN,
    container_labels,
    current_owner_pid,
    new_run_id,
)
from pytest_ws_resilience.servers.reaper import (
    gone_already,
    labelled_containers,
    reap_leftovers,
    remove_run,
)
from pytest_ws_resilience.servers.sharing import SharedServices

STOP_S = 5.0
RECONNECT_BOUND_S = 5.0
RUN_ID = new_run_id()


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    """The real engine, the host image built, and this module's containers removed at
    the end. No daemon is a failure here, not a skip: these tests exist to use it."""
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.fail(reason)
    client = docker_client()
    ensure_host_image(client)
    try:
        yield client
    finally:
        remove_run(client, RUN_ID, timeout=STOP_S)
        client.close()


@pytest.fixture
def started(docker: Any) -> Iterator[list[ServiceHandle]]:
    handles: list[ServiceHandle] = []
    yield handles
    for handle in handles:
        handle.discard(STOP_S)


def _handle(spec: Any, docker: Any, *, run_id: str = RUN_ID, **options: Any) -> ServiceHandle:
    return ServiceHandle(spec, run_id=run_id, docker=docker, **options)


def _run_containers(docker: Any) -> list[Any]:
    return labelled_containers(docker, run=RUN_ID)


@pytest.fixture
def reference(docker: Any, started: list[ServiceHandle]) -> tuple[ServiceHandle, TokenFactory]:
    spec, tokens = reference_spec(
        "ref-docker", image=True, auth=True, ping=True, startup_timeout=30
    )
    handle = _handle(spec, docker, token_factory=tokens)
    started.append(handle)
    handle.start()
    return handle, tokens


@pytest_asyncio.fixture(loop_scope="function")
async def client(reference: tuple[ServiceHandle, TokenFactory]) -> AsyncIterator[WsClient]:
    async with connected_client(*reference) as ws:
        yield ws


def test_the_host_image_is_built_locally_once(docker: Any) -> None:
    first = ensure_host_image(docker)
    assert ensure_host_image(docker) == first
    assert docker.images.get(HOST_IMAGE).attrs["Size"] == 0  # empty: all comes from mounts


def test_the_mounts_lend_the_host_python_read_only() -> None:
    mounts = host_python_mounts()
    assert all(host == inside for host, inside in mounts.items())  # same paths inside
    venv = os.path.realpath(sys.prefix)  # the venv may sit inside the project (tox)
    assert any(venv == p or venv.startswith(p + "/") for p in mounts)
    assert any(os.path.realpath(sys.executable).startswith(p + "/") for p in mounts)


@pytest.mark.asyncio
async def test_the_reference_server_in_a_container_is_healthy_by_handshake_and_serves_a_client(
    docker: Any, reference: tuple[ServiceHandle, TokenFactory], client: WsClient
) -> None:
    handle, _ = reference
    assert handle.backend == "docker" and handle.container_id is not None
    container = docker.containers.get(handle.container_id)
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert container.attrs["HostConfig"]["AutoRemove"] is False
    assert all(m["RW"] is False for m in container.attrs["Mounts"])
    labels = container.labels
    assert labels[LABEL_RUN] == RUN_ID and labels[LABEL_PID] == str(current_owner_pid())
    readiness = handle.readiness
    assert readiness is not None
    assert list(readiness.ready_at) == ["alive", "upgrade", "auth", "ping"]
    await round_trip(client)
    assert "listening on ws://127.0.0.1" in handle.logs()


def test_a_late_websocket_endpoint_in_a_container_is_ready_only_after_it_listens(
    docker: Any, started: list[ServiceHandle]
) -> None:
    spec = late_spec(
        "late-docker",
        "silent-then-ws",
        0.8,
        image=True,
        startup_timeout=30,
        attempt_timeout=0.2,
    )
    handle = _handle(spec, docker)
    started.append(handle)
    handle.start()
    assert handle.readiness is not None
    assert handle.readiness.ready_at["upgrade"] >= ws_listening_at(handle.logs())
    assert "no answer" in handle.readiness.last_error


def test_a_container_whose_port_never_upgrades_is_not_ready_and_is_removed(
    docker: Any, started: list[ServiceHandle]
) -> None:
    spec = late_spec(
        "silent-docker", "silent", image=True, startup_timeout=2.0, attempt_timeout=0.3
    )
    handle = _handle(spec, docker)
    started.append(handle)
    with pytest.raises(ServiceNotReadyError) as info:
        handle.start()
    assert "last error: no answer after" in str(info.value).splitlines()[0]
    assert "late_server mode=silent" in str(info.value)
    assert not [
        c for c in _run_containers(docker) if c.labels["ws_resilience.service"] == "silent-docker"
    ]


def test_a_container_that_exits_fails_fast_with_its_logs(
    docker: Any, started: list[ServiceHandle]
) -> None:
    spec = late_spec("crash-docker", "exit", 0.1, image=True, startup_timeout=60)
    handle = _handle(spec, docker)
    started.append(handle)
    began = time.monotonic()
    with pytest.raises(ServiceExitedError) as info:
        handle.start()
    assert time.monotonic() - began < spec.startup_timeout / 4
    message = str(info.value)
    assert message.splitlines()[0].startswith(
        "service 'crash-docker' container exited with status 3"
    )
    assert "fatal: cannot open the database (on purpose)" in message
    # Removed after its logs were read; the logs stay on the handle.
    assert "startup log line 39" in handle.logs()
    assert not [
        c for c in _run_containers(docker) if c.labels["ws_resilience.service"] == "crash-docker"
    ]


def _sleeper(docker: Any, *, owner: int, run_id: str, name: str) -> Any:
    return docker.containers.run(
        HOST_IMAGE,
        command=[sys.executable, "-c", "import time; time.sleep(600)"],
        volumes={p: {"bind": p, "mode": "ro"} for p in host_python_mounts()},
        network_mode="host",
        labels=container_labels(run_id=run_id, service=name, spec_hash="x", port=1, pid=owner),
        name=f"ws-resilience-{name}-{run_id}",
        detach=True,
    )


def test_a_dead_owners_container_is_reaped_and_a_live_owners_is_not(docker: Any) -> None:
    owners = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)
    ]
    dead_run, live_run = new_run_id(), new_run_id()
    try:
        service = f"orphan-{dead_run[:8]}"
        dead = _sleeper(docker, owner=owners[0].pid, run_id=dead_run, name=service)
        live = _sleeper(docker, owner=owners[1].pid, run_id=live_run, name=service)
        owners[0].send_signal(signal.SIGKILL)
        owners[0].wait(5)
        # Narrowed to this test's containers: other runs' leftovers on this machine are
        # the business of their own tests.
        removed = reap_leftovers(docker, current_run=RUN_ID, only={"service": service})
        assert removed == [dead.name]
        remaining = {c.name for c in labelled_containers(docker)}
        assert dead.name not in remaining and live.name in remaining
    finally:
        for owner in owners:
            owner.kill()
            owner.wait(5)
        remove_run(docker, dead_run, timeout=0)
        remove_run(docker, live_run, timeout=0)


def test_reapers_racing_for_the_same_dead_run_all_succeed(docker: Any) -> None:
    # The next run's controller and workers reap at once: one removes a container,
    # the others get 409 "removal ... already in progress" or 404; none may fail.
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    owner.wait(5)
    dead_run = new_run_id()
    service = f"raced-{dead_run[:8]}"
    try:
        names = {
            _sleeper(docker, owner=owner.pid, run_id=dead_run, name=f"{service}-{n}").name
            for n in range(3)
        }
        reapers = 6
        barrier = threading.Barrier(reapers, timeout=30)
        removed: list[list[str]] = []
        errors: list[BaseException] = []

        def reap() -> None:
            client = docker_client()
            try:
                barrier.wait()  # all start at once: they list the same containers
                removed.append(reap_leftovers(client, current_run=RUN_ID, only={"run": dead_run}))
            except BaseException as err:
                errors.append(err)
            finally:
                client.close()

        threads = [threading.Thread(target=reap) for _ in range(reapers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert len(removed) == reapers
        # Each container counted once at most; all of them gone.
        assert set().union(*map(set, removed)) <= names
        assert labelled_containers(docker, run=dead_run) == []
    finally:
        remove_run(docker, dead_run, timeout=0)


def test_a_removal_already_done_or_in_progress_elsewhere_counts_as_gone() -> None:
    import docker.errors

    in_progress = docker.errors.APIError(
        "409 Client Error for http+docker://localhost/v1.43/containers/abc?force=True: "
        'Conflict ("removal of container abc is already in progress")'
    )
    missing = docker.errors.NotFound(
        "404 Client Error for http+docker://localhost/v1.43/containers/abc?force=True: "
        'Not Found ("No such container: abc")'
    )
    other_conflict = docker.errors.APIError(
        "409 Client Error for http+docker://localhost/v1.43/containers/abc: "
        'Conflict ("You cannot remove a running container")'
    )
    refused = docker.errors.APIError('500 Server Error: Internal Server Error ("disk full")')
    assert gone_already(in_progress) and gone_already(missing)
    assert not gone_already(other_conflict) and not gone_already(refused)


def test_remove_run_removes_every_container_of_the_run(docker: Any) -> None:
    run = new_run_id()
    try:
        for n in range(2):
            _sleeper(docker, owner=os.getpid(), run_id=run, name=f"sweep{n}")
        assert len(labelled_containers(docker, run=run)) == 2
    finally:
        assert remove_run(docker, run, timeout=0) == 2
    assert labelled_containers(docker, run=run) == []


def test_a_reusable_container_is_adopted_and_kept(docker: Any) -> None:
    spec, _ = reference_spec("ref-reuse", image=True, reuse=True, health="tcp")
    first = _handle(spec, docker)
    second = _handle(spec, docker)
    try:
        first.start()
        first.stop(STOP_S)  # kept for the next run
        second.start()
        assert second.adopted and not second.owned
        assert second.container_id == first.container_id
        assert second.port == first.port
        second.stop(STOP_S)
        assert docker.containers.get(first.container_id).status == "running"
    finally:
        first.discard(STOP_S)


def test_two_sharers_get_one_container_removed_once(docker: Any, tmp_path: Path) -> None:
    spec = late_spec("shared-docker", "ws", image=True, startup_timeout=30)
    run = new_run_id()
    workers = [SharedServices(tmp_path, run, docker=docker) for _ in range(2)]
    try:
        handles = [
            w.acquire(spec, lambda: _handle(spec, docker, run_id=run).start()) for w in workers
        ]
        assert handles[0].container_id == handles[1].container_id
        assert all(h.shared for h in handles)
        for h in handles:
            h.stop(STOP_S)  # workers never remove a shared service
        assert len(labelled_containers(docker, run=run)) == 1
    finally:
        assert workers[0].remove_all(timeout=STOP_S) == 1
    assert labelled_containers(docker, run=run) == []


@pytest.mark.asyncio
async def test_pause_times_out_a_ping_unpause_recovers_restart_lets_reconnect(
    reference: tuple[ServiceHandle, TokenFactory], client: WsClient
) -> None:
    handle, _ = reference
    await check_pause_stalls_pings(handle, client)

    port = handle.port
    began = time.monotonic()
    await handle.restart(timeout=1.0)
    await client.reconnect()
    took = time.monotonic() - began
    assert took < RECONNECT_BOUND_S, f"restart + reconnect took {took:.2f} s"
    assert handle.port == port
    await round_trip(client)


@pytest.mark.asyncio
async def test_kill_breaks_the_connection_and_restart_brings_it_back(
    reference: tuple[ServiceHandle, TokenFactory], client: WsClient
) -> None:
    handle, _ = reference
    await handle.kill()
    with pytest.raises((WsConnectionClosedError, WsTimeoutError)):
        await round_trip(client)
    await handle.restart()
    await client.reconnect()
    await round_trip(client)


_PROBE = textwrap.dedent(
    """
    from pytest_ws_resilience.servers.engine import docker_unavailable_reason
    print(docker_unavailable_reason(timeout=1.0))
    """
)


def test_an_unreachable_daemon_gives_a_one_line_reason(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nowhere.sock"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"Docker is not available (DOCKER_HOST=unix://{tmp_path}/nowhere.sock: no such socket)\n"
    )
    assert "Traceback" not in done.stderr


def test_an_unanswering_daemon_gives_a_one_line_reason() -> None:
    # A TCP port that accepts but never answers: the probe gives up after its timeout.
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        began = time.monotonic()
        reason = docker_unavailable_reason(timeout=0.5, base_url=f"tcp://127.0.0.1:{port}")
    assert reason is not None and "\n" not in reason
    assert reason.startswith(f"Docker is not available (base_url=tcp://127.0.0.1:{port}: ")
    assert time.monotonic() - began < 10


def test_zz_nothing_of_this_module_is_left(docker: Any) -> None:
    leftovers = [c.name for c in _run_containers(docker)]
    assert leftovers == []
