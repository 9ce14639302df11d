"""The reference server's command line, run as a real subprocess.

Proves what scripts and ``--ws-server-cmd`` rely on: one parseable listening line,
real authenticated service, a prompt clean exit on SIGTERM, and bad options ending
with status 2 and one line on stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pytest_ws_resilience.client.tokens import TokenFactory

#: Bound of a subprocess start, answer or exit; generous for loaded CI machines.
PROCESS_S = 20.0
LISTENING_RE = re.compile(r"^ws-resilience-server listening on (ws://127\.0\.0\.1:(\d+)/)$")
#: A stopping server must exit within this (its own stop is bounded by 5 s).
STOP_BOUND_S = 8.0
MODULE = [sys.executable, "-m", "pytest_ws_resilience.testing"]


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without a secret that could leak into a test."""
    env = {k: v for k, v in os.environ.items() if k != "WS_RESILIENCE_SECRET"}
    env.update(extra)
    return env


class RunningCli:
    """A started server process and the URL it printed."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, info: str) -> None:
        self.process = process
        self.url = url
        self.info = info


async def start_cli(args: list[str], env: Mapping[str, str]) -> RunningCli:
    process = await asyncio.create_subprocess_exec(
        *MODULE,
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(PROCESS_S):
            first = (await process.stdout.readline()).decode().rstrip("\n")
            info = (await process.stdout.readline()).decode().rstrip("\n")
    except BaseException:
        process.kill()
        await process.wait()
        raise
    match = LISTENING_RE.match(first)
    if match is None:  # say why: the process's own words, and how it ended
        assert process.stderr is not None
        async with asyncio.timeout(PROCESS_S):
            errors = (await process.stderr.read()).decode(errors="replace")
            code = await process.wait()
        raise AssertionError(
            f"unexpected first line {first!r}; exit code {code}; stderr: {errors[-2000:]!r}"
        )
    return RunningCli(process, match.group(1), info)


async def terminate(process: asyncio.subprocess.Process, signum: int = signal.SIGTERM) -> int:
    """Send ``signum``, then wait for a prompt exit; kill if it does not stop in time.

    The server's own stop is bounded by 5 s; the bound here adds room for a loaded machine.
    """
    if process.returncode is None:
        process.send_signal(signum)
    started = time.monotonic()
    try:
        async with asyncio.timeout(STOP_BOUND_S):
            code = await process.wait()
        assert time.monotonic() - started < STOP_BOUND_S
        return code
    except TimeoutError:
        process.kill()
        await process.wait()
        raise


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory(secrets.token_urlsafe(32))


@pytest_asyncio.fixture(loop_scope="function")
async def cli(tokens: TokenFactory) -> AsyncIterator[RunningCli]:
    assert tokens.secret is not None
    running = await start_cli(
        # "--secret=..." form: a generated secret may begin with "-", which argparse would
        # read as an option after a bare "--secret".
        ["--port", "0", f"--secret={tokens.secret}", "--agent-delay", "0.001", "--fault", "leak"],
        clean_env(),
    )
    try:
        yield running
    finally:
        if running.process.returncode is None:
            running.process.kill()
            await running.process.wait()


@pytest.mark.asyncio
async def test_cli_serves_authenticated_agent_runs_and_exits_0_on_sigterm(
    cli: RunningCli, tokens: TokenFactory
) -> None:
    assert tokens.secret is not None
    assert "HS256" in cli.info and "leak" in cli.info
    assert tokens.secret not in cli.info
    user = tokens.user()
    headers = {"Authorization": f"Bearer {user.token}"}
    async with connect(
        cli.url, proxy=None, open_timeout=PROCESS_S, additional_headers=headers
    ) as ws:
        async with asyncio.timeout(PROCESS_S):
            hello = json.loads(await ws.recv())
            assert hello["type"] == "connection_established" and hello["user_id"] == user.id
            await ws.send(json.dumps({"type": "user_message", "text": "hi", "run_id": "r1"}))
            types: list[str] = []
            while not types or types[-1] != "agent_completed":
                types.append(json.loads(await ws.recv())["type"])
    assert types[0] == "agent_started" and "tool_completed" in types
    assert await terminate(cli.process) == 0
    assert cli.process.stderr is not None
    stderr = (await cli.process.stderr.read()).decode()
    assert "Traceback" not in stderr


@pytest.mark.asyncio
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_reads_the_secret_from_the_default_env_var_and_stops_with_clients_open(
    tokens: TokenFactory, signum: int
) -> None:
    assert tokens.secret is not None
    running = await start_cli(["--port", "0"], clean_env(WS_RESILIENCE_SECRET=tokens.secret))
    try:
        url = f"{running.url}?token={tokens.user().token}"
        async with connect(url, proxy=None, open_timeout=PROCESS_S) as ws:
            async with asyncio.timeout(PROCESS_S):
                assert json.loads(await ws.recv())["type"] == "connection_established"
            assert await terminate(running.process, signum) == 0
            async with asyncio.timeout(PROCESS_S):
                await ws.wait_closed()
            assert ws.close_code == 1001
    finally:
        if running.process.returncode is None:
            running.process.kill()
            await running.process.wait()


@pytest.mark.asyncio
async def test_cli_refuses_a_bad_token_with_401(cli: RunningCli, tokens: TokenFactory) -> None:
    headers = {"Authorization": f"Bearer {tokens.expired(tokens.user())}"}
    with pytest.raises(InvalidStatus) as info:
        async with connect(cli.url, proxy=None, open_timeout=PROCESS_S, additional_headers=headers):
            pass
    assert info.value.response.status_code == 401


def run_cli(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODULE, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=PROCESS_S,
        check=False,
    )


def test_cli_unknown_fault_exits_2_with_one_line() -> None:
    result = run_cli(["--no-auth", "--fault", "gremlins"], clean_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "gremlins" in lines[0] and "leak" in lines[0]
    assert result.stdout == ""


def test_cli_without_a_key_exits_2_saying_what_to_pass() -> None:
    result = run_cli([], clean_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    for option in ("--secret", "--public-key-file", "--no-auth", "WS_RESILIENCE_SECRET"):
        assert option in lines[0]


def test_cli_secret_env_naming_an_unset_variable_exits_2() -> None:
    result = run_cli(["--secret-env", "WS_RESILIENCE_TEST_NOT_SET"], clean_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ws-resilience-server: error: environment variable WS_RESILIENCE_TEST_NOT_SET "
        "(--secret-env) is not set"
    ]


def test_cli_refuses_a_non_loopback_host() -> None:
    result = run_cli(["--no-auth", "--host", "0.0.0.0"], clean_env())
    assert result.returncode == 2
    assert "not loopback" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_console_script_is_installed_and_answers_help() -> None:
    script = Path(sys.executable).parent / "ws-resilience-server"
    assert script.exists()
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=PROCESS_S, check=False
    )
    assert result.returncode == 0
    assert "--fault" in result.stdout and "--secret" in result.stdout
