"""The seeded jitter schedule: same seed, same delays; round seeds replay a round."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_ws_resilience.client.jitter import (
    check_jitter,
    check_seed,
    jitter_schedule,
    new_base_seed,
    round_seed,
)


def test_the_same_seed_draws_the_same_delays_within_the_jitter():
    first = jitter_schedule(912, 20, 0.005, "connect")
    assert first == jitter_schedule(912, 20, 0.005, "connect")
    assert len(first) == 20 and all(0 <= d <= 0.005 for d in first)
    assert len(set(first)) == 20


def test_phases_and_seeds_draw_different_delays():
    base = jitter_schedule(912, 20, 0.005, "connect")
    assert jitter_schedule(912, 20, 0.005, "action") != base
    assert jitter_schedule(913, 20, 0.005, "connect") != base


def test_no_jitter_releases_everyone_at_once():
    assert jitter_schedule(1, 5, 0) == [0.0] * 5


def test_round_one_is_the_base_seed_so_a_printed_seed_replays_its_round():
    base = 912
    seeds = [round_seed(base, n) for n in range(1, 51)]
    assert seeds[0] == base
    assert len(set(seeds)) == 50
    seventh = seeds[6]
    # race(seed=seventh, rounds=1): round 1 of the replay has round 7's seed, so its jitter
    assert round_seed(seventh, 1) == seventh
    assert jitter_schedule(round_seed(seventh, 1), 20, 0.01, "action") == jitter_schedule(
        seventh, 20, 0.01, "action"
    )


def test_schedules_do_not_depend_on_the_process():
    code = (
        "from pytest_ws_resilience.client.jitter import jitter_schedule as j, round_seed as r;"
        "print(repr((j(r(912, 3), 4, 0.01, 'action'))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.strip() == repr(jitter_schedule(round_seed(912, 3), 4, 0.01, "action"))
    assert isinstance(new_base_seed(), int)


@pytest.mark.parametrize("bad", [-1, float("inf"), "5ms", True, 61])
def test_bad_jitter_is_one_line(bad):
    with pytest.raises(ValueError, match="jitter must be"):
        check_jitter(bad)


@pytest.mark.parametrize("bad", [-1, 1.5, "912", None])
def test_bad_seed_is_one_line(bad):
    with pytest.raises(ValueError, match="seed must be"):
        check_seed(bad)


def test_round_numbers_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        round_seed(1, 0)
