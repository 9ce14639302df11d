"""`ServiceHandle`: one running service, as tests see it.

It starts the service (Docker container or local process), waits until it is up by the
one readiness rule (`readiness`; the handle is the `probe.ReadinessTarget`), and removes
it again; launch and wait sit in the same try as the
teardown, so a failed wait removes what it started (after reading its logs). Recovery
tests drive it with container chaos: ``await pause()``, ``unpause()``, ``kill()``,
``restart()`` (which waits for readiness again, on the same port). A handle on a
service shared by several tests or workers refuses chaos and never stops the service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.services import Backend, ResolvedService, ServiceSpec
from pytest_ws_resilience.config.settings import ConnectionOptions, WsSettings
from pytest_ws_resilience.errors import (
    ServerResourcesUnavailableError,
    ServiceChaosError,
    ServiceError,
    ServiceExitedError,
    ServiceNotReadyError,
)
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.docker_backend import DockerBackend, find_reusable
from pytest_ws_resilience.servers.engine import docker_client
from pytest_ws_resilience.servers.growth import ResourceSample
from pytest_ws_resilience.servers.labels import container_labels, current_run_id
from pytest_ws_resilience.servers.log_digest import digest
from pytest_ws_resilience.servers.ports import free_loopback_port
from pytest_ws_resilience.servers.probe import ProbeAuth, wait_ready, wait_ready_blocking
from pytest_ws_resilience.servers.process_backend import (
    ProcessBackend,
    process_alive,
    read_log_digest_source,
    read_log_tail,
)
from pytest_ws_resilience.servers.readiness import (
    ReadinessCheck,
    ReadinessResult,
    exited_message,
    never_message,
    not_ready_message,
)
from pytest_ws_resilience.servers.resources import sample_container, sample_process_tree

__all__ = ["DEFAULT_STOP_TIMEOUT_S", "ServiceHandle"]

#: Grace between SIGTERM and SIGKILL when a service is stopped.
DEFAULT_STOP_TIMEOUT_S = 10.0
_LOG_CAPTURE_LINES = 200


class ServiceHandle:
    """A service this process started (or adopted, or shares) and its address.

    Args:
        spec: what to run.
        run_id: labels the container (default: `labels.current_run_id`).
        token_factory: mints the token of an ``auth=True`` health check.
        settings: how that token is sent (auth chain, parameter names).
        auth: the auth method(s) of that check (default: the settings' chain).
        docker: a `docker.DockerClient` (default: one from the environment).
        log_dir: where a local process writes its log (default: the temp dir).
        port: the port to use when the spec leaves it open (default: a free one).
        path_setting: the setting a 404's hint names (default: the service's path).

    Attributes:
        readiness: how the last wait for readiness went (timestamps per step).
        shared: True for a handle on a service someone else started and stops.
    """

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        run_id: str | None = None,
        token_factory: TokenFactory | None = None,
        settings: WsSettings | None = None,
        auth: str | Sequence[str] | None = None,
        docker: Any = None,
        log_dir: Path | None = None,
        port: int | None = None,
        path_setting: str | None = None,
    ) -> None:
        self.spec = spec
        self._path_setting = path_setting
        self.run_id = run_id or current_run_id()
        self.token_factory = token_factory
        self.settings = settings
        self.auth = auth
        self._docker = docker
        self._log_dir = log_dir
        self._port = spec.port if spec.port is not None else port
        self._resolved: ResolvedService | None = None
        self._docker_backend: DockerBackend | None = None
        self._process_backend: ProcessBackend | None = None
        self._attached_pid: int | None = None
        self._attached_log: Path | None = None
        self._final_logs = ""
        self.readiness: ReadinessResult | None = None
        self.shared = False
        #: False for a reused or shared service: this handle never removes it.
        self.owned = True
        self.adopted = False

    # -- a handle on a service started elsewhere ------------------------------------

    @classmethod
    def attach(
        cls,
        spec: ServiceSpec,
        *,
        port: int,
        container_id: str | None = None,
        pid: int | None = None,
        log_path: Path | None = None,
        docker: Any = None,
    ) -> ServiceHandle:
        """A ``shared=True`` handle on a running service another process owns: it reads
        the service's logs but never stops it and refuses chaos."""
        handle = cls(spec, docker=docker, port=port)
        handle._resolved = spec.resolve(port)
        handle.shared = True
        handle.owned = False
        if container_id is not None:
            backend = DockerBackend(handle._docker_client())
            backend.adopt(backend.client.containers.get(container_id))
            handle._docker_backend = backend
        handle._attached_pid = pid
        handle._attached_log = log_path
        return handle

    # -- what tests read ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def backend(self) -> Backend:
        """``docker`` or ``process``."""
        return self.spec.backend

    @property
    def resolved(self) -> ResolvedService:
        if self._resolved is None:
            raise ServiceError(f"service {self.name!r} is not started", service=self.name)
        return self._resolved

    @property
    def port(self) -> int:
        return self.resolved.port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/PATH``."""
        return self.resolved.url

    @property
    def container_id(self) -> str | None:
        return None if self._docker_backend is None else self._docker_backend.container_id

    @property
    def pid(self) -> int | None:
        if self._process_backend is not None:
            return self._process_backend.pid
        return self._attached_pid

    @property
    def log_path(self) -> Path | None:
        """The local process's log file (process backend)."""
        if self._process_backend is not None:
            return self._process_backend.log_path
        return self._attached_log

    @property
    def started(self) -> bool:
        return self._resolved is not None

    def __repr__(self) -> str:
        where = self._resolved.url if self._resolved is not None else "not started"
        ident = (
            f", container={self.container_id[:12]}"
            if self.container_id
            else (f", pid={self.pid}" if self.pid else "")
        )
        shared = ", shared" if self.shared else ""
        return f"ServiceHandle({self.name!r}, {self.backend}, {where}{ident}{shared})"

    def logs(self, tail: int = 50) -> str:
        """The service's last ``tail`` log lines, redacted; after `stop`, the lines
        captured just before the container was removed."""
        text = ""
        if self._docker_backend is not None and self._docker_backend.container is not None:
            text = self._docker_backend.logs(tail)
        elif self._process_backend is not None:
            text = self._process_backend.logs(tail)
        elif self._attached_log is not None:
            text = read_log_tail(self._attached_log, tail)
        if not text and self._final_logs:
            text = "\n".join(self._final_logs.splitlines()[-tail:])
        return redact(text)

    def resources(self) -> ResourceSample:
        """What the service holds now: RSS, open fds, threads and TCP sockets of its
        process and every child (a process service), or of its container (the Docker
        stats API, and its processes read from this host). Blocking: from async code,
        ``await asyncio.to_thread(service.resources)``.

        Raises:
            ServerResourcesUnavailableError: not started, stopped, or gone (one line).
        """
        what = f"service {self.name!r}"
        backend = self._docker_backend
        if backend is not None and backend.container is not None:
            return sample_container(backend.container, what=what)
        if self.pid is not None:
            return sample_process_tree(self.pid, what=what)
        raise ServerResourcesUnavailableError(f"{what} is not running: nothing to sample")

    # -- lifecycle ----------------------------------------------------------------------

    def _docker_client(self) -> Any:
        if self._docker is None:
            self._docker = docker_client()
        return self._docker

    def _probe_auth(self) -> ProbeAuth | None:
        """The token of an ``auth=True`` check, and how to send it."""
        if not self.spec.auth or self.token_factory is None:
            return None
        token = self.token_factory.user(id=f"ws-resilience-probe-{self.name}").token
        return ProbeAuth(token, settings=self.settings, methods=self.auth)

    # -- the readiness target (`probe.ReadinessTarget`) ----------------------------------

    def probe_url(self) -> str | None:
        """Where the health check connects; None before the service is placed."""
        return None if self._resolved is None else self._resolved.url

    def exit_reason(self) -> str | None:
        """None while the container / process runs, else how it ended."""
        if self._docker_backend is not None:
            return self._docker_backend.exit_reason()
        if self._process_backend is not None:
            return self._process_backend.exit_reason()
        if self._attached_pid is not None and not process_alive(self._attached_pid):
            return "process is gone"
        return None

    def log_so_far(self) -> str:
        """The service's log, its beginning and its end (unredacted: the errors redact
        their messages, and trim it with `log_digest.digest`)."""
        if self._docker_backend is not None:
            return self._docker_backend.logs(None)
        if self._process_backend is not None and self._process_backend.log_path is not None:
            return read_log_digest_source(self._process_backend.log_path)
        return ""

    def _check(self) -> ReadinessCheck:
        """The spec's check; a tokenless probe is final on 401/403 when the settings say
        the servers are unauthenticated."""
        unauthenticated = self.settings is not None and self.settings.unauthenticated
        check = ReadinessCheck.of_service(self.spec, unauthenticated=unauthenticated)
        if self._path_setting is None:
            return check
        return dataclasses.replace(check, path_setting=self._path_setting)

    def _connection(self) -> ConnectionOptions | None:
        return None if self.settings is None else self.settings.connection

    def _ready_or_raise(self, result: ReadinessResult, check: ReadinessCheck) -> ReadinessResult:
        """The service's typed errors for a wait that did not end ready."""
        if result.ready is not None:
            return result
        if result.never is not None:
            raise ServiceNotReadyError(
                never_message(
                    f"service {self.name!r}", url=result.url, reason=result.never, logs=result.logs
                ),
                service=self.name,
                logs=digest(result.logs),
                last_error=result.never,
            )
        if result.ended is not None:
            raise ServiceExitedError(
                exited_message(
                    self.name, reason=result.ended, logs=result.logs, waited_s=result.waited_s
                ),
                service=self.name,
                logs=digest(result.logs),
            )
        raise ServiceNotReadyError(
            not_ready_message(
                self.name,
                deadline_s=check.startup_timeout,
                attempts=result.attempts,
                last_error=result.last_error,
                logs=result.logs,
                what=check.what,
            ),
            service=self.name,
            logs=digest(result.logs),
            last_error=result.last_error,
        )

    def _wait_blocking(self, check: ReadinessCheck, started_at: float | None) -> ReadinessResult:
        result = wait_ready_blocking(
            self,
            check,
            auth=self._probe_auth(),
            started_at=started_at,
            connection=self._connection(),
        )
        return self._ready_or_raise(result, check)

    def start(self) -> Self:
        """Start the service and return once it is ready (blocking).

        With ``reuse=True`` a running healthy container of the same spec is adopted
        instead. A failed start or wait removes what was started, keeping its logs.

        Raises:
            ServiceExitedError: it ended before it was ready (with its log lines).
            ServiceNotReadyError: the deadline passed (last error, log lines).
            ServiceError: the container or process could not be created.
            DockerUnavailableError: an image service without a Docker daemon.
        """
        if self._resolved is not None:
            raise ServiceError(f"service {self.name!r} is already started", service=self.name)
        if self.spec.auth and self.token_factory is None:
            raise ServiceError(
                f"service {self.name!r}: auth=True needs a token factory to mint the health "
                "check's token (pass token_factory=)",
                service=self.name,
            )
        if self.spec.backend == "docker" and self.spec.reuse and self._adopt_reusable():
            return self
        port = self._port if self._port is not None else free_loopback_port()
        self._resolved = self.spec.resolve(port)
        started_at = time.monotonic()
        try:
            if self.spec.backend == "docker":
                backend = DockerBackend(self._docker_client())
                self._docker_backend = backend
                labels = container_labels(
                    run_id=self.run_id,
                    service=self.name,
                    spec_hash=self.spec.fingerprint(),
                    port=port,
                    reuse=self.spec.reuse,
                )
                backend.launch(self.spec, self._resolved, labels)
            else:
                process = ProcessBackend(self._log_dir)
                self._process_backend = process
                process.launch(self.spec, self._resolved)
            self.readiness = self._wait_blocking(self._check(), started_at)
        except BaseException:
            self._teardown(DEFAULT_STOP_TIMEOUT_S, keep_reusable=False)
            raise
        return self

    def _adopt_reusable(self) -> bool:
        """Adopt the first running container of this spec that passes a health check."""
        client = self._docker_client()
        check = self._check()
        quick = dataclasses.replace(check, startup_timeout=check.attempt_timeout)
        for container, port in find_reusable(client, self.spec):
            backend = DockerBackend(client)
            backend.adopt(container)
            self._docker_backend, self._resolved = backend, self.spec.resolve(port)
            try:
                self.readiness = self._wait_blocking(quick, None)
            except ServiceError:
                self._docker_backend, self._resolved = None, None
                continue
            self.owned, self.adopted = False, True
            return True
        return False

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Stop and remove the service (bounded by ``timeout`` plus the removal).

        Does nothing on a shared handle. A ``reuse=True`` container stays running for
        the next run (`discard` removes it). The logs read just before removal stay
        available from `logs`.
        """
        if self.shared:
            return
        self._teardown(timeout, keep_reusable=True)

    def discard(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Stop and remove the service even when it is kept for reuse or was adopted."""
        if self.shared:
            return
        self._teardown(timeout, keep_reusable=False)

    def _teardown(self, timeout: float, *, keep_reusable: bool) -> None:
        if self._docker_backend is not None:
            backend = self._docker_backend
            if keep_reusable and (self.spec.reuse or self.adopted):
                return
            self._final_logs = backend.logs(_LOG_CAPTURE_LINES)
            backend.stop(timeout)
            backend.container = None
        elif self._process_backend is not None:
            self._process_backend.stop(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- container chaos ----------------------------------------------------------------

    def _chaos_target(self, action: str) -> DockerBackend | ProcessBackend:
        if self.shared:
            raise ServiceChaosError(
                f"container chaos needs a function-scoped service: {action}() on the shared "
                f"service {self.name!r} would break every other test using it",
                service=self.name,
            )
        backend = self._docker_backend or self._process_backend
        if backend is None or self._resolved is None:
            raise ServiceChaosError(
                f"{action}(): service {self.name!r} is not started", service=self.name
            )
        return backend

    async def pause(self) -> None:
        """Freeze the service (``docker pause`` / SIGSTOP): connections stay open, nothing
        answers; a client's ping times out."""
        await asyncio.to_thread(self._chaos_target("pause").pause)

    async def unpause(self) -> None:
        """Resume a paused service (``docker unpause`` / SIGCONT)."""
        await asyncio.to_thread(self._chaos_target("unpause").unpause)

    async def kill(self) -> None:
        """SIGKILL the service; its connections reset. `restart` brings it back."""
        await asyncio.to_thread(self._chaos_target("kill").kill)

    async def restart(
        self,
        timeout: float = DEFAULT_STOP_TIMEOUT_S,  # noqa: ASYNC109 (the stop's grace)
    ) -> ReadinessResult:
        """Restart on the same port and wait for readiness again (the spec's deadline).

        Args:
            timeout: grace between SIGTERM and SIGKILL for the stop part.

        Returns:
            The new readiness result (also in ``readiness``).
        """
        backend = self._chaos_target("restart")
        started_at = time.monotonic()
        if isinstance(backend, DockerBackend):
            await asyncio.to_thread(backend.restart, timeout)
        else:
            await asyncio.to_thread(backend.restart, self.spec, timeout)
        check = self._check()
        result = await wait_ready(
            self,
            check,
            auth=self._probe_auth(),
            started_at=started_at,
            connection=self._connection(),
        )
        self.readiness = self._ready_or_raise(result, check)
        return self.readiness
