"""``--ws-app``: the user's own ASGI app served by uvicorn, as users run it.

pytester projects hold small FastAPI and Starlette apps that verify the plugin's JWTs
with pyjwt (the secret comes from the variable named by ``jwt_secret_env``), real
sockets throughout. Pure helpers (import paths, settings precedence) are unit-tested at
the end; the runners themselves in test_asgi_thread.py and test_asgi_process.py.
"""

from __future__ import annotations

import importlib
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.config.app_path import AppPath, parse_app_path
from pytest_ws_resilience.config.loading import CommandLine, load_settings
from pytest_ws_resilience.errors import WsConfigError

pytestmark = pytest.mark.websocket_integration

# The pytester runs below are in-process, and pytester forgets every module a run
# imported. C extensions (httptools' parser, pydantic-core) do not survive being
# imported again in one process, so the web stack is imported here, once, and kept.
for _module in (
    "fastapi",
    "starlette.applications",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
):
    importlib.import_module(_module)
# The websockets protocol ws="auto" picks: the sans-I/O one where uvicorn has it.
try:
    importlib.import_module("uvicorn.protocols.websockets.websockets_sansio_impl")
except ModuleNotFoundError:  # an older uvicorn (the floor of the asgi extra)
    importlib.import_module("uvicorn.protocols.websockets.websockets_impl")

# Both apps speak the same small protocol: the token comes in ``?token=``; a valid one
# gets {"type": "connection_established", "user_id"}, and {"type": "say", "text"} is
# answered with {"type": "said", "user_id", "text"} to the sender's connections only,
# or to everyone when APP_LEAK=1 (the bug ws_isolation must catch). The lifespan writes
# "start" / "stop" lines to APP_EVENTS, and raises when APP_FAIL_LIFESPAN is set.
_COMMON = """
import os

import jwt

CONNECTIONS = {}  # user id -> set of websockets


def user_of(token):
    try:
        claims = jwt.decode(token or "", os.environ["APP_JWT_SECRET"], algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    return claims["sub"]


def record(event):
    path = os.environ.get("APP_EVENTS")
    if path:
        with open(path, "a") as fh:
            fh.write(event + "\\n")


def start():
    record("start")
    if os.environ.get("APP_FAIL_LIFESPAN"):
        raise RuntimeError("database unreachable at startup")


def recipients(user_id):
    if os.environ.get("APP_LEAK") == "1":
        return [ws for group in CONNECTIONS.values() for ws in group]
    return list(CONNECTIONS.get(user_id, ()))
"""

FASTAPI_APP = (
    _COMMON
    + """
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket, WebSocketDisconnect


@asynccontextmanager
async def lifespan(app):
    start()
    yield
    record("stop")


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws")
async def endpoint(websocket: WebSocket):
    user_id = user_of(websocket.query_params.get("token"))
    if user_id is None:
        await websocket.close(code=1008)  # before accept: an HTTP 403 handshake answer
        return
    await websocket.accept()
    CONNECTIONS.setdefault(user_id, set()).add(websocket)
    await websocket.send_json({"type": "connection_established", "user_id": user_id})
    try:
        while True:
            message = await websocket.receive_json()
            said = {"type": "said", "user_id": user_id, "text": message.get("text", "")}
            for ws in recipients(user_id):
                await ws.send_json(said)
    except WebSocketDisconnect:
        pass
    finally:
        CONNECTIONS[user_id].discard(websocket)
"""
)

STARLETTE_APP = (
    _COMMON
    + """
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect


async def endpoint(websocket):
    user_id = user_of(websocket.query_params.get("token"))
    if user_id is None:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    CONNECTIONS.setdefault(user_id, set()).add(websocket)
    await websocket.send_json({"type": "connection_established", "user_id": user_id})
    try:
        async for message in websocket.iter_json():
            said = {"type": "said", "user_id": user_id, "text": message.get("text", "")}
            for ws in recipients(user_id):
                await ws.send_json(said)
    except WebSocketDisconnect:
        pass
    finally:
        CONNECTIONS[user_id].discard(websocket)


@asynccontextmanager
async def lifespan(app):
    start()
    yield
    record("stop")


def create_app():
    return Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
"""
)

