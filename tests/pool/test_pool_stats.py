"""`PoolStats` (`pytest_ws_resilience.pool.stats`), as pure data: the reuse rate and the
report form. No sockets."""

from __future__ import annotations

import json

from pytest_ws_resilience.pool.stats import EVICTION_REASONS, PoolStats


def test_pool_stats_reuse_rate_and_dict() -> None:
    assert PoolStats().reuse_rate == 0.0
    stats = PoolStats(hits=3, misses=1)
    assert stats.reuse_rate == 0.75
    data = stats.as_dict()
    assert data["reuse_rate"] == 0.75 and data["hits"] == 3
    assert set(data["evicted_by_reason"]) == set(EVICTION_REASONS)


def test_every_eviction_reason_starts_at_zero_in_each_instance() -> None:
    first, second = PoolStats(), PoolStats()
    assert first.evicted_by_reason == dict.fromkeys(EVICTION_REASONS, 0)
    first.evicted_by_reason["dead"] += 1
    assert second.evicted_by_reason["dead"] == 0


def test_the_report_form_is_json_and_a_copy() -> None:
    stats = PoolStats(hits=1, misses=1, evictions=1, evicted_by_reason={"idle": 1})
    data = stats.as_dict()
    assert json.loads(json.dumps(data)) == data
    data["evicted_by_reason"]["idle"] = 99
    assert stats.evicted_by_reason == {"idle": 1}
