"""The plugin's command-line options and ini keys, and how they are read back.

Help texts are constants shared by an option and the ini key of the same name (as
pytest-timeout does), so both always describe the same thing. Reading them back into the
loader's `CommandLine` happens here too, so an option's name is written in this module
only. Precedence between the places a value comes from is the loader's
(`pytest_ws_resilience.config.loading`), not ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pytest_ws_resilience.config.loading import CommandLine
from pytest_ws_resilience.errors import WsConfigError

if TYPE_CHECKING:
    import pytest

__all__ = [
    "APP_HELP",
    "APP_SHARE_HELP",
    "APP_SUBPROCESS_HELP",
    "CHAOS_SEED_HELP",
    "EARLY_CLOSE_HELP",
    "ENV_HELP",
    "LOCUST_MASTER_HELP",
    "LOOP_SCOPES",
    "LOOP_SCOPE_HELP",
    "PATH_HELP",
    "REPORT_HELP",
    "REQUIRE_SERVICES_HELP",
    "SERVER_CMD_HELP",
    "URL_HELP",
    "LoopScope",
    "add_options",
    "chaos_seed_option",
    "command_line",
    "early_close",
    "ini_env",
    "locust_master_option",
    "loop_scope",
    "report_option",
]

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
APP_LIFESPAN_HELP = (
    "How --ws-app runs the app's ASGI lifespan: auto (default: when the app supports it), "
    "on, or off (e.g. Django Channels' ProtocolTypeRouter). Config: app_lifespan."
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
EARLY_CLOSE_HELP = (
    "true (default): when a test's body has passed and nothing set up after ws_client "
    "(or ws_client_factory) can use it, its clients' close frames go out at once, so "
    "the server answers while pytest reports the body; false: they close at teardown "
    "(for conftest hooks that still use a test's clients after its body)."
)

LOCUST_MASTER_HELP = (
    "ws_storm.distributed plays its runs on the Locust master already running at "
    "HOST:PORT (its web UI: ws-resilience-load --master --web-port PORT), with the "
    "workers started on other machines, instead of starting a master and local workers."
)

LoopScope = Literal["function", "session"]
#: Event-loop scopes the async fixtures can be built for (ini ``ws_loop_scope``).
LOOP_SCOPES: tuple[LoopScope, ...] = ("function", "session")


def add_options(parser: pytest.Parser) -> None:
    """Declare the options and ini keys (the entry point's ``pytest_addoption``)."""
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
        "--ws-app-lifespan",
        dest="ws_app_lifespan",
        metavar="auto|on|off",
        default=None,
        help=APP_LIFESPAN_HELP,
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
    group.addoption(
        "--ws-locust-master",
        dest="ws_locust_master",
        metavar="HOST:PORT",
        default=None,
        help=LOCUST_MASTER_HELP,
    )
    group.addoption("--ws-report", dest="ws_report", metavar="PATH", default=None, help=REPORT_HELP)
    parser.addini("ws_env", help=ENV_HELP, type="string", default="")
    parser.addini("ws_loop_scope", help=LOOP_SCOPE_HELP, type="string", default="function")
    parser.addini("ws_early_close", help=EARLY_CLOSE_HELP, type="bool", default=True)


def command_line(config: pytest.Config) -> CommandLine:
    """The options the settings loader takes, as given on the command line."""
    return CommandLine(
        env=config.getoption("ws_env"),
        url=config.getoption("ws_url"),
        path=config.getoption("ws_path"),
        app=config.getoption("ws_app"),
        app_subprocess=bool(config.getoption("ws_app_subprocess")),
        app_share=bool(config.getoption("ws_app_share")),
        app_lifespan=config.getoption("ws_app_lifespan", None),
        server_cmd=config.getoption("ws_server_cmd", None),
        require_services=bool(config.getoption("ws_require_services", False)),
    )


def ini_env(config: pytest.Config) -> str | None:
    """The ini key ``ws_env``; None when empty."""
    value = config.getini("ws_env")
    return value if isinstance(value, str) and value else None


def chaos_seed_option(config: pytest.Config) -> int | None:
    """``--ws-chaos-seed``; None when not given (the run draws one)."""
    seed = config.getoption("ws_chaos_seed", None)
    return seed if isinstance(seed, int) else None


def report_option(config: pytest.Config) -> str | None:
    """``--ws-report`` as given (an empty value too: `check_report_path` refuses it);
    None when not given."""
    raw = config.getoption("ws_report", None)
    return None if raw is None else str(raw)


def locust_master_option(config: pytest.Config) -> str | None:
    """``--ws-locust-master`` as given; None when not given."""
    value = config.getoption("ws_locust_master", None)
    return None if value is None else str(value)


def loop_scope(config: pytest.Config) -> LoopScope:
    """The ini key ``ws_loop_scope``, checked.

    Raises:
        WsConfigError: not one of `LOOP_SCOPES`; the message is one line.
    """
    value = config.getini("ws_loop_scope") or "function"
    for scope in LOOP_SCOPES:
        if value == scope:
            return scope
    raise WsConfigError(
        f"ini ws_loop_scope = {value!r} is invalid: expected one of {', '.join(LOOP_SCOPES)}"
    )


def early_close(config: pytest.Config) -> bool:
    """The ini key ``ws_early_close``, checked.

    Raises:
        WsConfigError: not a truth value pytest reads (true/false, yes/no, on/off,
            1/0); the message is one line.
    """
    try:
        return bool(config.getini("ws_early_close"))
    # pytest names the value it could not read, in a UsageError (pytest 9), a ValueError
    # or a TypeError (a TOML value of another type): any of them, for this one key
    # (pytest itself is not imported here: this module is pure).
    except Exception as err:
        raise WsConfigError(
            f"ini ws_early_close is invalid ({err}): expected true or false"
        ) from None
