"""The services runtime of one pytest process: specs, handles, failures, the run's chores.

Who does what:

- the run's owner (the only process without xdist, else the xdist controller) reaps
  the leftovers of dead runs at session start, and removes every service of the run
  once at the end, after all workers finished;
- every process starts a shared service on first need: the first one under a file
  lock, the others attach to it (``servers.sharing``); a worker never removes one;
- every process removes its private services (``ws_service_factory``) at test teardown.

The run id, owner pid, state directory and secret come from the run's
`pytest_ws_resilience.plugin.handoff.RunHandoff`. The rules (marker arguments, skip or
fail, the reasons) are `pytest_ws_resilience.plugin.service_rules`; starting, sharing
and reaping are the library's (`pytest_ws_resilience.servers`). This module has no
hooks: the role objects (`pytest_ws_resilience.plugin.session`) call the runtime's
steps, and the fixtures (`pytest_ws_resilience.plugin.fixtures`) reach it through
``config.stash[SERVICES_KEY]``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import ServiceError
from pytest_ws_resilience.plugin import service_rules as rules
from pytest_ws_resilience.plugin.handoff import RunHandoff
from pytest_ws_resilience.plugin.stash import CurrentTest
from pytest_ws_resilience.plugin.watch import test_watch
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
from pytest_ws_resilience.servers.labels import RUN_ID_ENV, RUN_OWNER_PID_ENV, RUN_STATE_DIR_ENV
from pytest_ws_resilience.servers.log_digest import digest
from pytest_ws_resilience.servers.run_state import (
    ensure_state_dir,
    reap_processes,
    reap_stale_runs,
)

if TYPE_CHECKING:
    from pytest_ws_resilience.client.tokens import TokenFactory
    from pytest_ws_resilience.servers.handle import ServiceHandle
    from pytest_ws_resilience.servers.sharing import SharedServices

__all__ = [
    "LOG_TAIL_LINES",
    "STOP_TIMEOUT_S",
    "PrivateServices",
    "ServiceRegistry",
    "ServicesRuntime",
]

#: Log lines of a service read for the report of a failed test that used it; the
#: report gets their digest (`servers.log_digest`: repeats folded, at most 60 lines).
LOG_TAIL_LINES = 1000
#: Grace between SIGTERM and SIGKILL when the plugin stops a service.
STOP_TIMEOUT_S = 10.0
#: In the state directory: present once a process of the run started a container.
_DOCKER_USED = "docker-used"

#: Per test: the handles it used, by report-section title.
_USED_KEY = pytest.StashKey["dict[str, ServiceHandle]"]()
#: Per test: the reason it was skipped for (the skip is then shown at the test).
_SKIP_REASON_KEY = pytest.StashKey[str]()
#: Per test: the titles whose logs are already in a report (each is attached once).
_LOGS_ATTACHED_KEY = pytest.StashKey[set[str]]()


class _UnknownService(Exception):
    """A service name nobody defined; the message lists the known ones."""


class _Unavailable(Exception):
    """A service that cannot run: ``reason`` is one line, ``detail`` adds its logs."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail

    def failure_text(self) -> str:
        """The reason, then the rest of the cause (e.g. the service's last log lines)."""
        rest = self.detail.strip().splitlines()[1:]
        return "\n".join([self.reason, *rest])


