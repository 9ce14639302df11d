"""Fuzzing finds the bugs of real servers and shrinks them, within the local budget.

Each server is a real websockets server on loopback (`fuzz_servers`); the connection
is a real `WsClient`; the budget is the ``local`` profile's (the default).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fuzz_servers import (
    NESTING_LIMIT,
    clean_server,
    container_depth,
    naive_decoder_server,
    nesting_server,
    surrogate_server,
)
from json_depth import decoder_depth_limit

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.fuzz.frames import FuzzFrame
from pytest_ws_resilience.fuzz.profiles import FUZZ_PROFILES
from pytest_ws_resilience.fuzz.result import FuzzResult
from pytest_ws_resilience.fuzz.runner import FuzzRunner, Health
from pytest_ws_resilience.fuzz.strategies import frame_strategy

EXAMPLES = [{"type": "ping"}, {"type": "user_message", "text": "hello"}]
LOCAL = FUZZ_PROFILES["local"]
#: Frames Hypothesis adds to the recursion limit while it runs (`ensure_free_stackframes`).
HYPOTHESIS_FRAMES = 2000
SETTINGS = WsSettings(greeting=None)


async def _fuzz(url: str, seed: int, **budget: float) -> tuple[FuzzResult, FuzzRunner]:
    client = WsClient(url, settings=SETTINGS, connect_timeout=5.0)

    async def connect() -> WsClient:
        return await client.connect()

    runner = FuzzRunner(connect, answer_timeout=5.0, connect_bound=5.0)
    result = await runner.run(
        frame_strategy(EXAMPLES),
        max_examples=int(budget.get("max_examples", LOCAL.max_examples)),
        seed=seed,
        budget_s=budget.get("budget_s", LOCAL.budget_s),
        max_reconnects=int(budget.get("max_reconnects", LOCAL.max_reconnects)),
    )
    return result, runner


@pytest_asyncio.fixture
async def closing() -> AsyncIterator[list[WsClient]]:
    clients: list[WsClient] = []
    yield clients
    for client in clients:
        if client is not None:
            await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", [1, 2])
async def test_a_lone_surrogate_in_one_field_is_found_and_shrunk(
    seed: int, closing: list[WsClient]
) -> None:
    async with surrogate_server() as server:
        result, runner = await _fuzz(server.url, seed)
        closing.append(runner.client)  # type: ignore[arg-type]

    assert result.minimal is not None, result.summary()
    assert result.minimal.frame == FuzzFrame("json", {"type": "user_message", "text": "\ud800"})
    assert "1011" in result.minimal.problem
    assert result.examples_run <= LOCAL.max_examples + 200  # search plus shrinking
    # The escape a real client sends: valid UTF-8 on the wire.
    assert result.minimal.frame.wire == '{"type":"user_message","text":"\\ud800"}'
    with pytest.raises(AssertionError, match=r"(?s)minimal failing message.*\\ud800.*1011"):
        result.assert_ok()


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", [1, 2])
async def test_deep_nesting_is_found_and_shrunk_to_the_first_failing_depth(
    seed: int, closing: list[WsClient]
) -> None:
    async with nesting_server() as server:
        result, runner = await _fuzz(server.url, seed)
        closing.append(runner.client)  # type: ignore[arg-type]

    assert result.minimal is not None, result.summary()
    wire = result.minimal.frame.wire
    assert isinstance(wire, str)
    # One level past the server's limit: the shrinker found the boundary.
    assert container_depth(json.loads(wire)) == NESTING_LIMIT + 1
    assert "1011" in result.minimal.problem
    assert f"{NESTING_LIMIT}" in str(result.minimal.frame) or "nested" in str(result.minimal.frame)


@pytest.mark.asyncio
async def test_a_decoders_recursion_error_nobody_catches_is_found_on_this_python(
    closing: list[WsClient],
) -> None:
    # How deep json.loads goes moves with the version (about 1,000 levels on 3.11,
    # 10,000 on 3.13, 65,000 from 3.14): the nesting family must reach past it here.
    # Up to 3,000 levels, it found this bug on 3.11 and 3.12 only.
    async with naive_decoder_server() as server:
        result, runner = await _fuzz(server.url, seed=1)
        closing.append(runner.client)  # type: ignore[arg-type]

    assert result.minimal is not None, result.summary()
    assert "1011" in result.minimal.problem
    wire = result.minimal.frame.wire
    assert isinstance(wire, str)
    # Too deep for json.loads, so counted: shrunk to the decoder's edge. On 3.11 the
    # decoder counts Python's frames, and Hypothesis raises the recursion limit by
    # `HYPOTHESIS_FRAMES` while it runs, for every thread: the server then decodes deeper.
    depth, limit = max(wire.count("["), wire.count("{")), decoder_depth_limit()
    assert 0.9 * limit < depth < 1.1 * limit + HYPOTHESIS_FRAMES, (depth, limit)


@pytest.mark.asyncio
async def test_the_clean_server_stays_green_for_the_whole_budget(closing: list[WsClient]) -> None:
    async with clean_server() as server:
        result, runner = await _fuzz(server.url, seed=3)
        closing.append(runner.client)  # type: ignore[arg-type]

    result.assert_ok()
    assert result.examples_run == LOCAL.max_examples
    assert result.failures == [] and result.reconnects == 0
    assert runner.client is not None and runner.client.metrics.sent >= 2 * LOCAL.max_examples


@pytest.mark.asyncio
async def test_the_minimal_message_replays_the_failure(closing: list[WsClient]) -> None:
    async with surrogate_server() as server:
        result, runner = await _fuzz(server.url, seed=1)
        closing.append(runner.client)  # type: ignore[arg-type]
        assert result.minimal is not None
        again = await runner.replay(result.minimal.frame)
        harmless = await runner.replay(FuzzFrame("json", {"type": "user_message", "text": "ok"}))

    assert again is not None and "1011" in again.problem
    assert harmless is None


@pytest.mark.asyncio
async def test_the_same_seed_replays_the_same_search(closing: list[WsClient]) -> None:
    async with surrogate_server() as server:
        first, runner_a = await _fuzz(server.url, seed=7)
        second, runner_b = await _fuzz(server.url, seed=7)
        closing += [runner_a.client, runner_b.client]  # type: ignore[list-item]

    assert first.examples_run == second.examples_run
    assert [f.frame for f in first.failures] == [f.frame for f in second.failures]


@pytest.mark.asyncio
async def test_reconnections_are_bounded(closing: list[WsClient]) -> None:
    async with surrogate_server() as server:
        result, runner = await _fuzz(server.url, seed=1, max_reconnects=1)
        closing.append(runner.client)  # type: ignore[arg-type]

    assert result.reconnects == 1
    assert result.stopped is not None and "reconnections" in result.stopped
    assert not result.ok
    with pytest.raises(AssertionError, match="stopped early"):
        result.assert_ok()


@pytest.mark.asyncio
async def test_the_budget_stops_the_run_and_says_so(closing: list[WsClient]) -> None:
    async with clean_server() as server:
        result, runner = await _fuzz(server.url, seed=1, max_examples=100_000, budget_s=0.5)
        closing.append(runner.client)  # type: ignore[arg-type]

    assert result.stopped is not None and "budget of 0.5 s" in result.stopped
    assert 0 < result.examples_run < 100_000
    assert not result.ok


@pytest.mark.asyncio
async def test_a_health_message_the_server_does_not_answer_is_refused_before_fuzzing(
    closing: list[WsClient],
) -> None:
    async with clean_server() as server:
        client = WsClient(server.url, settings=SETTINGS)
        closing.append(client)
        runner = FuzzRunner(
            client.connect,
            answer_timeout=0.5,
            connect_bound=5.0,
            health=Health({"op": "status"}, {"status": "ok"}),
        )
        with pytest.raises(
            WsConfigError, match=r"^ws_fuzz: the health message .*'op'.*health=None"
        ):
            await runner.run(
                frame_strategy(EXAMPLES), max_examples=10, seed=1, budget_s=30, max_reconnects=1
            )
    assert client.metrics.sent == 1  # the health message only: no example was sent


@pytest.mark.asyncio
async def test_without_expected_answers_the_health_reply_still_counts(
    closing: list[WsClient],
) -> None:
    async with clean_server() as server:
        client = WsClient(server.url, settings=SETTINGS)
        closing.append(client)
        runner = FuzzRunner(client.connect, answer_timeout=5, connect_bound=5, expect_answer=False)
        result = await runner.run(
            frame_strategy(EXAMPLES), max_examples=50, seed=1, budget_s=60, max_reconnects=1
        )
    result.assert_ok()
    assert result.examples_run == 50
