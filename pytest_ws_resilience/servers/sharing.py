"""One service for all xdist workers: the first starts it, the others read its address.

Under a file lock per service, the first process to ask starts the service and records
where it listens (URL, port, container id or pid, log file) in a JSON state file; later
processes read the record and get a ``shared=True`` handle that neither stops the
service nor allows chaos on it. A recorded service that is gone (container removed,
process dead) is started again. Workers never remove anything: the controller calls
`SharedServices.remove_all` once, after every worker has finished.

A local process a worker starts here gets no parent-death signal
(`process_backend.outliving_this_process`): xdist lets a worker with no work left exit
while the others still run tests against the service. It is recorded in the run's
state directory all the same: a killed run's is reaped by the next run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.errors import ServiceError
from pytest_ws_resilience.servers.engine import docker_client
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.labels import current_owner_pid
from pytest_ws_resilience.servers.process_backend import (
    outliving_this_process,
    process_alive,
    terminate_pid,
)
from pytest_ws_resilience.servers.reaper import remove_run
from pytest_ws_resilience.servers.run_state import ensure_state_dir

__all__ = ["ServiceRecord", "SharedServices"]

# Waiting for the lock covers another process's whole start; this margin its teardown.
_LOCK_MARGIN_S = 30.0


@dataclass(frozen=True)
class ServiceRecord:
    """Where a shared service listens and what runs it (one line of the state file)."""

    name: str
    spec_hash: str
    backend: str
    run_id: str
    url: str
    port: int
    container_id: str | None = None
    pid: int | None = None
    log_path: str | None = None
    #: The process that started it (a worker; the controller removes it).
    started_by: int = 0

    @classmethod
    def of(cls, handle: ServiceHandle, run_id: str) -> ServiceRecord:
        return cls(
            name=handle.name,
            spec_hash=handle.spec.fingerprint(),
            backend=handle.backend,
            run_id=run_id,
            url=handle.url,
            port=handle.port,
            container_id=handle.container_id,
            pid=handle.pid,
            log_path=str(handle.log_path) if handle.log_path is not None else None,
            started_by=os.getpid(),
        )


class SharedServices:
    """The services of one run, shared by its processes through ``state_dir``.

    Args:
        state_dir: a directory every process of the run sees (e.g. the xdist
            controller's base temp's parent); created if missing.
        run_id: the run these services belong to (their containers' run label).
        docker: a `docker.DockerClient` (default: one from the environment, on demand).
    """

    def __init__(self, state_dir: Path, run_id: str, *, docker: Any = None) -> None:
        self.state_dir = Path(state_dir)
        self.run_id = run_id
        self._docker = docker
        self._owned: list[ServiceRecord] = []

    def _state_file(self, name: str) -> Path:
        return self.state_dir / f"ws-services-{self.run_id}-{name}.json"

    def _client(self) -> Any:
        if self._docker is None:
            self._docker = docker_client()
        return self._docker

    def _read(self, path: Path) -> list[ServiceRecord]:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [ServiceRecord(**item) for item in raw]

    def _write(self, path: Path, records: list[ServiceRecord]) -> None:
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps([asdict(r) for r in records]), encoding="utf-8")
        temporary.replace(path)  # atomic: a reader sees the old list or the new one

    def _running(self, record: ServiceRecord) -> bool:
        if record.container_id is not None:
            try:
                container = self._client().containers.get(record.container_id)
            except Exception:
                return False
            return bool(container.status == "running")
        return record.pid is not None and process_alive(record.pid)

    def acquire(self, spec: ServiceSpec, start: Callable[[], ServiceHandle]) -> ServiceHandle:
        """The shared service ``spec``: started here by ``start()`` if no process of the
        run has a live one yet, else attached to the recorded one.

        Either way the handle returned is ``shared=True``: its ``stop()`` does nothing
        (the controller's `remove_all` does it) and chaos on it is refused.

        Raises:
            ServiceError: the lock was not obtained in time (another process's start hung).
            Whatever ``start()`` raises (its service failed to start).
        """
        ensure_state_dir(self.state_dir, owner_pid=current_owner_pid())
        path = self._state_file(spec.name)
        lock = FileLock(str(path) + ".lock", timeout=spec.startup_timeout + _LOCK_MARGIN_S)
        try:
            with lock:
                records = self._read(path)
                current = records[-1] if records else None
                if (
                    current is not None
                    and current.spec_hash == spec.fingerprint()
                    and self._running(current)
                ):
                    return self._attach(spec, current)
                if os.getpid() == current_owner_pid():
                    handle = start()
                else:
                    # An xdist worker: others may use it after this worker exits.
                    with outliving_this_process():
                        handle = start()
                record = ServiceRecord.of(handle, self.run_id)
                self._write(path, [*records, record])
                self._owned.append(record)
                handle.shared, handle.owned = True, False
                return handle
        except Timeout:
            raise ServiceError(
                f"service {spec.name!r}: another process held its start lock for more than "
                f"{lock.timeout:g} s ({path}.lock)",
                service=spec.name,
            ) from None

    def _attach(self, spec: ServiceSpec, record: ServiceRecord) -> ServiceHandle:
        return ServiceHandle.attach(
            spec,
            port=record.port,
            container_id=record.container_id,
            pid=record.pid,
            log_path=Path(record.log_path) if record.log_path else None,
            docker=self._client() if record.container_id is not None else None,
        )

    def owned_records(self) -> list[ServiceRecord]:
        """The services this process started."""
        return list(self._owned)

    def all_records(self) -> list[ServiceRecord]:
        """Every service any process of the run started (restarts included)."""
        records: list[ServiceRecord] = []
        for path in sorted(self.state_dir.glob(f"ws-services-{self.run_id}-*.json")):
            records.extend(self._read(path))
        return records

    def remove_all(self, timeout: float = 10.0) -> int:
        """Remove every service of the run (the controller, after all workers ended):
        containers by the run label, processes by pid (SIGTERM, SIGKILL after
        ``timeout``). Returns how many were removed."""
        records = self.all_records()
        count = 0
        if any(r.container_id is not None for r in records):
            count += remove_run(self._client(), self.run_id, timeout)
        for record in records:
            if record.pid is not None and process_alive(record.pid):
                terminate_pid(record.pid, timeout)
                count += 1
        for path in self.state_dir.glob(f"ws-services-{self.run_id}-*.json"):
            path.unlink(missing_ok=True)
        return count