class ServicesRuntime:
    """The services of this process: specs, shared handles, failures, run-level chores.

    One per pytest process, kept in ``config.stash[SERVICES_KEY]``.

    Args:
        settings: the run's settings.
        run: what every process of the run agrees on (run id, owner pid, state dir).
        owns_run: True in the process that reaps at the start and removes at the end
            (the only process, or the xdist controller); False on an xdist worker.
        current: the process's current test (the session's `CurrentTest`).
    """

    def __init__(
        self,
        settings: WsSettings,
        run: RunHandoff,
        *,
        owns_run: bool,
        current: CurrentTest,
    ) -> None:
        self.settings = settings
        self.run = run
        self.owns_run = owns_run
        #: Specs added in code (``ws_service_specs``, ``ws_services.add``).
        self.specs: dict[str, ServiceSpec] = {}
        self.handles: dict[str, ServiceHandle] = {}
        #: A service that failed once is not started again by this process (its wait
        #: may be a minute): name -> the failure's reason and full text.
        self.failures: dict[str, _Unavailable] = {}
        #: The test being set up, run or torn down (its services are recorded on it).
        self.current = current
        #: Services this process started (or adopted), one line each ("name: how"),
        #: for the terminal summary and the report.
        self.started: list[str] = []
        self.reaped: list[str] = []
        #: Dead runs' state directories removed at the start (with what they left running).
        self.reaped_runs: list[str] = []
        self.removed: int | None = None
        self._reap_done = False
        self._finished = False
        self._tokens: TokenFactory | None = None
        self._saved_environ: dict[str, str | None] = {}

    @cached_property
    def sharing(self) -> SharedServices:
        """The run's services shared by its processes (made at first use: a run with
        no service never imports the service backends)."""
        from pytest_ws_resilience.servers.sharing import SharedServices

        return SharedServices(Path(self.run.state_dir), self.run.run_id)

    @property
    def state_dir(self) -> Path:
        return Path(self.run.state_dir)

    # -- specs -------------------------------------------------------------------------

    def known(self) -> dict[str, ServiceSpec]:
        """Every defined service: the pyproject tables, then those added in code."""
        return {**self.settings.services.specs, **self.specs}

    def add(self, spec: ServiceSpec) -> None:
        """Define a service in code; the same spec twice is fine, a different one is not.

        Raises:
            ValueError: another, different spec already has this name.
        """
        existing = self.known().get(spec.name)
        if existing is not None and existing != spec:
            raise ValueError(
                f"service {spec.name!r} is already defined differently ({existing!r}); "
                f"give the new one another name"
            )
        self.specs[spec.name] = spec

    def spec(self, name: str) -> ServiceSpec:
        known = self.known()
        if name not in known:
            raise _UnknownService(rules.unknown_service_reason(name, known))
        return known[name]

    def needed_names(
        self, item: pytest.Item, markers: Iterable[pytest.Mark] | None = None
    ) -> tuple[str, ...]:
        """The services a test needs: the env's ``services`` and its ``ws_services`` marks
        (``markers``, when the caller has already walked the item's markers for them)."""
        needed = self.settings.services.needed
        if markers is not None and not markers and not needed:
            return ()  # most tests: no marker, and an env that needs no service
        names = list(needed)
        for marker in item.iter_markers("ws_services") if markers is None else markers:
            for name in rules.services_marker_names(marker.args, test=item.name):
                if name not in names:
                    names.append(name)
        return tuple(names)

    def registry(self) -> ServiceRegistry:
        """The ``ws_services`` fixture's object over this runtime."""
        return ServiceRegistry(self)

    def private_services(self) -> PrivateServices:
        """The ``ws_service_factory`` fixture's object for one test."""
        return PrivateServices(self)

    # -- starting ----------------------------------------------------------------------

    def tokens(self) -> TokenFactory:
        """Mints the tokens of ``auth=True`` health checks: the run's `ws_tokens` key."""
        if self._tokens is None:
            from pytest_ws_resilience.servers.under_test import token_factory_for

            self._tokens = token_factory_for(self.settings)
        return self._tokens

    def _prepared(self, spec: ServiceSpec) -> ServiceSpec:
        """The spec as started: with the run's HS256 secret in ``$WS_RESILIENCE_SECRET``
        (unless it sets that variable), so the service accepts the run's tokens."""
        if spec.image is None and spec.cwd is None and self.settings.project_dir is not None:
            spec = dataclasses.replace(spec, cwd=self.settings.project_dir)
        from pytest_ws_resilience.servers.under_test import SERVER_CMD_SECRET_ENV

        tokens = self.tokens()
        env = dict(spec.env or {})
        if (
            self.settings.unauthenticated  # auth_methods = ["none"]: it checks no token
            or tokens.algorithm != "HS256"
            or tokens.secret is None
            or SERVER_CMD_SECRET_ENV in env
        ):
            return spec
        env[SERVER_CMD_SECRET_ENV] = tokens.secret
        return dataclasses.replace(spec, env=env)

    def _before_start(self, spec: ServiceSpec) -> None:
        """Docker there? Leftovers reaped? The host image present? (Docker only.)"""
        if spec.backend != "docker":
            return
        reason = docker_unavailable_reason()
        if reason is not None:
            raise _Unavailable(rules.unavailable_reason(spec.name, reason), reason)
        # The marker tells the run's owner that containers may need removing.
        ensure_state_dir(self.state_dir, owner_pid=self.run.owner_pid)
        (self.state_dir / _DOCKER_USED).touch()
        self.reap_once()
        from pytest_ws_resilience.servers.images import HOST_IMAGE, ensure_host_image

        if spec.image == HOST_IMAGE:
            client = docker_client()
            try:
                ensure_host_image(client)
            finally:
                client.close()

    def _new_handle(self, spec: ServiceSpec) -> ServiceHandle:
        from pytest_ws_resilience.servers.handle import ServiceHandle

        return ServiceHandle(
            spec,
            run_id=self.run.run_id,
            token_factory=self.tokens(),
            settings=self.settings,
            log_dir=self.state_dir / "logs",
        )

    def shared_handle(self, name: str) -> ServiceHandle:
        """The run's instance of ``name``: started by the first process that needs it.

        Raises:
            _UnknownService: nobody defined ``name``.
            _Unavailable: Docker is absent, or the service did not get healthy (this
                process does not try again).
        """
        if name in self.handles:
            return self.handles[name]
        if name in self.failures:
            raise self.failures[name]
        spec = self._prepared(self.spec(name))
        try:
            self._before_start(spec)
            started_before = len(self.sharing.owned_records())
            handle = self.sharing.acquire(spec, lambda: self._new_handle(spec).start())
        except _Unavailable as err:
            self.failures[name] = err
            raise
        except ServiceError as err:
            failure = _Unavailable(rules.unavailable_reason(name, err.message), err.message)
            self.failures[name] = failure
            raise failure from None
        self.handles[name] = handle
        here = len(self.sharing.owned_records()) > started_before
        self._record_start(handle, how="started" if here else "attached to", timed=here)
        return handle

    def private_handle(self, spec: ServiceSpec) -> ServiceHandle:
        """A new instance of ``spec`` for one test (never shared, never reused).

        Raises:
            _Unavailable: Docker is absent, or it did not get healthy.
        """
        spec = self._prepared(dataclasses.replace(spec, reuse=False))
        try:
            self._before_start(spec)
            handle = self._new_handle(spec).start()
        except ServiceError as err:
            raise _Unavailable(
                rules.unavailable_reason(spec.name, err.message), err.message
            ) from None
        item = self.current.item
        test = f" for {item.name}" if item is not None else ""
        self._record_start(handle, how=f"started private{test}", timed=True)
        return handle

    def _record_start(self, handle: ServiceHandle, *, how: str, timed: bool) -> None:
        readiness = handle.readiness
        ident = handle.container_id[:12] if handle.container_id else None
        if ident is None and handle.pid is not None:
            ident = f"pid {handle.pid}"
        if handle.adopted:
            how = "adopted running"
        line = rules.started_line(
            handle.name,
            how=how,
            backend=handle.backend,
            url=handle.url,
            ident=ident,
            image=handle.spec.image,
            ready_s=readiness.elapsed_s if readiness is not None and timed else None,
        )
        self.started.append(line)

    # -- what a test used -----------------------------------------------------------------

    def record_use(self, title: str, handle: ServiceHandle) -> None:
        item = self.current.item
        if item is None:
            return
        watch = test_watch(item)
        if handle.name not in watch.services:
            watch.services.append(handle.name)
        item.stash.setdefault(_USED_KEY, {})[title] = handle

    def refuse(self, failure: _Unavailable) -> NoReturn:
        """Skip the current test, or fail it under ``--ws-require-services``."""
        if rules.skip_or_fail(required=self.settings.services.required) == "fail":
            pytest.fail(redact(failure.failure_text()), pytrace=False)
        if self.current.item is not None:
            self.current.item.stash[_SKIP_REASON_KEY] = failure.reason
        pytest.skip(redact(failure.reason))

    def annotate_report(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Show a services skip at the test (not in this file); attach the service logs
        of a failed test that used services (each once)."""
        if report.passed:  # most reports: nothing to show
            return
        reason = item.stash.get(_SKIP_REASON_KEY, None)
        if report.skipped and reason is not None and isinstance(report.longrepr, tuple):
            path, line = item.reportinfo()[:2]
            report.longrepr = (os.fspath(path), (line or 0) + 1, report.longrepr[2])
        if not report.failed:
            return
        attached = item.stash.setdefault(_LOGS_ATTACHED_KEY, set())
        for title, handle in item.stash.get(_USED_KEY, {}).items():
            if title in attached:
                continue
            attached.add(title)
            try:
                logs = digest(handle.logs(tail=LOG_TAIL_LINES))
            except Exception as err:  # the logs are a help, never a second failure
                logs = f"(logs unavailable: {type(err).__name__}: {err})"
            report.sections.append((f"ws-service {title}", redact(logs or "(no output)")))

    # -- what the run shows -------------------------------------------------------------

    def header_lines(self) -> list[str]:
        """The report-header line of the configured services (none without services)."""
        services = self.settings.services
        if not (services.specs or services.needed):
            return []
        described = ", ".join(
            f"{name} ({spec.image if spec.backend == 'docker' else 'process'})"
            for name, spec in services.specs.items()
        )
        if services.required:
            policy = f"unavailable -> fail ({services.required_source})"
        else:
            policy = "unavailable -> skip (--ws-require-services: fail)"
        every = f"; every test needs {', '.join(services.needed)}" if services.needed else ""
        return [f"ws-resilience services: {described or 'none defined'}{every}; {policy}"]

    def summary_lines(self) -> list[str]:
        """What the run's owner reaped and removed, for the terminal summary."""
        if not self.owns_run:
            return []
        lines: list[str] = []
        if self.reaped_runs:
            lines.append(
                f"ws-resilience: reaped {len(self.reaped_runs)} state directory(ies) of dead "
                f"runs: {'; '.join(self.reaped_runs)}"
            )
        if self.reaped:
            lines.append(
                f"ws-resilience services: reaped {len(self.reaped)} leftover container(s) "
                f"of dead runs: {', '.join(self.reaped)}"
            )
        if self.removed:
            lines.append(
                f"ws-resilience services: removed {self.removed} service(s) of run "
                f"{self.run.run_id} at the end"
            )
        return lines

    # -- run-level chores ---------------------------------------------------------------

    def reap_at_start(self) -> None:
        """The run's owner reaps, before any worker or test starts: the state
        directories of dead runs of this host, and the processes they recorded still
        running (`run_state.reap_stale_runs`); and dead runs' containers, when Docker
        services are configured (otherwise on the first one's start)."""
        if not self.owns_run:
            return
        self.reaped_runs.extend(reap_stale_runs(current=self.state_dir, timeout=STOP_TIMEOUT_S))
        specs = self.settings.services.specs.values()
        if any(spec.backend == "docker" for spec in specs):
            self.reap_once()

    def reap_once(self) -> None:
        """Remove the labelled containers of dead runs on this host, once per process.

        Safe from any process: containers of this run, of live owners, of other hosts
        and those kept for reuse are never touched.
        """
        if self._reap_done:
            return
        self._reap_done = True
        if docker_unavailable_reason() is not None:
            return
        from pytest_ws_resilience.servers.reaper import reap_leftovers

        client = docker_client()
        try:
            self.reaped.extend(reap_leftovers(client, current_run=self.run.run_id))
        finally:
            client.close()

    def finish(self) -> None:
        """The run's end (its owner only): remove every service of the run, once."""
        if self._finished or not self.owns_run:
            return
        self._finished = True
        if not self.state_dir.exists():
            return  # no process of the run started anything
        removed = self.sharing.remove_all(STOP_TIMEOUT_S)
        # Processes whose spawner is gone (a worker that died with its server running);
        # the others are stopped by their own process (the shared app: at unconfigure).
        removed += len(reap_processes(self.state_dir, timeout=STOP_TIMEOUT_S, orphans_only=True))
        if (self.state_dir / _DOCKER_USED).exists() and docker_unavailable_reason() is None:
            # Containers no record names: a worker that died between start and record.
            from pytest_ws_resilience.servers.reaper import remove_run

            client = docker_client()
            try:
                removed += remove_run(client, self.run.run_id, STOP_TIMEOUT_S)
            finally:
                client.close()
        self.removed = removed
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def export_environ(self) -> None:
        """Make the library's labels agree with the run (restored by `close`)."""
        for key, value in (
            (RUN_ID_ENV, self.run.run_id),
            (RUN_OWNER_PID_ENV, str(self.run.owner_pid)),
            (RUN_STATE_DIR_ENV, self.run.state_dir),
        ):
            self._saved_environ[key] = os.environ.get(key)
            os.environ[key] = value

    def close(self) -> None:
        """The process's end: finish the run if the session did not (a usage error, a
        crash), then restore the environment."""
        try:
            self.finish()
        finally:
            for key, value in self._saved_environ.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_environ.clear()


class ServiceRegistry:
    """The ``ws_services`` fixture: ``ws_services["name"]`` is the run's `ServiceHandle`
    of that service, started (and waited for) on first access, shared by every test
    and every xdist worker of the run.

    A service that cannot run skips the test asking for it (Docker absent, never
    healthy), or fails it under ``--ws-require-services``; an unknown name fails it.
    Services come from ``[tool.ws_resilience.services.NAME]``, from the
    ``ws_service_specs`` fixture, or from `add`.
    """

    def __init__(self, runtime: ServicesRuntime) -> None:
        self._runtime = runtime

    def __repr__(self) -> str:
        started = ", ".join(sorted(self._runtime.handles)) or "none"
        return f"ServiceRegistry(known={', '.join(self) or 'none'}; started={started})"

    def __getitem__(self, name: str) -> ServiceHandle:
        runtime = self._runtime
        unknown: str | None = None
        unavailable: _Unavailable | None = None
        try:
            handle = runtime.shared_handle(name)
        except _UnknownService as err:
            unknown = str(err)
        except _Unavailable as err:
            unavailable = err
        # Outside the except blocks: the report shows the reason, no chained traceback.
        if unknown is not None:
            pytest.fail(unknown, pytrace=False)
        if unavailable is not None:
            runtime.refuse(unavailable)
        runtime.record_use(name, handle)
        return handle

    def __contains__(self, name: object) -> bool:
        return name in self._runtime.known()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._runtime.known()))

    def __len__(self) -> int:
        return len(self._runtime.known())

    @property
    def specs(self) -> dict[str, ServiceSpec]:
        """Every defined service by name (none is started by reading this)."""
        return self._runtime.known()

    def add(self, spec: ServiceSpec) -> None:
        """Define a service in code (before the first ``ws_services[spec.name]``).

        Raises:
            ValueError: a different spec already has this name.
        """
        self._runtime.add(spec)

    def url(self, name: str) -> str:
        """``ws_services.url("api")``: the service's ``ws://`` URL (starting it)."""
        return self[name].url


