"""A text protocol as a user meets it: a plain websockets server speaking lines, not
JSON, run with ``--ws-server-cmd``, tested through the fixtures with ``expect_text``,
``expect(predicate)``, key functions, and a timeout that speaks the protocol's terms."""

from __future__ import annotations

import sys

import pytest

#: "hello" -> "answer"; "JOIN:<room>" -> JOINED, MSG, LEFT lines; bytes echoed reversed.
SERVER = """
import argparse
import asyncio

from websockets.asyncio.server import serve

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()


async def lines(connection):
    async for message in connection:
        if isinstance(message, bytes):
            await connection.send(message[::-1])
        elif message == "hello":
            await connection.send("answer")
        elif message.startswith("JOIN:"):
            room = message.removeprefix("JOIN:")
            for line in (f"JOINED:{room}", f"MSG:{room}:welcome", f"LEFT:{room}"):
                await connection.send(line)


async def main():
    async with serve(lines, "127.0.0.1", args.port) as server:
        await server.serve_forever()


asyncio.run(main())
"""

SUITE = """
import re

import pytest

from pytest_ws_resilience import EventContract


@pytest.mark.asyncio
async def test_hello_gets_an_answer(ws_client):
    await ws_client.send_text("hello")
    assert await ws_client.expect_text("answer") == "answer"


@pytest.mark.asyncio
async def test_lines_by_regex_predicate_and_key(ws_client):
    await ws_client.send_text("JOIN:lobby")
    assert await ws_client.expect_text(re.compile(r"^JOINED:(\\w+)$")) == "JOINED:lobby"
    assert await ws_client.expect(lambda f: isinstance(f, str) and f.startswith("LEFT")) == (
        "LEFT:lobby"
    )
    await ws_client.send_text("JOIN:den")
    verb = lambda line: line.split(":")[0]
    await ws_client.expect_sequence(["JOINED", "MSG", "LEFT"], key=verb)
    await ws_client.send_bytes(b"abc")
    assert await ws_client.expect_bytes(b"cba") == b"cba"


@pytest.mark.asyncio
async def test_a_contract_named_by_a_key_function(ws_client):
    contract = EventContract(
        ["JOINED", "MSG", "LEFT"], key=lambda line: line.split(":")[0], terminal="LEFT"
    )
    await ws_client.send_text("JOIN:hall")
    await ws_client.expect_contract(contract)


@pytest.mark.asyncio
async def test_a_line_that_never_comes(ws_client):
    await ws_client.send_text("JOIN:attic")
    verb = lambda line: line.split(":")[0]
    await ws_client.expect_sequence(["JOINED", "KICKED"], key=verb, timeout=0.5)
"""


def test_a_text_protocol_is_tested_in_its_own_terms(ws_pytester: pytest.Pytester) -> None:
    ws_pytester.makepyprojecttoml('[tool.ws_resilience]\nauth_methods = ["none"]\n')
    ws_pytester.makepyfile(test_lines=SUITE)
    (ws_pytester.path / "lines_server.py").write_text(SERVER)
    command = f"{sys.executable} lines_server.py --port {{port}}"
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", f"--ws-server-cmd={command}")
    result.assert_outcomes(passed=3, failed=1)
    output = result.stdout.str()
    # The timeout speaks the protocol's terms: the lines seen, named by the key.
    result.stdout.fnmatch_lines(["*'KICKED'*", "*matched before it: [[]JOINED[]]*"])
    assert "[None]" not in output
