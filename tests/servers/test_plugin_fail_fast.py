"""Startup fails fast on answers that will not change, for every server the plugin
starts: a wrong path (HTTP 404) under ``--ws-app``, ``--ws-server-cmd`` and a service
fails with one line naming the status and the URL, the server's log attached trimmed
(at most `DIGEST_MAX_LINES` lines); the same 5xx three times in a row from an app that
fails on every handshake too. Real pytest runs, real servers on loopback.
"""

from __future__ import annotations

import re
import sys
import textwrap

import pytest

from pytest_ws_resilience.config.validation import REQUIRE_ENV_VAR
from pytest_ws_resilience.servers.log_digest import DIGEST_MAX_LINES

pytestmark = pytest.mark.websocket_integration

#: A WebSocket server serving only /ws: any other path gets a 404 and a traceback in its
#: log; it prints 150 distinct boot lines first (a log the digest must cut).
WRONG_PATH_SERVER = """
import asyncio, http, sys, traceback
from websockets.asyncio.server import serve

for n in range(150):
    print(f"boot step {n} of 150", flush=True)

async def handler(conn):
    await conn.wait_closed()

def process_request(conn, request):
    if request.path != "/ws":
        try:
            raise LookupError(f"no route for {request.path}")
        except LookupError:
            traceback.print_exc()
        return conn.respond(http.HTTPStatus.NOT_FOUND, "no such path\\n")
    return None

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), process_request=process_request):
        print("serving on /ws only", flush=True)
        await asyncio.Future()

asyncio.run(main())
"""

#: A raw ASGI app: /ws is served, any other path answers 404; every websocket request
#: logs 30 lines through uvicorn's error logger (a chatty app).
WRONG_PATH_APP = """
import logging

log = logging.getLogger("uvicorn.error")

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    elif scope["type"] == "websocket":
        for n in range(30):
            log.warning("request detail %d for %s", n, scope["path"])
        await receive()
        if scope["path"] == "/ws":
            await send({"type": "websocket.accept"})
            await receive()
            return
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no such endpoint"})
"""

#: An ASGI app whose websocket handler raises every time (uvicorn answers 500).
FAILING_APP = """
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        raise RuntimeError("the handler is broken (on purpose)")
"""

INNER_TEST = """
def test_needs_the_server(ws_server):
    pass
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV_VAR, raising=False)
    monkeypatch.delenv("WS_ENV", raising=False)


def _log_lines(output: str) -> list[str]:
    """The attached log: the lines after "(trimmed):" up to pytest's next section."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("(trimmed):"))
    log: list[str] = []
    for line in lines[start + 1 :]:
        if re.match(r"^(=+|_+|-+) ", line) or line.startswith(("ERROR ", "FAILED ")):
            break
        log.append(line)
    return log


def _first_line(output: str, pattern: str) -> str:
    match = re.search(pattern, output)
    assert match is not None, output
    return match.group(0)


def test_a_wrong_path_under_ws_server_cmd_fails_at_once_naming_404_and_the_url(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(server=WRONG_PATH_SERVER, test_inner=INNER_TEST)
    command = f"{sys.executable} server.py {{port}}"
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", f"--ws-server-cmd={command}", "--ws-path=/wrong"
    )
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    line = _first_line(
        output,
        r"service 'server-under-test' at ws://127\.0\.0\.1:\d+/wrong answered HTTP 404 to the "
        r"WebSocket handshake: wrong path\? \(--ws-path / path\)",
    )
    assert line
    assert "was not ready within" not in output  # not a timeout: the never verdict
    log = _log_lines(output)
    assert len(log) <= DIGEST_MAX_LINES
    assert log[0].endswith("boot step 0 of 150")  # the first lines
    assert any("lines left out" in entry for entry in log)
    assert any("LookupError: no route for /wrong" in entry for entry in log)  # the last


def test_a_wrong_path_under_ws_app_fails_at_once_naming_404_and_the_url(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(wrongapp=WRONG_PATH_APP, test_inner=INNER_TEST)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", "--ws-app=wrongapp:app", "--ws-path=/wrong"
    )
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    _first_line(
        output,
        r"ASGI app wrongapp:app at ws://127\.0\.0\.1:\d+/wrong answered HTTP 404 to the "
        r"WebSocket handshake: wrong path\? \(--ws-path / path\)",
    )
    assert "did not answer a WebSocket handshake" not in output  # not a timeout
    log = _log_lines(output)
    assert 0 < len(log) <= DIGEST_MAX_LINES
    assert "request detail 0 for /wrong" in log[0]


def test_a_wrong_path_in_a_subprocess_app_fails_at_once_too(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(wrongapp=WRONG_PATH_APP, test_inner=INNER_TEST)
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", "--ws-app=wrongapp:app", "--ws-app-subprocess", "--ws-path=/wrong"
    )
    result.assert_outcomes(errors=1)
    _first_line(
        result.stdout.str(),
        r"ASGI app wrongapp:app \(subprocess\) at ws://127\.0\.0\.1:\d+/wrong answered HTTP 404",
    )
    assert len(_log_lines(result.stdout.str())) <= DIGEST_MAX_LINES


def test_a_wrong_path_of_a_service_fails_at_once_naming_404_and_the_url(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(
        server=WRONG_PATH_SERVER,
        test_inner="""
        import pytest

        @pytest.mark.ws_services("api")
        def test_uses_the_service(ws_services):
            ws_services["api"]
        """,
    )
    ws_pytester.makepyprojecttoml(
        textwrap.dedent(
            f"""
            [tool.ws_resilience.services.api]
            command = [{sys.executable!r}, "server.py", "{{port}}"]
            path = "/socket"
            """
        )
    )
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "--ws-require-services")
    result.assert_outcomes(errors=1)  # the marker's service fails the test's setup
    output = result.stdout.str()
    _first_line(
        output,
        r"service 'api' at ws://127\.0\.0\.1:\d+/socket answered HTTP 404 to the WebSocket "
        r"handshake: wrong path\? \(the service's path \('/socket'\)\)",
    )
    assert "was not ready within" not in output
    log = _log_lines(output)
    assert len(log) <= DIGEST_MAX_LINES and log[0].endswith("boot step 0 of 150")


def test_an_app_failing_on_every_handshake_fails_after_three_5xx_with_one_traceback(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(failingapp=FAILING_APP, test_inner=INNER_TEST)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "--ws-app=failingapp:app")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    _first_line(
        output,
        r"ASGI app failingapp:app at ws://127\.0\.0\.1:\d+/ answered HTTP 500 to the WebSocket "
        r"handshake: 3 times in a row",
    )
    log = _log_lines(output)
    assert len(log) <= DIGEST_MAX_LINES
    assert sum("RuntimeError: the handler is broken" in entry for entry in log) == 1
    assert any(entry.endswith("the same traceback 3 times") for entry in log)