class PrivateServices:
    """The private services of one test (``ws_service_factory``): started on demand,
    stopped by `stop_all` at its teardown."""

    def __init__(self, runtime: ServicesRuntime) -> None:
        self._runtime = runtime
        self.handles: list[ServiceHandle] = []

    def start(self, spec: ServiceSpec | str, **changes: Any) -> ServiceHandle:
        """A new instance of ``spec`` (or of the service of that name), ``changes``
        replacing fields of the spec; skips or fails the test as ``ws_services`` does."""
        runtime = self._runtime
        if isinstance(spec, str):
            unknown: str | None = None
            try:
                spec = runtime.spec(spec)
            except _UnknownService as err:
                unknown = str(err)
            if unknown is not None:
                pytest.fail(unknown, pytrace=False)
        assert isinstance(spec, ServiceSpec)
        if changes:
            spec = dataclasses.replace(spec, **changes)
        unavailable: _Unavailable | None = None
        try:
            handle = runtime.private_handle(spec)
        except _Unavailable as err:
            unavailable = err
        if unavailable is not None:  # outside the except block: no chained traceback
            runtime.refuse(unavailable)
        self.handles.append(handle)
        runtime.record_use(f"{spec.name} (private {len(self.handles)})", handle)
        return handle

    def stop_all(self) -> list[str]:
        """Stop every instance, newest first (bounded); the errors, one line each."""
        errors: list[str] = []
        for handle in reversed(self.handles):
            try:
                handle.stop(STOP_TIMEOUT_S)
            except ServiceError as err:
                errors.append(err.message)
        return errors