# The suite a user writes against their app: auth, rejection, isolation.
USER_SUITE = """
import pytest

from pytest_ws_resilience.errors import WsAuthError


@pytest.mark.asyncio
async def test_a_user_talks_to_the_app(ws_client, ws_user):
    hello = await ws_client.expect(type="connection_established")
    assert hello["user_id"] == ws_user.id
    await ws_client.send_json({"type": "say", "text": "hello from the test"})
    said = await ws_client.expect(type="said")
    assert said == {"type": "said", "user_id": ws_user.id, "text": "hello from the test"}


@pytest.mark.asyncio
async def test_a_token_signed_with_another_key_is_rejected(ws_client_factory, ws_tokens, ws_user):
    with pytest.raises(WsAuthError, match="403"):
        await ws_client_factory(ws_user, token=ws_tokens.wrong_key(ws_user))


@pytest.mark.asyncio
async def test_users_see_only_their_own_messages(ws_client_factory, ws_isolation):
    alice, bob = await ws_client_factory(), await ws_client_factory()
    for client in (alice, bob):
        await client.expect(type="connection_established")
    await alice.send_json({"type": "say", "text": "alice's private plan"})
    await alice.expect(type="said", user_id=alice.user.id)
    await bob.send_json({"type": "say", "text": "bob's quiet answer"})
    await bob.expect(type="said", user_id=bob.user.id)
    assert ws_isolation.checks > 0


def test_the_server_is_the_app(ws_server):
    assert ws_server.url.startswith("ws://127.0.0.1:") and ws_server.url.endswith("/ws")
    assert ws_server.app is not None and not ws_server.is_embedded
"""

PYPROJECT = """
[tool.pytest.ini_options]
asyncio_mode = "strict"
asyncio_default_fixture_loop_scope = "function"
asyncio_default_test_loop_scope = "function"

[tool.ws_resilience]
path = "/ws"
jwt_secret_env = "APP_JWT_SECRET"
auth_methods = ["query"]
{extra}
"""


class AppProject:
    """A pytester project holding both apps and a suite; ``events`` logs the lifespans."""

    def __init__(self, pytester: pytest.Pytester, events: Path) -> None:
        self.pytester = pytester
        self.events = events

    def write(self, *, extra: str = "", tests: str = USER_SUITE) -> AppProject:
        self.pytester.makepyprojecttoml(PYPROJECT.format(extra=extra))
        self.pytester.makepyfile(myapp=FASTAPI_APP, starapp=STARLETTE_APP)
        self.pytester.makepyfile(test_user_suite=tests)
        return self

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest("-p", "ws_resilience", *args)

    @property
    def lifespan_events(self) -> list[str]:
        return self.events.read_text().split() if self.events.exists() else []


@pytest.fixture
def project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AppProject:
    monkeypatch.setenv("APP_JWT_SECRET", secrets.token_urlsafe(32))
    events = tmp_path / "app-events.log"
    monkeypatch.setenv("APP_EVENTS", str(events))
    for name in ("APP_LEAK", "APP_FAIL_LIFESPAN", "WS_ENV"):
        monkeypatch.delenv(name, raising=False)
    return AppProject(pytester, events)


# -- the apps, tested through the plugin -------------------------------------------------


def test_a_fastapi_app_from_the_config_is_served_with_auth_and_isolation(project):
    result = project.write(extra='app = "myapp:app"').run()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["ws-resilience: env=local (default), url=app myapp:app (served by uvicorn), path=/ws"]
    )
    assert project.lifespan_events == ["start", "stop"]  # lifespan ran, both ways, once


def test_a_starlette_app_factory_from_the_command_line_is_served(project):
    result = project.write().run("--ws-app=starapp:create_app()")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*url=app starapp:create_app() (served by uvicorn)*"])
    assert project.lifespan_events == ["start", "stop"]


@pytest.mark.parametrize("app", ["myapp:app", "starapp:create_app()"])
def test_an_app_that_leaks_fails_the_isolation_test_only(project, monkeypatch, app):
    monkeypatch.setenv("APP_LEAK", "1")
    result = project.write().run(f"--ws-app={app}")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["FAILED *test_users_see_only_their_own_messages*"])
    assert "alice's private plan" in out  # the leaked frame is in the report
    assert os.environ["APP_JWT_SECRET"] not in out


def test_the_app_can_run_in_a_subprocess(project):
    result = project.write(extra='app = "myapp:app"\napp_subprocess = true').run()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*url=app myapp:app (served by uvicorn in a subprocess)*"])
    assert project.lifespan_events == ["start", "stop"]  # SIGTERM: graceful shutdown


