"""Each cookbook project's broken variant fails exactly its isolation tests, once each.

Run as a user runs them (docs/cookbook.md): pytest in a subprocess, on the project's own
pyproject.toml, with the project's switch set (its server then sends a room's, or a
game's, messages everywhere). The rest of each suite must still pass: the leak is caught
by the isolation detector, not by a test that happens to trip over it, and each leaking
test is reported once (a FAILED, no ERROR at teardown besides).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = ROOT / "examples" / "cookbook"
#: One whole cookbook run (server start included); a bound, not an expected duration.
RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Case:
    project: str
    switch: str
    #: the project's websocket_security tests: the only ones the leak may fail
    isolation_tests: frozenset[str]
    options: tuple[str, ...] = ()


CHAT_ISOLATION = frozenset(
    {"test_a_message_never_reaches_another_room", "test_many_rooms_at_once_keep_their_own_talk"}
)
CASES = [
    Case("channels_chat", "CHAT_BROKEN", CHAT_ISOLATION),
    Case(
        "channels_chat",
        "CHAT_BROKEN",
        CHAT_ISOLATION,
        ("--ws-server-cmd=daphne -p {port} mysite.asgi:application",),
    ),
    Case(
        "aiohttp_echo",
        "ECHO_BROKEN",
        frozenset({"test_a_message_never_reaches_another_room"}),
        ("--ws-server-cmd=python server.py --port {port}",),
    ),
    Case("websockets_game", "GAME_BROKEN", frozenset({"test_moves_never_reach_another_game"})),
    Case("starlette_app", "ROOMS_BROKEN", frozenset({"test_a_message_never_reaches_another_room"})),
]


def outcomes(junit: Path) -> dict[str, list[str]]:
    """Test name -> what the JUnit XML reports for it: "failure", "error", "skipped" ..."""
    found: dict[str, list[str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in {"failure", "error", "skipped"}]
        found.setdefault(case.attrib["name"], []).extend(kinds or ["passed"])
    return found


def run_project(case: Case, junit: Path) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))
    }
    env[case.switch] = "1"
    project = COOKBOOK / case.project
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(project / "pyproject.toml"),
        str(project),
        "-p",
        "ws_resilience",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *case.options,
    ]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=[f"{c.project}{'-cmd' if c.options else ''}" for c in CASES],
)
def test_the_broken_variant_fails_exactly_its_isolation_tests(case: Case, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"

    run = run_project(case, junit)

    output = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, output
    found = outcomes(junit)
    failed = {name for name, kinds in found.items() if kinds == ["failure"]}
    assert failed == case.isolation_tests, output
    others = {name: kinds for name, kinds in found.items() if name not in failed}
    assert others and all(kinds == ["passed"] for kinds in others.values()), output
    # The detector's report, not some other assertion, failed each of them.
    assert output.count("received a frame holding") >= len(case.isolation_tests), output
