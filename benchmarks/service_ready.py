"""How soon a containerised WebSocket server is usable: our `ServiceHandle` vs
testcontainers-python, and how late we notice readiness. Measured in one run.

Usage: ``python benchmarks/service_ready.py [--rounds N]``

The same container both ways: the reference server (auth on) in the locally built host
image (`ensure_host_image` + `host_python_mounts`), on the host network, a fixed port.

1. Time to the first successful authenticated round trip (connect with a real token,
   send ``ping``, get ``pong``), from the start call:
   a. ``ServiceHandle.start()`` (health: authenticated handshake + ping), then one round
      trip;
   b. testcontainers' ``DockerContainer`` with the wait strategy its docs recommend
      for a server that logs when it listens (``LogMessageWaitStrategy``, default
      polling), then round trips retried until one succeeds (what its users end up
      writing: "not ready right after start, had to add a sleep").
   Interleaved a/b/a/b..., so the machine's noise hits both; medians and their ratio.
2. The gap between "the server can answer an authenticated handshake" (an independent
   probe thread connecting every ~2 ms from the moment of the start call) and "we report
   ready" (``start()`` returns): p50 and max; target <= 100 ms.

Needs a Docker daemon; testcontainers' Ryuk reaper is disabled (it would pull an image).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable

from websockets.sync.client import connect

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.redaction import register_secret
from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.images import HOST_IMAGE, ensure_host_image, host_python_mounts
from pytest_ws_resilience.servers.labels import new_run_id
from pytest_ws_resilience.servers.ports import free_loopback_port
from pytest_ws_resilience.servers.reaper import remove_run

__all__ = ["main"]

GAP_TARGET_S = 0.1
PROBE_SPACING_S = 0.002
#: Bound of one bring-up (either way); far above what it takes.
BRING_UP_BOUND_S = 60.0
LISTENING_LINE = "ws-resilience-server listening on"


def _command(port: int, secret: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest_ws_resilience.testing",
        f"--port={port}",
        f"--secret={secret}",
    ]


def _round_trip(url: str, token: str, timeout: float = 1.0) -> None:
    """One authenticated connect + ping/pong; raises on any failure."""
    with connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=timeout,
        close_timeout=timeout,
        proxy=None,
    ) as ws:
        ws.recv(timeout)  # connection_established
        ws.send('{"type": "ping"}')
        while '"pong"' not in str(ws.recv(timeout)):
            pass


def _round_trip_retrying(url: str, token: str, deadline: float) -> None:
    while True:
        try:
            _round_trip(url, token)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class _Probe:
    """A thread connecting every ~2 ms until an authenticated handshake succeeds."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.first_ok: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + BRING_UP_BOUND_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    open_timeout=0.5,
                    close_timeout=0.5,
                    proxy=None,
                ):
                    self.first_ok = time.monotonic()
                    return
            except Exception:
                time.sleep(PROBE_SPACING_S)

    def join(self) -> None:
        self._stop.set()
        self._thread.join(BRING_UP_BOUND_S)


def bring_up_ours(
    client: object, run_id: str, secret: str, tokens: TokenFactory
) -> tuple[float, float]:
    """Seconds to the first round trip, and the ready-minus-could-answer gap."""
    port = free_loopback_port()
    spec = ServiceSpec(
        "bench-ref",
        image=HOST_IMAGE,
        command=_command(port, secret),
        port=port,
        mounts=host_python_mounts(),
        auth=True,
        ping=True,
        startup_timeout=BRING_UP_BOUND_S,
    )
    token = tokens.user().token
    handle = ServiceHandle(spec, run_id=run_id, docker=client, token_factory=tokens)
    probe = _Probe(handle_url(port), token)
    began = time.monotonic()
    probe.start()
    try:
        handle.start()
        ready = time.monotonic()
        _round_trip(handle.url, token)
        first_trip = time.monotonic() - began
    finally:
        probe.join()
        handle.stop(timeout=2)
    if probe.first_ok is None:
        raise RuntimeError("the independent probe never connected")
    return first_trip, ready - probe.first_ok


def handle_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/"


def bring_up_testcontainers(secret: str, tokens: TokenFactory) -> float:
    # Read by testcontainers at import: its Ryuk reaper would need a registry pull.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_loopback_port()
    token = tokens.user().token
    container = DockerContainer(HOST_IMAGE).with_command(_command(port, secret))
    container = container.with_kwargs(network_mode="host")
    for path in host_python_mounts():
        container = container.with_volume_mapping(path, path, mode="ro")
    container = container.waiting_for(
        LogMessageWaitStrategy(LISTENING_LINE).with_startup_timeout(int(BRING_UP_BOUND_S))
    )
    began = time.monotonic()
    container.start()
    try:
        _round_trip_retrying(handle_url(port), token, began + BRING_UP_BOUND_S)
        return time.monotonic() - began
    finally:
        container.stop()


def _pct(values: list[float], q: float) -> float:
    from pytest_ws_resilience.stats import percentile

    return percentile(sorted(values), q)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    reason = docker_unavailable_reason()
    if reason is not None:
        print(f"service_ready: {reason}", file=sys.stderr)
        return 2
    client = docker_client()
    ensure_host_image(client)
    secret = secrets.token_urlsafe(32)
    register_secret(secret)
    tokens = TokenFactory(secret)
    run_id = new_run_id()
    ours: list[float] = []
    gaps: list[float] = []
    theirs: list[float] = []
    steps: list[tuple[str, Callable[[], None]]] = []

    def run_ours() -> None:
        trip, gap = bring_up_ours(client, run_id, secret, tokens)
        ours.append(trip)
        gaps.append(gap)

    def run_theirs() -> None:
        theirs.append(bring_up_testcontainers(secret, tokens))

    steps = [("ours", run_ours), ("testcontainers", run_theirs)]
    try:
        run_ours()  # warm-up: page cache, image, imports
        run_theirs()
        ours.clear()
        gaps.clear()
        theirs.clear()
        for n in range(args.rounds):
            for k in range(len(steps)):
                steps[(n + k) % len(steps)][1]()
    finally:
        remove_run(client, run_id, timeout=2)
    ours_med, theirs_med = statistics.median(ours), statistics.median(theirs)
    print(f"service_ready: {args.rounds} rounds each, interleaved")
    print(
        f"  first authenticated round trip: ServiceHandle p50 {ours_med * 1000:.0f} ms "
        f"(max {max(ours) * 1000:.0f}), testcontainers LogMessageWaitStrategy p50 "
        f"{theirs_med * 1000:.0f} ms (max {max(theirs) * 1000:.0f})"
    )
    print(f"  ratio ServiceHandle / testcontainers: {ours_med / theirs_med:.2f}x")
    p50, worst = _pct(gaps, 50), max(gaps)
    verdict = "ok" if worst <= GAP_TARGET_S else "ABOVE TARGET"
    print(
        f"  gap 'server answers an authenticated handshake' -> 'start() returned': "
        f"p50 {p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms (target <= "
        f"{GAP_TARGET_S * 1000:.0f} ms: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