def test_fifty_tests_start_the_app_once(project):
    tests = """
import pytest

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(50))
async def test_many(ws_client, n):
    await ws_client.expect(type="connection_established")
"""
    project.write(extra='app = "myapp:app"', tests=tests).run().assert_outcomes(passed=50)
    assert project.lifespan_events == ["start", "stop"]


def test_each_xdist_worker_serves_its_own_copy(project):
    pytest.importorskip("xdist")
    result = project.write(extra='app = "myapp:app"').run("-n", "2")
    result.assert_outcomes(passed=4)
    assert project.lifespan_events.count("start") == 2


@pytest.mark.parametrize("how", ["--ws-app-share", "app_share = true"])
def test_a_shared_app_is_served_once_for_all_xdist_workers(project, how):
    pytest.importorskip("xdist")
    flag = [how] if how.startswith("--") else []
    extra = 'app = "myapp:app"' + ("" if flag else f"\n{how}")
    # Workers hold no app handle of their own: only its URL, from the controller.
    tests = USER_SUITE.replace("ws_server.app is not None and ", "")
    result = project.write(extra=extra, tests=tests).run("-n", "2", *flag)
    result.assert_outcomes(passed=4)
    # Started by the controller before the workers, stopped by it after them: once.
    assert project.lifespan_events == ["start", "stop"]


def test_sharing_without_xdist_is_the_plain_session_app(project):
    result = project.write(extra='app = "myapp:app"').run("--ws-app-share")
    result.assert_outcomes(passed=4)
    assert project.lifespan_events == ["start", "stop"]


def test_a_shared_app_that_fails_to_start_stops_the_run_once(project, monkeypatch):
    pytest.importorskip("xdist")
    monkeypatch.setenv("APP_FAIL_LIFESPAN", "1")
    result = project.write(extra='app = "myapp:app"').run("-n", "2", "--ws-app-share")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str() + result.stderr.str()
    assert "failed to start" in out and "database unreachable at startup" in out
    assert project.lifespan_events == ["start"]  # the controller tried once; no worker did


# -- startup failures: once, with the app's traceback -------------------------------------

FAILING_SUITE = """
import pytest

def test_without_the_server():
    pass

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(5))
async def test_needs_the_app(ws_client, n):
    pass
"""


def test_a_lifespan_that_raises_fails_once_and_stops_the_session(project, monkeypatch):
    monkeypatch.setenv("APP_FAIL_LIFESPAN", "1")
    result = project.write(extra='app = "myapp:app"', tests=FAILING_SUITE).run()
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    # Once in the errors section (the short summary repeats it in full when CI is set).
    assert errors_section(out).count("RuntimeError: database unreachable at startup") == 1
    assert 'raise RuntimeError("database unreachable at startup")' in out  # the app's frame
    result.stdout.fnmatch_lines(["*the ASGI app under test failed to start; session stopped*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert project.lifespan_events == ["start"]


def errors_section(out: str) -> str:
    """The report's tracebacks, without the one-line-per-test short summary."""
    return out.split("short test summary info")[0]


def test_an_app_that_raises_on_import_fails_once_with_its_traceback(project):
    project.write(extra='app = "brokenapp:app"', tests=FAILING_SUITE)
    project.pytester.makepyfile(brokenapp="settings = {}\nDEBUG = settings['debug']\n")
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert errors_section(out).count("KeyError: 'debug'") == 1
    assert "DEBUG = settings['debug']" in out


def test_an_app_subprocess_that_fails_reports_its_output_once(project, monkeypatch):
    monkeypatch.setenv("APP_FAIL_LIFESPAN", "1")
    result = project.write(tests=FAILING_SUITE).run("--ws-app=myapp:app", "--ws-app-subprocess")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*exited with code*", "*database unreachable at startup*"])


# -- usage errors: exit code 4, one line ---------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--ws-app=nope.mod:app",
            "ERROR: --ws-app=nope.mod:app: cannot import module 'nope.mod' "
            "(ModuleNotFoundError: No module named 'nope')",
        ),
        ("--ws-app=myapp:apq", "ERROR: --ws-app=myapp:apq: module 'myapp' has no attribute 'apq'"),
        (
            "--ws-app=myapp",
            "ERROR: --ws-app = 'myapp' is invalid: expected 'module:attr' or "
            "'module:factory()' (e.g. 'myapp.main:app')",
        ),
    ],
)
def test_a_wrong_import_path_is_a_one_line_usage_error(project, option, message):
    result = project.write().run(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [message] or [ln for ln in result.stderr.lines if ln] == [message]


def test_missing_uvicorn_is_a_usage_error_naming_the_extra(project, monkeypatch, tmp_path):
    # uvicorn made unimportable for the child pytest only, shadowing the real one.
    stub = tmp_path / "no-uvicorn"
    stub.mkdir()
    (stub / "uvicorn.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'uvicorn'\", name='uvicorn')\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")]))
    project.write()
    result = project.pytester.runpytest_subprocess("-p", "ws_resilience", "--ws-app=myapp:app")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [ln for ln in result.stderr.lines if ln.strip()]
    assert errors == [
        "ERROR: --ws-app=myapp:app needs uvicorn: pip install 'pytest-ws-resilience[asgi]'"
    ]


