"""Services the tests need: Docker containers or local commands, healthy by a real
WebSocket handshake, reaped when a run dies, shared across xdist workers.

The library part (no pytest): `ServiceSpec` says what to run, `ServiceHandle` starts,
waits for and stops it (with container chaos), `SharedServices` shares one across xdist
workers, `reap_leftovers` / `remove_run` clean up labelled containers, and
`docker_unavailable_reason` says in one line why Docker cannot be used. The pytest glue
is `services.hooks`.
"""

from __future__ import annotations

from pytest_ws_resilience.servers.engine import (
    docker_client,
    docker_unavailable_reason,
    reset_docker_probe,
)
from pytest_ws_resilience.servers.errors import (
    DockerUnavailableError,
    ServiceChaosError,
    ServiceError,
    ServiceExitedError,
    ServiceNotReadyError,
    ServiceSpecError,
)
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.images import HOST_IMAGE, ensure_host_image, host_python_mounts
from pytest_ws_resilience.servers.labels import current_run_id, new_run_id
from pytest_ws_resilience.servers.ports import free_loopback_port
from pytest_ws_resilience.servers.readiness import ReadinessResult
from pytest_ws_resilience.servers.reaper import reap_leftovers, remove_run
from pytest_ws_resilience.servers.sharing import ServiceRecord, SharedServices
from pytest_ws_resilience.servers.spec import ResolvedService, ServiceSpec, parse_services

__all__ = [
    "HOST_IMAGE",
    "DockerUnavailableError",
    "ReadinessResult",
    "ResolvedService",
    "ServiceChaosError",
    "ServiceError",
    "ServiceExitedError",
    "ServiceHandle",
    "ServiceNotReadyError",
    "ServiceRecord",
    "ServiceSpec",
    "ServiceSpecError",
    "SharedServices",
    "current_run_id",
    "docker_client",
    "docker_unavailable_reason",
    "ensure_host_image",
    "free_loopback_port",
    "host_python_mounts",
    "new_run_id",
    "parse_services",
    "reap_leftovers",
    "remove_run",
    "reset_docker_probe",
]
