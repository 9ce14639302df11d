"""Where local commands run: in the project's directory, with pytest's Python first on
``PATH``, so ``--ws-server-cmd='python server.py ...'`` written next to the
configuration works however pytest is started (``-c path/pyproject.toml`` from
elsewhere, a virtualenv that is not activated)."""

from __future__ import annotations

import os
import sys

import pytest

from pytest_ws_resilience.servers.process_backend import command_environment

#: A plain websockets server that answers each text with "echo:<text>" and, to prove
#: where it runs, "cwd:<its working directory>" to the text "where".
SERVER = """
import argparse
import asyncio
import os

from websockets.asyncio.server import serve

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()


async def echo(connection):
    async for message in connection:
        await connection.send("cwd:" + os.getcwd() if message == "where" else "echo:" + message)


async def main():
    async with serve(echo, "127.0.0.1", args.port) as server:
        await server.serve_forever()


asyncio.run(main())
"""

SUITE = """
import os

import pytest


@pytest.mark.asyncio
async def test_the_command_runs_beside_its_configuration(ws_client):
    await ws_client.send_text("where")
    text = await ws_client.expect_text(lambda t: t.startswith("cwd:"))
    assert text == "cwd:" + os.path.dirname(os.path.abspath(__file__))
"""


def test_a_server_command_runs_in_the_project_directory_with_pytests_python(
    ws_pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ws_pytester.mkdir("project")
    (project / "pyproject.toml").write_text(
        '[tool.ws_resilience]\nauth_methods = ["none"]\ngreeting = false\n'
    )
    (project / "server.py").write_text(SERVER)
    (project / "test_where.py").write_text(SUITE)
    # Neither the project nor pytest's virtualenv on PATH: "python" must come from the
    # plugin's PATH rule, "server.py" from the working directory it chose.
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", "/bin"]))
    result = ws_pytester.runpytest_subprocess(
        "-c",
        str(project / "pyproject.toml"),
        str(project),
        "-p",
        "ws_resilience",
        "--ws-server-cmd=python server.py --port {port}",
    )
    result.assert_outcomes(passed=1)


def test_pytests_python_goes_first_on_the_commands_path() -> None:
    scripts = os.path.dirname(sys.executable)
    env = command_environment({"PATH": "/usr/bin:/bin", "HOME": "/h"}, {"X": "1"})
    assert env["PATH"].split(os.pathsep) == [scripts, "/usr/bin", "/bin"]
    assert env["X"] == "1" and env["HOME"] == "/h"
    already = command_environment({"PATH": os.pathsep.join([scripts, "/bin"])}, {})
    assert already["PATH"].split(os.pathsep) == [scripts, "/bin"]
    # A service that sets PATH itself keeps it as written.
    assert command_environment({"PATH": "/bin"}, {"PATH": "/opt/x"})["PATH"] == "/opt/x"
