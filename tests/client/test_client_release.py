"""Releasing steps together: one barrier, each step after its own delay, bounded."""

from __future__ import annotations

import asyncio

import pytest

from pytest_ws_resilience.client.release import options_at, release_together
from pytest_ws_resilience.errors import WsTimeoutError


@pytest.mark.asyncio
async def test_steps_start_in_the_order_of_their_delays_and_failures_stay_apart():
    started: list[int] = []

    def step(index: int):
        async def run() -> int:
            started.append(index)
            if index == 1:
                raise RuntimeError("step 1 broke")
            return index * 10

        return run

    outcomes = await release_together([step(i) for i in range(3)], [0.06, 0.0, 0.03], timeout=5.0)
    assert started == [1, 2, 0]
    assert outcomes[0] == 0 and outcomes[2] == 20
    assert isinstance(outcomes[1], RuntimeError)


@pytest.mark.asyncio
async def test_a_step_that_never_ends_is_cut_at_the_bound():
    async def forever() -> None:
        await asyncio.Event().wait()

    async def quick() -> str:
        return "done"

    outcomes = await release_together([forever, quick], [0.0, 0.0], timeout=0.2, what="connect")
    assert isinstance(outcomes[0], WsTimeoutError) and "connect 0" in str(outcomes[0])
    assert outcomes[1] == "done"


def test_path_params_may_be_a_factory_of_the_index():
    options = {"path": "/rooms/{room}", "path_params": lambda i: {"room": f"r{i % 2}"}}
    assert options_at(options, 3) == {"path": "/rooms/{room}", "path_params": {"room": "r1"}}
    assert options_at({"origin": "x"}, 0) == {"origin": "x"}
