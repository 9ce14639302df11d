"""A service as a Docker container on the host network, driven by the Docker SDK.

Blocking calls, each bounded by the client's timeout (`engine.docker_client`); async
callers go through `asyncio.to_thread`. Containers are never ``auto_remove``d: their
logs must outlive a crash, and `stop` reads them before it removes the container.
"""

from __future__ import annotations

import uuid
from typing import Any

from pytest_ws_resilience.config.services import ResolvedService, ServiceSpec
from pytest_ws_resilience.errors import ServiceError
from pytest_ws_resilience.servers.labels import (
    LABEL_PORT,
    LABEL_SERVICE,
    LABEL_SPEC,
)
from pytest_ws_resilience.servers.reaper import gone_already, list_containers

__all__ = ["DockerBackend", "find_reusable"]

# Statuses of a container that has not ended (``created`` is about to run).
_LIVE_STATUSES = ("created", "running", "paused", "restarting")


def _decode(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def find_reusable(client: Any, spec: ServiceSpec) -> list[tuple[Any, int]]:
    """Running containers of the same service and spec (``reuse=True``), with the port
    each listens on, newest first."""
    filters = {
        "label": [f"{LABEL_SERVICE}={spec.name}", f"{LABEL_SPEC}={spec.fingerprint()}"],
        "status": "running",
    }
    found: list[tuple[Any, int]] = []
    for container in list_containers(client, filters, all=False):
        try:
            port = int(container.labels.get(LABEL_PORT, ""))
        except ValueError:
            continue
        found.append((container, port))
    return found


class DockerBackend:
    """One container: start, liveness, logs, chaos, stop-and-remove."""

    kind = "docker"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.container: Any = None

    @property
    def container_id(self) -> str | None:
        return None if self.container is None else str(self.container.id)

    @property
    def pid(self) -> int | None:
        return None

    def launch(self, spec: ServiceSpec, resolved: ResolvedService, labels: dict[str, str]) -> None:
        """Create and start the container (host network, read-only mounts, labels)."""
        assert spec.image is not None
        volumes = {
            host: {"bind": inside, "mode": "ro"} for host, inside in (spec.mounts or {}).items()
        }
        name = f"ws-resilience-{spec.name}-{uuid.uuid4().hex[:10]}"
        try:
            self.container = self.client.containers.run(
                spec.image,
                command=list(resolved.argv) or None,
                environment=resolved.env,
                network_mode="host",
                labels=labels,
                volumes=volumes,
                name=name,
                detach=True,
                auto_remove=False,
            )
        except Exception as err:
            # A failed `run` may have created the container before failing to start it.
            self._remove_by_name(name)
            raise ServiceError(
                f"service {spec.name!r}: cannot start a container of {spec.image!r}: "
                f"{' '.join(str(err).split())}",
                service=spec.name,
            ) from None

    def _remove_by_name(self, name: str) -> None:
        try:
            self.client.containers.get(name).remove(force=True)
        except Exception:
            pass  # never created: nothing to remove

    def adopt(self, container: Any) -> None:
        """Take over a running container (``reuse=True``) without owning it."""
        self.container = container

    def exit_reason(self) -> str | None:
        """None while the container runs (or is about to), else how it ended."""
        try:
            self.container.reload()
        except Exception as err:
            return f"container disappeared ({type(err).__name__})"
        status = self.container.status
        if status in _LIVE_STATUSES:
            return None
        state = self.container.attrs.get("State", {})
        code = state.get("ExitCode")
        oom = " (out of memory)" if state.get("OOMKilled") else ""
        return f"container {status} with status {code}{oom}"

    def logs(self, tail: int | None = 50) -> str:
        """The container's stdout and stderr, last ``tail`` lines ("" if unreadable);
        ``tail=None``: all of it (a failed start attaches its digest: first lines too)."""
        if self.container is None:
            return ""
        try:
            return _decode(
                self.container.logs(stdout=True, stderr=True, tail="all" if tail is None else tail)
            )
        except Exception:
            return ""

    def stop(self, timeout: float) -> None:
        """Stop (SIGTERM, then SIGKILL after ``timeout``), then remove, even if paused."""
        if self.container is None:
            return
        try:
            if self.container.status == "paused":
                self.container.unpause()
            self.container.stop(timeout=max(0, int(timeout)))
        except Exception:
            pass  # already gone or stuck: the forced removal below settles it
        try:
            self.container.remove(force=True)
        except Exception as err:
            if not gone_already(err):
                raise ServiceError(
                    f"cannot remove container {self.container.name}: {err}"
                ) from None

    def pause(self) -> None:
        self.container.pause()

    def unpause(self) -> None:
        self.container.unpause()

    def kill(self) -> None:
        self.container.kill()

    def restart(self, timeout: float) -> None:
        """Restart in place: same container, same command, so the same port."""
        self.container.reload()
        if self.container.status == "paused":
            self.container.unpause()
        self.container.restart(timeout=max(0, int(timeout)))
