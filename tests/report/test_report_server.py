"""The report and the summary name the server really tested: a ``--ws-server-cmd``
run says "command ..." with the URL it served (it used to say "embedded reference
server"), in the terminal summary, the JSON's ``run.server`` and the HTML page; and
the pure record and line for every kind of server."""

from __future__ import annotations

import json
import sys

import pytest

from pytest_ws_resilience.config.settings import ServerChoice
from pytest_ws_resilience.report.server_info import server_line, server_record

REFERENCE_CMD = f"{sys.executable} -m pytest_ws_resilience.testing --port {{port}}"

INNER = """
import pytest

@pytest.mark.asyncio
async def test_agent_run(ws_client):
    await ws_client.send_json({"type": "user_message", "text": "hi"})
    await ws_client.expect(type="agent_completed")
"""


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_ENV", raising=False)


def test_a_server_cmd_run_is_named_in_the_summary_json_and_html(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makepyfile(test_inner=INNER)
    json_path = ws_pytester.path / "report.json"
    result = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", f"--ws-server-cmd={REFERENCE_CMD}", f"--ws-report={json_path}"
    )
    result.assert_outcomes(passed=1)
    server = json.loads(json_path.read_text())["run"]["server"]
    assert server["kind"] == "command" and server["command"] == REFERENCE_CMD
    assert server["app"] is None and server["services"] == []
    assert server["url"].startswith("ws://127.0.0.1:") and server["urls"] == [server["url"]]
    output = result.stdout.str()
    assert "embedded reference server" not in output
    result.stdout.fnmatch_lines(
        [f"server: command '*pytest_ws_resilience.testing --port {{port}}' at {server['url']}"]
    )

    html_path = ws_pytester.path / "report.html"
    html = ws_pytester.runpytest_subprocess(
        "-p", "ws_resilience", f"--ws-server-cmd={REFERENCE_CMD}", f"--ws-report={html_path}"
    )
    html.assert_outcomes(passed=1)
    page = html_path.read_text()
    assert "embedded reference server" not in page
    assert (
        "<dt>server command</dt>" in page and "pytest_ws_resilience.testing --port {port}" in page
    )
    assert "<dt>server kind</dt><dd>command</dd>" in page


def test_each_kind_of_server_has_a_record_and_a_line() -> None:
    app = ServerChoice(app="mysite.asgi:application", app_source="--ws-app", app_subprocess=True)
    record = server_record(
        app, urls=["ws://127.0.0.1:5/ws", "ws://127.0.0.1:6/ws"], services=["redis"]
    )
    assert record["kind"] == "app" and record["app_mode"] == "subprocess"
    assert record["app_lifespan"] == "auto" and record["url"] == "ws://127.0.0.1:5/ws"
    assert server_line(record) == (
        "app mysite.asgi:application (uvicorn in a subprocess, lifespan auto) at "
        "ws://127.0.0.1:5/ws (+1 more, one per worker); services: redis"
    )
    url = ServerChoice(url="wss://example.test/ws?token=abc.def.ghi", url_source="--ws-url")
    assert server_record(url)["kind"] == "url"
    assert server_record(url)["url"] == "wss://example.test/ws?token=abc.def.ghi"
    embedded = server_record(ServerChoice())
    assert embedded["kind"] == "embedded" and embedded["url"] is None
    assert server_line(embedded) == "embedded reference server"
    command = server_record(ServerChoice(command="daphne -p {port} mysite.asgi:application"))
    assert server_line(command) == "command 'daphne -p {port} mysite.asgi:application'"
