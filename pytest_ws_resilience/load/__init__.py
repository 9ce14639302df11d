"""Load: connection storms, connect/disconnect cycles, bursts during the handshake, and
async benchmarks.

The layout: `thresholds` and `error_kinds` (pure policy), `results` (`StormResult`,
pure), `rss` (memory reading), `storm` (`Storm`, the asyncio runner), `bench`
(`AsyncBenchmark`, pytest-benchmark for coroutines) and `fixtures` (``ws_storm``,
``ws_benchmark``: pytest glue).
"""

from pytest_ws_resilience.load.error_kinds import ERROR_KINDS, error_kind
from pytest_ws_resilience.load.results import StormResult, StormThresholdError
from pytest_ws_resilience.load.storm import Storm, burst_message, burst_reply
from pytest_ws_resilience.load.thresholds import METRICS, PERCENTILES, Breach

__all__ = [
    "ERROR_KINDS",
    "METRICS",
    "PERCENTILES",
    "Breach",
    "Storm",
    "StormResult",
    "StormThresholdError",
    "burst_message",
    "burst_reply",
    "error_kind",
]
