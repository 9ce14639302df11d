"""The ``ws_fuzz`` fixture and its option ``--ws-fuzz-profile``.

Thin glue over `pytest_ws_resilience.fuzz`: the fixture builds a `WsFuzz` on the
test's client factory (so fuzzing goes over a real, authenticated connection to the
server under test, watched and reported like every other client) and fails the test at
teardown when a failing result was never checked. Hypothesis, the strategies and the
runner are imported in the fixture's body: a run that does not fuzz does not load them
(``tests/plugin/test_startup.py``).

Seeds: each call's Hypothesis seed is derived from the run's seed (``--ws-chaos-seed``,
drawn once per run, the same on every xdist worker), the test's node id and the call's
number, so a failure is replayed by rerunning its test with the printed seed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.plugin.stash import RUN_KEY

if TYPE_CHECKING:
    from pytest_ws_resilience.fuzz.fuzzer import WsFuzz
    from pytest_ws_resilience.plugin.loop_objects import ClientFactory

__all__ = ["FUZZ_PROFILE_HELP", "add_fuzz_options", "fuzz_profile_option", "ws_fuzz"]

#: The fuzz profiles' names, as `pytest_ws_resilience.fuzz.profiles.FUZZ_PROFILES` has
#: them (written here so that declaring the option imports nothing).
_PROFILE_NAMES = ("local", "ci", "nightly")

FUZZ_PROFILE_HELP = (
    "budget of ws_fuzz: local (default; 500 examples a call), ci (the default when the "
    "CI variable is set) or nightly (5,000 a call). Precedence: ws_fuzz(profile=) > "
    "--ws-fuzz-profile > WS_FUZZ_PROFILE > --ws-env named like a profile > CI > local."
)


def add_fuzz_options(parser: pytest.Parser) -> None:
    """Declare ``--ws-fuzz-profile`` (the entry point's ``pytest_addoption``)."""
    group = parser.getgroup("ws-resilience")
    group.addoption(
        "--ws-fuzz-profile",
        dest="ws_fuzz_profile",
        metavar="NAME",
        choices=_PROFILE_NAMES,
        default=None,
        help=FUZZ_PROFILE_HELP,
    )


def fuzz_profile_option(config: pytest.Config) -> str | None:
    value = config.getoption("ws_fuzz_profile", None)
    return value if isinstance(value, str) else None


@pytest.fixture
def ws_fuzz(
    request: pytest.FixtureRequest,
    ws_client_factory: ClientFactory,
    ws_settings: WsSettings,
) -> Iterator[WsFuzz]:
    """``result = await ws_fuzz(examples=[...], *, schema=None, health={"type": "ping"},
    health_reply={"type": "pong"}, max_examples=None, profile=None, seed=None,
    allowed_close_codes=(), answer_timeout=None, binary=True, expect_answer=True)``.

    Fuzzes the server under test with Hypothesis over one connection of a fresh user
    (mutations of ``examples``: wrong types, missing and extra fields, empty, long,
    unicode and lone-surrogate strings, deep nesting, huge numbers, binary and non-JSON
    frames) and returns a `FuzzResult` (``examples_run``, ``failures``, ``minimal``,
    ``assert_ok()``). After each message the server must answer (an error frame
    counts) within the recv timeout, keep the connection open and answer the health
    message. ``await ws_fuzz.replay(frame)`` judges one frame. A failing result that the
    test never checked (``assert_ok()``, ``ok``) fails the test at teardown.
    """
    from pytest_ws_resilience.chaos.seeds import derive_seed
    from pytest_ws_resilience.fuzz.fuzzer import WsFuzz

    run = request.config.stash.get(RUN_KEY, None)
    run_seed = run.chaos_seed if run is not None else 0
    nodeid = request.node.nodeid

    def seed_for(call: int) -> int:
        return derive_seed(run_seed, "ws_fuzz", nodeid, call) % (2**32)

    async def connect() -> Any:
        return await ws_client_factory()

    fuzz = WsFuzz(
        connect,
        ws_settings,
        seed_for=seed_for,
        option_profile=fuzz_profile_option(request.config),
        environ=os.environ,
        replay_hint=f"pytest '{nodeid}' -p ws_resilience --ws-chaos-seed={run_seed}",
    )
    yield fuzz
    unchecked = [r for r in fuzz.results if not r.checked and not r.ok]
    if unchecked:
        pytest.fail(
            "ws_fuzz found a failure this test never checked (call result.assert_ok()):\n"
            + unchecked[0].report(),
            pytrace=False,
        )
