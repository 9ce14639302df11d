"""The local-process backend, end to end: the reference server run as a service, real
clients with real tokens through it, chaos by signals, sharing between processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from service_apps.support import (
    check_pause_stalls_pings,
    connected_client,
    reference_spec,
    round_trip,
)

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.errors import ServiceChaosError, WsConnectionClosedError, WsTimeoutError
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.labels import new_run_id
from pytest_ws_resilience.servers.process_backend import process_alive
from pytest_ws_resilience.servers.sharing import SharedServices

STOP_S = 5.0
#: The issue's bar for a restarted service: a client reconnects within this.
RECONNECT_BOUND_S = 5.0


@pytest.fixture
def reference() -> Iterator[tuple[ServiceHandle, TokenFactory]]:
    spec, tokens = reference_spec("ref-proc", auth=True, ping=True, startup_timeout=30)
    handle = ServiceHandle(spec, token_factory=tokens)
    try:
        handle.start()
        yield handle, tokens
    finally:
        handle.stop(STOP_S)


@pytest_asyncio.fixture(loop_scope="function")
async def client(reference: tuple[ServiceHandle, TokenFactory]) -> AsyncIterator[WsClient]:
    async with connected_client(*reference) as ws:
        yield ws


def test_the_service_runs_the_command_with_its_port_filled(
    reference: tuple[ServiceHandle, TokenFactory],
) -> None:
    handle, _ = reference
    assert handle.backend == "process"
    assert handle.url == f"ws://127.0.0.1:{handle.port}/"
    assert handle.pid is not None and process_alive(handle.pid)
    assert handle.container_id is None
    assert f"listening on ws://127.0.0.1:{handle.port}/" in handle.logs()
    assert "--secret" not in repr(handle)


@pytest.mark.asyncio
async def test_a_real_client_round_trips_through_the_service(client: WsClient) -> None:
    await round_trip(client)
    assert client.metrics.auth_method is not None


@pytest.mark.asyncio
async def test_pause_times_out_a_ping_and_unpause_recovers_it(
    reference: tuple[ServiceHandle, TokenFactory], client: WsClient
) -> None:
    handle, _ = reference
    await check_pause_stalls_pings(handle, client)
    await round_trip(client)


@pytest.mark.asyncio
async def test_kill_then_restart_lets_the_client_reconnect_on_the_same_port(
    reference: tuple[ServiceHandle, TokenFactory], client: WsClient
) -> None:
    handle, _ = reference
    port, old_pid = handle.port, handle.pid
    await handle.kill()
    with pytest.raises((WsConnectionClosedError, WsTimeoutError)):
        await round_trip(client)
    began = time.monotonic()
    readiness = await handle.restart()
    await client.reconnect()
    took = time.monotonic() - began
    assert took < RECONNECT_BOUND_S, f"restart + reconnect took {took:.2f} s"
    assert handle.port == port and handle.pid != old_pid
    assert readiness.ready_at["ping"] <= (readiness.ready or 0)
    await round_trip(client)


@pytest.mark.asyncio
async def test_restart_of_a_paused_process_is_bounded(
    reference: tuple[ServiceHandle, TokenFactory], client: WsClient
) -> None:
    handle, _ = reference
    await handle.pause()
    await handle.restart(timeout=1.0)
    await client.reconnect()
    await round_trip(client)


def test_stop_is_bounded_and_keeps_the_log() -> None:
    # A process that ignores SIGTERM: stop must SIGKILL it after the grace.
    code = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('stubborn up', flush=True); time.sleep(600)"
    )
    spec = ServiceSpec(
        "stubborn", command=[sys.executable, "-c", code], health="tcp", startup_timeout=0.5
    )
    handle = ServiceHandle(spec)
    with pytest.raises(Exception, match="not ready"):
        handle.start()  # nothing listens: the failed start stops it (with SIGKILL)
    assert handle.pid is not None and not process_alive(handle.pid)
    assert "stubborn up" in handle.logs()


def test_chaos_on_a_shared_handle_is_refused() -> None:
    spec = ServiceSpec("shared", command="true {port}")
    handle = ServiceHandle.attach(spec, port=1234, pid=os.getpid())
    assert handle.shared
    handle.stop()  # a shared handle never stops anything: this process lives on
    with pytest.raises(ServiceChaosError, match="container chaos needs a function-scoped"):
        import asyncio

        asyncio.run(handle.pause())


_WORKER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from pytest_ws_resilience.config.services import ServiceSpec
    from pytest_ws_resilience.servers.sharing import SharedServices
    from pytest_ws_resilience.servers.handle import ServiceHandle
    state_dir, run_id, secret = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = ServiceSpec("shared-ref", command=[sys.executable, "-m",
        "pytest_ws_resilience.testing", "--port={port}", "--no-auth"], startup_timeout=30)
    shared = SharedServices(Path(state_dir), run_id)
    handle = shared.acquire(spec, lambda: ServiceHandle(spec).start())
    handle.stop()  # a worker's stop must not stop the shared service
    print(json.dumps({"url": handle.url, "pid": handle.pid, "shared": handle.shared,
                      "started_here": bool(shared.owned_records())}))
    """
)


def test_two_processes_share_one_service_started_once(tmp_path: Path) -> None:
    run_id = new_run_id()
    env = {k: v for k, v in os.environ.items() if k != "WS_RESILIENCE_SECRET"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path), run_id, "x"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(3)
    ]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
        outputs.append(json.loads(out))
    shared = SharedServices(tmp_path, run_id)
    try:
        assert len({o["url"] for o in outputs}) == 1
        assert sum(o["started_here"] for o in outputs) == 1
        assert all(o["shared"] for o in outputs)
        records = shared.all_records()
        assert len(records) == 1
        pid = records[0].pid
        assert pid is not None and process_alive(pid)  # survived every worker's stop()
    finally:
        removed = shared.remove_all(timeout=STOP_S)
    assert removed == 1
    assert not process_alive(pid)
    assert shared.all_records() == []


def test_a_recorded_service_that_died_is_started_again(tmp_path: Path) -> None:
    spec = ServiceSpec(
        "again",
        command=[
            sys.executable,
            "-m",
            "pytest_ws_resilience.testing",
            "--port={port}",
            "--no-auth",
        ],
        startup_timeout=30,
    )
    first = SharedServices(tmp_path, "run-again")
    started: list[ServiceHandle] = []
    try:
        handle = first.acquire(spec, lambda: ServiceHandle(spec).start())
        started.append(handle)
        assert handle.pid is not None
        os.kill(handle.pid, 9)
        assert handle._process_backend is not None
        handle._process_backend.process.wait(5)  # type: ignore[union-attr]
        second = SharedServices(tmp_path, "run-again")
        again = second.acquire(spec, lambda: ServiceHandle(spec).start())
        started.append(again)
        assert again.pid != handle.pid and again.pid is not None and process_alive(again.pid)
        assert len(second.all_records()) == 2
    finally:
        first.remove_all(timeout=STOP_S)
        # remove_all reaps by pid, as the controller does; the Popen objects this test
        # holds learn it only when asked (else each warns "still running" when freed).
        for started_handle in started:
            if (backend := started_handle._process_backend) and backend.process is not None:
                backend.process.wait(STOP_S)
