"""``ws_fuzz`` as users meet it: pytester runs of ``-p ws_resilience`` suites against
a real server started with ``--ws-server-cmd`` (the servers of `fuzz_servers`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fuzz_servers import NESTING_LIMIT

SERVERS = Path(__file__).with_name("fuzz_servers.py")
#: A run seed whose search finds the surrogate bug within the local budget.
FOUND_SEED = 1234

SUITE = """
import pytest

EXAMPLES = [{"type": "ping"}, {"type": "user_message", "text": "hello"}]


@pytest.mark.asyncio
async def test_fuzz(ws_fuzz):
    result = await ws_fuzz(examples=EXAMPLES)
    print(result.summary())
    result.assert_ok()
"""

MANY = """
import pytest

EXAMPLES = [{"type": "ping"}, {"type": "user_message", "text": "hello"}]


@pytest.mark.asyncio
@pytest.mark.concurrent_safe
@pytest.mark.parametrize("n", range(4))
async def test_fuzz(ws_fuzz, n):
    result = await ws_fuzz(examples=EXAMPLES, max_examples=50)
    result.assert_ok()
    assert result.examples_run == 50
"""

UNCHECKED = """
import pytest


@pytest.mark.asyncio
async def test_fuzz_without_a_verdict(ws_fuzz):
    await ws_fuzz(examples=[{"type": "user_message", "text": "hello"}])
"""


def _server(bug: str) -> str:
    return f"--ws-server-cmd={sys.executable} {SERVERS} --port {{port}} --bug {bug}"


def _project(pytester: pytest.Pytester, **files: str) -> pytest.Pytester:
    pytester.makepyprojecttoml('[tool.ws_resilience]\nauth_methods = ["none"]\n')
    pytester.makepyfile(**files)
    return pytester


def test_a_clean_server_passes(ws_pytester: pytest.Pytester) -> None:
    project = _project(ws_pytester, test_fuzz=SUITE)
    result = project.runpytest_subprocess("-p", "ws_resilience", "-s", _server("none"))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ws_fuzz: 500 examples, 0 failing*profile local (default)*"])


def test_a_failing_server_prints_the_minimal_message_and_the_replay(
    ws_pytester: pytest.Pytester,
) -> None:
    project = _project(ws_pytester, test_fuzz=SUITE)
    # A fixed seed: with a random one, 500 examples miss this bug about once in 40 runs
    # (195 of 200 seeds found it, benchmarks/fuzz_find.py). From some seeds the shrink
    # keeps a second mutation it cannot undo alone (an extra key such as
    # "'extra': None"), so the line is matched up to the surrogate.
    result = project.runpytest_subprocess(
        "-p", "ws_resilience", _server("surrogate"), f"--ws-chaos-seed={FOUND_SEED}"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*WsFuzzError: ws_fuzz: * examples, * failing*",
            "*minimal failing message*",
            "*json {'type': 'user_message', 'text': '\\ud800'*",
            "*broke: the connection closed with 1011*",
            "*replay the message: await ws_fuzz.replay(result.minimal.frame)*",
            "*replay the search: ws_fuzz(..., seed=*), or pytest*--ws-chaos-seed=*",
        ]
    )


def test_the_printed_seed_replays_the_same_minimal_message(ws_pytester: pytest.Pytester) -> None:
    project = _project(ws_pytester, test_fuzz=SUITE)
    runs = [
        project.runpytest_subprocess(
            "-p", "ws_resilience", _server("nesting"), "--ws-chaos-seed=1234"
        )
        for _ in range(2)
    ]
    heads = [[line for line in run.stdout.lines if "WsFuzzError: ws_fuzz:" in line] for run in runs]
    # The same examples, failures, reconnections and seed (the wall time may differ).
    same = [head[0].rsplit(",", 1)[0] for head in heads if head]
    assert len(same) == 2 and same[0] == same[1], heads
    for run in runs:
        # Shrunk to the least nesting that fails (Hypothesis 6.124.4 and later get there).
        run.stdout.fnmatch_lines([f"*<{NESTING_LIMIT} nested*"])


def test_fuzzing_under_xdist(ws_pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project = _project(ws_pytester, test_many=MANY)
    result = project.runpytest_subprocess("-p", "ws_resilience", "-n", "2", _server("none"))
    result.assert_outcomes(passed=4)
    # No example database (database=None): nothing for two workers to collide on.
    assert not list(project.path.rglob(".hypothesis/examples")), "an example database was written"


def test_a_failure_nobody_checked_fails_the_test(ws_pytester: pytest.Pytester) -> None:
    project = _project(ws_pytester, test_unchecked=UNCHECKED)
    result = project.runpytest_subprocess("-p", "ws_resilience", _server("surrogate"))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ws_fuzz found a failure this test never checked*"])


def test_an_unknown_profile_is_a_usage_error(ws_pytester: pytest.Pytester) -> None:
    project = _project(ws_pytester, test_fuzz=SUITE)
    result = project.runpytest_subprocess("-p", "ws_resilience", "--ws-fuzz-profile=weekly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ws-fuzz-profile*invalid choice*'weekly'*"])


def test_the_profile_comes_from_the_option(ws_pytester: pytest.Pytester) -> None:
    project = _project(
        ws_pytester, test_fuzz=SUITE.replace("EXAMPLES)", "EXAMPLES, max_examples=20)")
    )
    result = project.runpytest_subprocess(
        "-p", "ws_resilience", "-s", "--ws-fuzz-profile=nightly", _server("none")
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*20 examples*profile nightly (--ws-fuzz-profile)*"])
