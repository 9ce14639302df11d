"""pytest glue: options, markers, settings at configure time, the header, ``ws_env`` skips.

Thin on purpose: the rules live in `pytest_ws_resilience.config.loading` (settings and their
precedence) and `pytest_ws_resilience.plugin.markers` (marker help and the ``ws_env`` rule).
The loaded `WsSettings` is kept in ``config.stash[SETTINGS_KEY]`` for the fixtures.

Registered as the ``ws_resilience`` pytest11 entry point, so ``-p no:ws_resilience``
switches all of it off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.chaos.seeds import new_run_seed
from pytest_ws_resilience.config.app_path import parse_app_path
from pytest_ws_resilience.config.loading import CommandLine, load_settings, read_tool_config
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import shown
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.plugin import fixtures, load_fixtures
from pytest_ws_resilience.plugin import redacting as reporting
from pytest_ws_resilience.plugin import report as report_hooks
from pytest_ws_resilience.plugin import scheduling as scheduling_hooks
from pytest_ws_resilience.plugin import services as services_hooks
from pytest_ws_resilience.plugin.controller import (
    RunSeedController,
    SharedAppController,
    is_xdist_controller,
    shared_app_url,
    worker_chaos_seed,
)
from pytest_ws_resilience.plugin.markers import (
    MARKERS,
    security_skip_reason,
    ws_env_names,
    ws_env_skip_reason,
)
from pytest_ws_resilience.plugin.service_rules import services_marker_names
from pytest_ws_resilience.plugin.stash import (
    CHAOS_SEED_KEY,
    ISOLATION_REPORT_KEY,
    SETTINGS_KEY,
    WATCH_KEY,
)
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.asgi_import import check_app_importable, require_uvicorn

__all__ = [
    "APP_HELP",
    "APP_SUBPROCESS_HELP",
    "ENV_HELP",
    "PATH_HELP",
    "URL_HELP",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_pycollect_makeitem",
    "pytest_report_header",
    "pytest_runtest_call",
    "pytest_runtest_setup",
]

# Shared by the command-line option and the ini key of the same name (as pytest-timeout
# does), so both always describe the same thing.
ENV_HELP = (
    "environment profile to test against: local, staging, production, or one defined "
    "under [tool.ws_resilience.envs.NAME]. Precedence: --ws-env > WS_ENV > ini ws_env > "
    "local."
)
URL_HELP = (
    "URL (ws:// or wss://) of the WebSocket server under test, overriding the configured "
    "url for this run. Default: the embedded reference server."
)
PATH_HELP = "path of the WebSocket endpoint (starts with '/'), overriding the config key path."
APP_HELP = (
    "serve your ASGI app (FastAPI, Starlette, ...) with uvicorn on a free loopback port "
    "for the session and test it: 'module:attr', or 'module:factory()' to call a factory. "
    "The endpoint is --ws-path / config path. Needs the extra: "
    "pip install 'pytest-ws-resilience[asgi]'."
)
APP_SUBPROCESS_HELP = (
    "serve the --ws-app app with 'python -m uvicorn' in a subprocess instead of a thread "
    "of the test process (for apps that need a process of their own)."
)
APP_SHARE_HELP = (
    "under pytest-xdist, serve one --ws-app app for all workers (started and stopped by "
    "the controller) instead of one per worker."
)
CHAOS_SEED_HELP = (
    "seed of the chaos proxies' random faults (ws_chaos); a failing test prints the seed "
    "that replays it. Default: drawn at random for each run."
)
REQUIRE_SERVICES_HELP = (
    "fail, instead of skip, the tests whose services cannot run (no Docker daemon, a "
    "service that never got healthy); for CI. Also set by WS_REQUIRE_SERVICES=1."
)
SERVER_CMD_HELP = (
    "run this local command as the server under test, e.g. "
    "--ws-server-cmd='python -m myapp --port {port}': {port} is filled with a free "
    "loopback port, and the server counts as up after a real WebSocket handshake."
)
REPORT_HELP = (
    "write the run's WebSocket report to PATH: per-test JSON, or a self-contained HTML "
    "page with charts when PATH ends in .html."
)
LOOP_SCOPE_HELP = (
    "event-loop scope of the async fixtures (ws_client_factory, ws_client, ws_pool): "
    "function (default) or session (pooled connections then live across tests; run the "
    "tests in the session loop too)."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ws-resilience", "WebSocket resilience testing (pytest-ws-resilience)")
    group.addoption("--ws-env", dest="ws_env", metavar="NAME", default=None, help=ENV_HELP)
    group.addoption("--ws-url", dest="ws_url", metavar="URL", default=None, help=URL_HELP)
    group.addoption("--ws-path", dest="ws_path", metavar="PATH", default=None, help=PATH_HELP)
    group.addoption("--ws-app", dest="ws_app", metavar="MODULE:ATTR", default=None, help=APP_HELP)
    group.addoption(
        "--ws-app-subprocess",
        dest="ws_app_subprocess",
        action="store_true",
        default=False,
        help=APP_SUBPROCESS_HELP,
    )
    group.addoption(
        "--ws-app-share",
        dest="ws_app_share",
        action="store_true",
        default=False,
        help=APP_SHARE_HELP,
    )
    group.addoption(
        "--ws-chaos-seed",
        dest="ws_chaos_seed",
        metavar="N",
        type=int,
        default=None,
        help=CHAOS_SEED_HELP,
    )
    group.addoption(
        "--ws-require-services",
        dest="ws_require_services",
        action="store_true",
        default=False,
        help=REQUIRE_SERVICES_HELP,
    )
    group.addoption(
        "--ws-server-cmd", dest="ws_server_cmd", metavar="CMD", default=None, help=SERVER_CMD_HELP
    )
    group.addoption("--ws-report", dest="ws_report", metavar="PATH", default=None, help=REPORT_HELP)
    parser.addini("ws_env", help=ENV_HELP, type="string", default="")
    parser.addini("ws_loop_scope", help=LOOP_SCOPE_HELP, type="string", default="function")


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


def _load(config: pytest.Config, run_secret: str | None) -> WsSettings:
    path = _pyproject_path(config)
    ini_env = config.getini("ws_env")
    cli = CommandLine(
        env=config.getoption("ws_env"),
        url=config.getoption("ws_url"),
        path=config.getoption("ws_path"),
        app=config.getoption("ws_app"),
        app_subprocess=bool(config.getoption("ws_app_subprocess")),
        app_share=bool(config.getoption("ws_app_share")),
        server_cmd=config.getoption("ws_server_cmd", None),
        require_services=bool(config.getoption("ws_require_services", False)),
    )
    return load_settings(
        cli=cli,
        ini_env=ini_env if isinstance(ini_env, str) and ini_env else None,
        environ=os.environ,
        tool_config=read_tool_config(path),
        tool_config_origin=_shown_path(path, config),
        app_dirs=tuple(dict.fromkeys([str(config.rootpath), str(config.invocation_params.dir)])),
        run_secret=run_secret,
        shared_app_url=shared_app_url(config),
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    if config.getoption("help", False):
        return  # --help must keep working while the user fixes a broken config
    context = services_hooks.run_context(config)
    try:
        settings = _load(config, context.run_secret)
        if settings.server.app is not None:
            _prepare_app(config, settings)
    except WsConfigError as err:
        # A UsageError ends the run with exit code 4 and one "ERROR: ..." line.
        raise pytest.UsageError(str(err)) from None
    config.stash[SETTINGS_KEY] = settings
    services_hooks.configure(config, context)
    if settings.server.app is not None and settings.server.app_share:
        if is_xdist_controller(config):
            config.pluginmanager.register(SharedAppController(settings), "ws_resilience.shared_app")
    seed = config.getoption("ws_chaos_seed")
    if seed is None:
        seed = worker_chaos_seed(config)
    config.stash[CHAOS_SEED_KEY] = seed if seed is not None else new_run_seed()
    if is_xdist_controller(config):
        config.pluginmanager.register(
            RunSeedController(config.stash[CHAOS_SEED_KEY]), "ws_resilience.run_seed"
        )
    loop_scope = config.getini("ws_loop_scope") or "function"
    if loop_scope not in fixtures.LOOP_SCOPES:
        raise pytest.UsageError(
            f"ini ws_loop_scope = {loop_scope!r} is invalid: expected one of "
            f"{', '.join(fixtures.LOOP_SCOPES)}"
        )
    # Fixtures and report hooks are plugins of their own, so their names never shadow
    # these hooks; the async fixtures are built for the configured event-loop scope.
    config.pluginmanager.register(fixtures, "ws_resilience.fixtures")
    config.pluginmanager.register(
        fixtures.loop_scoped_fixtures(loop_scope), "ws_resilience.loop_fixtures"
    )
    config.pluginmanager.register(
        load_fixtures.loop_scoped_load_fixtures(loop_scope), "ws_resilience.load_fixtures"
    )
    config.pluginmanager.register(reporting, "ws_resilience.reporting")
    scheduling_hooks.configure(config)
    report_hooks.configure(config)


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
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return []
    if settings.server.app is not None:
        how = " in a subprocess" if settings.server.app_subprocess else ""
        url = f"app {settings.server.app} (served by uvicorn{how})"
    elif settings.server.command is not None:
        url = f"command {redact(settings.server.command)!r} (--ws-server-cmd)"
    elif settings.server.url is None:
        url = "embedded reference server"
    else:
        url = f"{redact(settings.server.url)} ({settings.server.url_source})"
    path = f", path={settings.server.path}" if settings.server.path != "/" else ""
    timeouts = ", ".join(
        f"{name.removesuffix('_timeout')}={shown(value)}"
        for name, value in settings.timeouts.items()
    )
    return [
        f"ws-resilience: env={settings.env} ({settings.env_source}), url={url}{path}",
        f"ws-resilience timeouts: {timeouts}",
        f"ws-resilience chaos seed: {config.stash[CHAOS_SEED_KEY]} "
        f"({'--ws-chaos-seed' if config.getoption('ws_chaos_seed') is not None else 'random'})",
    ]


#: Markers whose arguments are checked at collection: marker name -> its validator.
_MARKER_ARGUMENT_CHECKS: dict[str, Callable[..., tuple[str, ...]]] = {
    "ws_env": ws_env_names,
    "ws_services": services_marker_names,
}


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, Any]:
    """Turn a malformed ``ws_env`` or ``ws_services`` marker into a collection error
    naming the test."""
    result = yield
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, pytest.Item):
            for marker_name, check in _MARKER_ARGUMENT_CHECKS.items():
                for marker in item.iter_markers(marker_name):
                    try:
                        check(marker.args, test=item.name)
                    except ValueError as err:
                        raise collector.CollectError(str(err)) from None
    return result


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``ws_env`` tests of other envs, and ``websocket_security`` tests without auth.

    For ``ws_env`` the closest marker wins.
    A skip marker, rather than `pytest.skip` in a hook, so that ``-rs`` points at the
    test and the skip happens before any fixture starts.
    """
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return
    security_reason = security_skip_reason(
        embedded=settings.server.url is None and settings.server.app is None,
        auth_configured=settings.keys.configured,
    )
    for item in items:
        if security_reason and item.get_closest_marker("websocket_security") is not None:
            item.add_marker(pytest.mark.skip(reason=security_reason))
        marker = item.get_closest_marker("ws_env")
        if marker is None:
            continue
        try:
            names = ws_env_names(marker.args, test=item.name)
        except ValueError:
            continue  # reported by pytest_runtest_setup
        reason = ws_env_skip_reason(names, settings.env)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a malformed ``ws_env`` marker on items the Python collector did not check."""
    marker = item.get_closest_marker("ws_env")
    if marker is not None:
        try:
            ws_env_names(marker.args, test=item.name)
        except ValueError as err:
            pytest.fail(str(err), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Fail a test whose users saw each other's data; report it once.

    A test whose body passed fails here with the isolation report. A test that failed
    on its own keeps its failure, with the report added to it (not as a second error).
    """
    watch = item.stash.get(WATCH_KEY, None)
    try:
        result = yield
    except BaseException:
        if watch is not None and watch.guard is not None:
            report = watch.guard.verdict()
            if report is not None:
                item.stash[ISOLATION_REPORT_KEY] = report
        raise
    if watch is not None and watch.guard is not None:
        report = watch.guard.verdict()
        if report is not None:
            pytest.fail(report, pytrace=False)
    return result
