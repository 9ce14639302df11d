"""pytest glue of the services: the ``ws_services`` fixture and marker,
``ws_service_factory``, ``--ws-require-services``, ``--ws-server-cmd``, and who starts,
reaps and removes what in a run.

Who does what:

- the run's first process (the only one without xdist, else the xdist controller)
  draws the run id (every container's run label), a state directory and, when no key
  is configured, the run's HS256 secret; it reaps the leftovers of dead runs at session
  start, and removes every service of the run once at the end, after all workers
  finished;
- xdist workers get those through ``workerinput``; the first to need a service starts
  it (file lock), the others attach to it; a worker never removes a shared service;
- every process removes its private services (``ws_service_factory``) at test teardown.

The rules (marker arguments, skip or fail, the reasons) are in
`pytest_ws_resilience.plugin.service_rules`; starting, sharing and reaping in the library
modules of this package.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

import pytest

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import ServiceError
from pytest_ws_resilience.plugin import service_rules as rules
from pytest_ws_resilience.plugin.controller import is_xdist_controller
from pytest_ws_resilience.plugin.fixtures import test_watch
from pytest_ws_resilience.plugin.stash import SERVICES_STARTED_KEY, SETTINGS_KEY
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
from pytest_ws_resilience.servers.handle import ServiceHandle
from pytest_ws_resilience.servers.images import HOST_IMAGE, ensure_host_image
from pytest_ws_resilience.servers.labels import RUN_ID_ENV, RUN_OWNER_PID_ENV, new_run_id
from pytest_ws_resilience.servers.reaper import reap_leftovers, remove_run
from pytest_ws_resilience.servers.sharing import SharedServices
from pytest_ws_resilience.servers.under_test import SERVER_CMD_SECRET_ENV, token_factory_for

__all__ = [
    "RUNTIME_KEY",
    "WORKER_INPUT_KEY",
    "RunContext",
    "ServiceFactory",
    "ServiceRegistry",
    "ServicesController",
    "ServicesRuntime",
    "configure",
    "ws_service_factory",
    "ws_service_specs",
    "ws_services",
]

#: ``workerinput`` key: the run context the controller hands to each xdist worker.
WORKER_INPUT_KEY = "ws_resilience_services"
#: Log lines of a service attached to the report of a failed test that used it.
LOG_TAIL_LINES = 50
#: Grace between SIGTERM and SIGKILL when the plugin stops a service.
STOP_TIMEOUT_S = 10.0
_SERVICE_FIXTURES = frozenset({"ws_services", "ws_service_factory"})

Role = Literal["single", "controller", "worker"]


@dataclass(frozen=True)
class RunContext:
    """What every process of one run agrees on: handed from the controller to workers."""

    run_id: str
    #: The pid owning the run's containers (the controller's): a container a worker
    #: started is not taken for a leftover when that worker exits first.
    owner_pid: int
    state_dir: str
    #: The run's HS256 secret, used where no key is configured.
    run_secret: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def new(cls) -> RunContext:
        run_id = new_run_id()
        return cls(
            run_id=run_id,
            owner_pid=os.getpid(),
            # Created on first use only: most runs never start a service.
            state_dir=str(Path(tempfile.gettempdir()) / f"ws-resilience-run-{run_id}"),
            # Used only where no key is configured (the loader decides).
            run_secret=secrets.token_urlsafe(32),
        )


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

    One per pytest process, kept in ``config.stash[RUNTIME_KEY]``.
    """

    def __init__(self, config: pytest.Config, role: Role, context: RunContext) -> None:
        self.config = config
        self.role = role
        self.context = context
        self.sharing = SharedServices(Path(context.state_dir), context.run_id)
        #: Specs added in code (``ws_service_specs``, ``ws_services.add``).
        self.specs: dict[str, ServiceSpec] = {}
        self.handles: dict[str, ServiceHandle] = {}
        #: A service that failed once is not started again by this process (its wait
        #: may be a minute): name -> the failure's reason and full text.
        self.failures: dict[str, _Unavailable] = {}
        #: The test being set up, run or torn down (its services are recorded on it).
        self.current_item: pytest.Item | None = None
        self.reaped: list[str] = []
        self.removed: int | None = None
        self._reap_done = False
        self._finished = False
        self._tokens: TokenFactory | None = None
        self._saved_environ: dict[str, str | None] = {}

    @property
    def settings(self) -> WsSettings:
        return self.config.stash.get(SETTINGS_KEY, None) or WsSettings()

    @property
    def owns_run(self) -> bool:
        """True in the process that reaps at the start and removes at the end."""
        return self.role != "worker"

    @property
    def state_dir(self) -> Path:
        return Path(self.context.state_dir)

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

    def needed_names(self, item: pytest.Item) -> tuple[str, ...]:
        """The services a test needs: the env's ``services`` and its ``ws_services`` marks."""
        names = list(self.settings.services.needed)
        for marker in item.iter_markers("ws_services"):
            for name in rules.services_marker_names(marker.args, test=item.name):
                if name not in names:
                    names.append(name)
        return tuple(names)

    # -- starting ----------------------------------------------------------------------

    def tokens(self) -> TokenFactory:
        """Mints the tokens of ``auth=True`` health checks: the run's `ws_tokens` key."""
        if self._tokens is None:
            self._tokens = token_factory_for(self.settings)
        return self._tokens

    def _prepared(self, spec: ServiceSpec) -> ServiceSpec:
        """The spec as started: with the run's HS256 secret in ``$WS_RESILIENCE_SECRET``
        (unless it sets that variable), so the service accepts the run's tokens."""
        tokens = self.tokens()
        env = dict(spec.env or {})
        if tokens.algorithm != "HS256" or tokens.secret is None or SERVER_CMD_SECRET_ENV in env:
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
        # The state directory tells the run's owner that containers may need removing.
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.reap_once()
        if spec.image == HOST_IMAGE:
            client = docker_client()
            try:
                ensure_host_image(client)
            finally:
                client.close()

    def _new_handle(self, spec: ServiceSpec) -> ServiceHandle:
        return ServiceHandle(
            spec,
            run_id=self.context.run_id,
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
        test = f" for {self.current_item.name}" if self.current_item is not None else ""
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
        self.config.stash.setdefault(SERVICES_STARTED_KEY, []).append(line)

    # -- what a test used -----------------------------------------------------------------

    def record_use(self, title: str, handle: ServiceHandle) -> None:
        item = self.current_item
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
        if self.current_item is not None:
            self.current_item.stash[_SKIP_REASON_KEY] = failure.reason
        pytest.skip(redact(failure.reason))

    # -- run-level chores ---------------------------------------------------------------

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
        client = docker_client()
        try:
            self.reaped.extend(reap_leftovers(client, current_run=self.context.run_id))
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
        if docker_unavailable_reason() is None:
            # Containers no record names: a worker that died between start and record.
            client = docker_client()
            try:
                removed += remove_run(client, self.context.run_id, STOP_TIMEOUT_S)
            finally:
                client.close()
        self.removed = removed
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def export_environ(self) -> None:
        """Make the library's labels agree with the run (restored by `restore_environ`)."""
        for key, value in (
            (RUN_ID_ENV, self.context.run_id),
            (RUN_OWNER_PID_ENV, str(self.context.owner_pid)),
        ):
            self._saved_environ[key] = os.environ.get(key)
            os.environ[key] = value

    def restore_environ(self) -> None:
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()


#: The runtime of this pytest process.
RUNTIME_KEY = pytest.StashKey[ServicesRuntime]()
#: Per test: the handles it used, by report-section title.
_USED_KEY = pytest.StashKey[dict[str, ServiceHandle]]()
#: Per test: the reason it was skipped for (the skip is then shown at the test).
_SKIP_REASON_KEY = pytest.StashKey[str]()


# -- configure ----------------------------------------------------------------------------


def _role(config: pytest.Config) -> Role:
    if hasattr(config, "workerinput"):
        return "worker"
    return "controller" if is_xdist_controller(config) else "single"


def run_context(config: pytest.Config) -> RunContext:
    """What every process of this run agrees on: drawn here by the run's first process,
    handed to xdist workers (which find it in ``workerinput``)."""
    if _role(config) == "worker":
        given = getattr(config, "workerinput", {}).get(WORKER_INPUT_KEY)
        if given is not None:
            return RunContext(**given)
    return RunContext.new()


def configure(config: pytest.Config, context: RunContext) -> None:
    """Called by the plugin's pytest_configure once the settings are stored: sets up this
    process's `ServicesRuntime` and registers the hooks (the xdist controller's only on
    the controller)."""
    role = _role(config)
    runtime = ServicesRuntime(config, role, context)
    runtime.export_environ()
    config.stash[RUNTIME_KEY] = runtime
    config.pluginmanager.register(sys.modules[__name__], "ws_resilience.services")
    if role == "controller":
        config.pluginmanager.register(
            ServicesController(runtime), "ws_resilience.services_controller"
        )


def _runtime(config: pytest.Config) -> ServicesRuntime | None:
    return config.stash.get(RUNTIME_KEY, None)


# -- fixtures -----------------------------------------------------------------------------


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


class ServiceFactory(Protocol):
    def __call__(self, spec: ServiceSpec | str, **changes: Any) -> ServiceHandle: ...


@pytest.fixture(scope="session")
def ws_service_specs() -> Iterable[ServiceSpec]:
    """Services defined in code: override it (session scope, in a conftest) to return
    `ServiceSpec` objects; they join those of ``[tool.ws_resilience.services]``."""
    return ()


@pytest.fixture(scope="session")
def ws_services(
    pytestconfig: pytest.Config, ws_service_specs: Iterable[ServiceSpec]
) -> ServiceRegistry:
    """``ws_services["name"] -> ServiceHandle``: the run's services, started lazily,
    healthy by a real WebSocket handshake, shared across xdist workers, removed once
    at the end of the run."""
    runtime = _runtime(pytestconfig)
    if runtime is None:  # pragma: no cover - the plugin's configure always sets it
        raise RuntimeError("the ws-resilience plugin is not configured")
    for spec in ws_service_specs:
        runtime.add(spec)
    return ServiceRegistry(runtime)


@pytest.fixture
def ws_service_factory(
    pytestconfig: pytest.Config, ws_services: ServiceRegistry
) -> Iterator[ServiceFactory]:
    """``ws_service_factory(spec_or_name, **changes) -> ServiceHandle``: a private
    instance of a service for this test, for container chaos (``pause``, ``unpause``,
    ``kill``, ``restart``); removed at teardown (bounded). ``changes`` replace fields
    of the spec (e.g. ``env=...``). Skipped or failed like ``ws_services``."""
    runtime = _runtime(pytestconfig)
    assert runtime is not None
    handles: list[ServiceHandle] = []

    def make(spec: ServiceSpec | str, **changes: Any) -> ServiceHandle:
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
        handles.append(handle)
        runtime.record_use(f"{spec.name} (private {len(handles)})", handle)
        return handle

    try:
        yield make
    finally:
        errors: list[str] = []
        for handle in reversed(handles):
            try:
                handle.stop(STOP_TIMEOUT_S)
            except ServiceError as err:
                errors.append(err.message)
        if errors:
            pytest.fail("; ".join(errors), pytrace=False)


@pytest.fixture(autouse=True)
def _ws_services_marker(request: pytest.FixtureRequest) -> None:
    """Before the test's own fixtures: its services (marker, env) healthy, or a skip."""
    runtime = _runtime(request.config)
    if runtime is None:
        return
    try:
        names = runtime.needed_names(request.node)
    except ValueError as err:  # a malformed marker on an item no collector checked
        message = str(err)
    else:
        message = ""
    if message:
        pytest.fail(message, pytrace=False)
    if not names and _SERVICE_FIXTURES.isdisjoint(request.fixturenames):
        return
    # Specs a module or class overrides ws_service_specs with join the run's.
    for spec in request.getfixturevalue("ws_service_specs"):
        runtime.add(spec)
    registry: ServiceRegistry = request.getfixturevalue("ws_services")
    for name in names:
        registry[name]


# -- hooks --------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The run's owner reaps dead runs' containers before any worker or test starts,
    when services are configured (otherwise on the first Docker service's start)."""
    runtime = _runtime(session.config)
    settings = runtime.settings if runtime is not None else None
    if runtime is None or settings is None or not runtime.owns_run:
        return
    if any(spec.backend == "docker" for spec in settings.services.specs.values()):
        runtime.reap_once()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    runtime = _runtime(item.config)
    if runtime is not None:
        runtime.current_item = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        runtime = _runtime(item.config)
        if runtime is not None:
            runtime.current_item = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show a services skip at the test (not in this file); attach the service logs of
    a failed test that used services."""
    report = yield
    reason = item.stash.get(_SKIP_REASON_KEY, None)
    if report.skipped and reason is not None and isinstance(report.longrepr, tuple):
        path, line = item.reportinfo()[:2]
        report.longrepr = (os.fspath(path), (line or 0) + 1, report.longrepr[2])
    if report.failed:
        attached = item.stash.setdefault(_LOGS_ATTACHED_KEY, set())
        for title, handle in item.stash.get(_USED_KEY, {}).items():
            if title in attached:
                continue
            attached.add(title)
            try:
                logs = handle.logs(tail=LOG_TAIL_LINES)
            except Exception as err:  # the logs are a help, never a second failure
                logs = f"(logs unavailable: {type(err).__name__}: {err})"
            report.sections.append((f"ws-service {title}", redact(logs or "(no output)")))
    return report


#: Per test: the titles whose logs are already in a report (each is attached once).
_LOGS_ATTACHED_KEY = pytest.StashKey[set[str]]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    runtime = _runtime(config)
    if runtime is None:
        return []
    settings = runtime.settings
    lines: list[str] = []
    specs = settings.services.specs
    if specs or settings.services.needed:
        described = ", ".join(
            f"{name} ({spec.image if spec.backend == 'docker' else 'process'})"
            for name, spec in specs.items()
        )
        if settings.services.required:
            policy = f"unavailable -> fail ({settings.services.required_source})"
        else:
            policy = "unavailable -> skip (--ws-require-services: fail)"
        every = (
            f"; every test needs {', '.join(settings.services.needed)}"
            if settings.services.needed
            else ""
        )
        lines.append(f"ws-resilience services: {described or 'none defined'}{every}; {policy}")
    return lines


@pytest.hookimpl(trylast=True)  # after xdist's own: every worker has finished
def pytest_sessionfinish(session: pytest.Session) -> None:
    runtime = _runtime(session.config)
    if runtime is None:
        return
    runtime.finish()  # the run's owner only: a worker never removes a shared service


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runtime = _runtime(config)
    if runtime is None or not runtime.owns_run:
        return
    if runtime.reaped:
        terminalreporter.write_line(
            f"ws-resilience services: reaped {len(runtime.reaped)} leftover container(s) of "
            f"dead runs: {', '.join(runtime.reaped)}"
        )
    if runtime.removed:
        terminalreporter.write_line(
            f"ws-resilience services: removed {runtime.removed} service(s) of run "
            f"{runtime.context.run_id} at the end"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    runtime = _runtime(config)
    if runtime is None:
        return
    try:
        runtime.finish()  # a run that ended before sessionfinish (usage error, crash)
    finally:
        runtime.restore_environ()


class ServicesController:
    """xdist controller hooks: hand the run context (run id, owner pid, state
    directory, run secret) to each worker. Registered only on a controller, so xdist's
    hooks are never declared where xdist is absent."""

    def __init__(self, runtime: ServicesRuntime) -> None:
        self.runtime = runtime

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKER_INPUT_KEY] = dataclasses.asdict(self.runtime.context)