def test_ws_app_and_ws_url_together_are_a_usage_error(project):
    result = project.write().run("--ws-app=myapp:app", "--ws-url=ws://127.0.0.1:9/ws")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ws-app and --ws-url both name the server*"])


# -- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("myapp:app", AppPath("myapp", "app")),
        ("pkg.main:holder.app", AppPath("pkg.main", "holder.app")),
        ("pkg.main:create_app()", AppPath("pkg.main", "create_app", factory=True)),
    ],
)
def test_app_paths_parse(text, expected):
    parsed = parse_app_path(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize("text", ["myapp", ":app", "myapp:", "my-app:app", "m:a()()", "m:1a"])
def test_malformed_app_paths_are_refused(text):
    with pytest.raises(ValueError, match="expected 'module:attr' or 'module:factory\\(\\)'"):
        parse_app_path(text)


def _settings(tool: dict[str, Any], **cli: Any) -> Any:
    return load_settings(cli=CommandLine(**cli), environ={}, tool_config=tool)


def test_the_app_key_serves_envs_without_a_url():
    tool = {"app": "myapp:app", "envs": {"staging": {"url": "wss://staging.example.com/ws"}}}
    local = _settings(tool)
    assert (local.server.app, local.server.url, local.server.app_source) == (
        "myapp:app",
        None,
        "pyproject [tool.ws_resilience]",
    )
    staging = _settings(tool, env="staging")
    assert (staging.server.app, staging.server.url) == (None, "wss://staging.example.com/ws")
    assert staging.server.kind == "url"


def test_ws_app_beats_a_configured_url_and_sets_the_subprocess_mode():
    settings = _settings({"url": "ws://127.0.0.1:9/"}, app="x:y()", app_subprocess=True)
    assert (settings.server.app, settings.server.url, settings.server.app_source) == (
        "x:y()",
        None,
        "--ws-app",
    )
    assert settings.server.app_subprocess
    assert _settings({"app": "x:y", "app_subprocess": True}).server.app_subprocess


@pytest.mark.parametrize(
    ("tool", "cli", "message"),
    [
        ({"app": 3}, {}, "app = 3 is invalid: expected 'module:attr' or 'module:factory()'"),
        ({"app": "x:y", "app_subprocess": "yes"}, {}, "app_subprocess = 'yes' is invalid"),
        ({"envs": {"qa": {"app_subprocess": True}}}, {}, "unknown key 'app_subprocess'"),
        ({}, {"app": "x:y", "url": "ws://127.0.0.1:9/"}, "choose one"),
    ],
)
def test_bad_app_settings_are_one_line_config_errors(tool, cli, message):
    with pytest.raises(WsConfigError) as info:
        _settings(tool, **cli)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


GROWTH_SUITE = """
import pytest

@pytest.mark.asyncio
async def test_cycles_leave_no_fd_behind(ws_server, ws_storm):
    sample = ws_server.resources()
    assert sample.processes >= 1 and sample.sockets >= 1  # uvicorn's listening socket
    result = await ws_storm.cycles(100, concurrency=5)
    print(repr(result))
    result.assert_errors(max=0)
    result.assert_server_growth(fds=50, sockets=50)
"""


def test_an_app_subprocess_is_measured_over_cycles(project):
    result = project.write(tests=GROWTH_SUITE).run(
        "--ws-app=myapp:app", "--ws-app-subprocess", "-s"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*server growth per 1,000 cycles: RSS *, fds +*, TCP sockets +*"])
