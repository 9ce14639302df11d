"""The plugin's entry point (pytest11 ``ws_resilience``): options, then one role object.

``pytest_addoption`` declares the options (`pytest_ws_resilience.plugin.options`).
``pytest_configure`` registers the markers, loads the settings once (the rules and their
precedence are `pytest_ws_resilience.config.loading`'s), and registers, for this process:

- ONE role object (as pytest-xdist registers its ``DSession`` or ``WorkerInteractor``):
  `WsSession` without xdist, `WsController` on an xdist controller, `WsWorker` on a
  worker (`pytest_ws_resilience.plugin.roles` decides which); it holds every other hook;
- the fixtures: the loop-agnostic ones (`pytest_ws_resilience.plugin.fixtures`) and the
  loop-bound ones built for the ini ``ws_loop_scope``
  (`pytest_ws_resilience.plugin.loop_fixtures`). They are plugins of their own, so
  their names never shadow hooks.

``-p no:ws_resilience`` switches all of it off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_ws_resilience.config.app_path import parse_app_path
from pytest_ws_resilience.config.loading import load_settings, read_tool_config
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.plugin import fixtures, fuzz_fixture, options
from pytest_ws_resilience.plugin.handoff import RunHandoff
from pytest_ws_resilience.plugin.loop_fixtures import loop_scoped_fixtures
from pytest_ws_resilience.plugin.markers import MARKERS
from pytest_ws_resilience.plugin.redacting import redact_debug_log
from pytest_ws_resilience.plugin.report import check_report_path
from pytest_ws_resilience.plugin.roles import Role, role_of
from pytest_ws_resilience.plugin.session import WsSession
from pytest_ws_resilience.plugin.stash import RUN_KEY, SERVICES_KEY, SETTINGS_KEY
from pytest_ws_resilience.servers.asgi_import import check_app_importable, require_uvicorn

__all__ = ["ROLE_PLUGIN_NAMES", "pytest_addoption", "pytest_configure"]

#: The name each role object is registered under (``config.pluginmanager.get_plugin``).
ROLE_PLUGIN_NAMES: dict[Role, str] = {
    "single": "ws_resilience.session",
    "controller": "ws_resilience.controller",
    "worker": "ws_resilience.worker",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)
    fuzz_fixture.add_fuzz_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    if config.getoption("help", False):
        return  # --help must keep working while the user fixes a broken config
    role = role_of(config)
    run = _run_handoff(config, role)
    try:
        settings = _load(config, run)
        if settings.server.app is not None:
            _prepare_app(config, settings)
        loop_scope = options.loop_scope(config)
        early_close = options.early_close(config)
    except WsConfigError as err:
        # A UsageError ends the run with exit code 4 and one "ERROR: ..." line.
        raise pytest.UsageError(str(err)) from None
    finally:
        redact_debug_log(config)  # the run's secret is registered by now, if drawn
    raw_report = options.report_option(config)
    report_path = None
    if raw_report is not None and role != "worker":  # a worker hands its records over
        report_path = check_report_path(raw_report, config.invocation_params.dir)

    session = _role_class(role)(config, settings, run, report_path=report_path)
    config.stash[SETTINGS_KEY] = settings
    config.stash[RUN_KEY] = run
    config.stash[SERVICES_KEY] = session.services
    session.services.export_environ()  # restored by the session's pytest_unconfigure
    config.pluginmanager.register(session, ROLE_PLUGIN_NAMES[role])
    config.pluginmanager.register(fixtures, "ws_resilience.fixtures")
    config.pluginmanager.register(
        loop_scoped_fixtures(loop_scope, session.current_test, early_close=early_close),
        "ws_resilience.loop_fixtures",
    )


def _role_class(role: Role) -> type[WsSession]:
    """The role object's class; the controller's and worker's modules are imported only
    in their processes."""
    if role == "controller":
        from pytest_ws_resilience.plugin.controller import WsController

        return WsController
    if role == "worker":
        from pytest_ws_resilience.plugin.worker import WsWorker

        return WsWorker
    return WsSession


def _run_handoff(config: pytest.Config, role: Role) -> RunHandoff:
    """The run's `RunHandoff`: received by a worker, drawn by the run's first process
    (and by a worker whose controller sent none)."""
    if role == "worker":
        received = RunHandoff.from_workerinput(getattr(config, "workerinput", None))
        if received is not None:
            return received
    return RunHandoff.new(chaos_seed=options.chaos_seed_option(config))


def _pyproject_path(config: pytest.Config) -> Path:
    """The pyproject.toml holding ``[tool.ws_resilience]``: the inifile, else rootdir's."""
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return config.inipath
    return config.rootpath / "pyproject.toml"


def _shown_path(path: Path, config: pytest.Config) -> str:
    """The file as errors name it: relative to where pytest was started, when inside it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def _load(config: pytest.Config, run: RunHandoff) -> WsSettings:
    """The run's settings, loaded once; nothing changes them afterwards."""
    path = _pyproject_path(config)
    return load_settings(
        cli=options.command_line(config),
        ini_env=options.ini_env(config),
        environ=os.environ,
        tool_config=read_tool_config(path),
        tool_config_origin=_shown_path(path, config),
        app_dirs=tuple(dict.fromkeys([str(config.rootpath), str(config.invocation_params.dir)])),
        run_secret=run.run_secret,
        shared_app_url=run.shared_app_url,
        # Where local commands run: beside the configuration that names them.
        project_dir=str(path.parent if path is not None else config.rootpath),
    )


def _prepare_app(config: pytest.Config, settings: WsSettings) -> None:
    """Check ``--ws-app`` before any test: uvicorn installed, module and attribute found.

    The rootdir and the invocation directory go first on ``sys.path`` (as uvicorn's
    ``--app-dir``), so ``myapp:app`` next to the tests imports. An exception raised by
    the app's own code is not checked here: the first test that needs the server reports
    it with its traceback (see the ``ws_server`` fixture).
    """
    assert settings.server.app is not None
    if settings.server.app_source == "--ws-app":
        subject = f"--ws-app={settings.server.app}"
    else:
        subject = f"{_shown_path(_pyproject_path(config), config)} [tool.ws_resilience] app"
    require_uvicorn(subject)
    for directory in reversed(settings.server.app_dirs):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    check_app_importable(
        parse_app_path(settings.server.app),
        subject=subject,
        execute=not settings.server.app_subprocess,
        env=settings.server.app_env,
    )
