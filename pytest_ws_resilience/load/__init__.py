"""Load: connection storms, connect/disconnect cycles, bursts during the handshake, and
async benchmarks.

`thresholds` and `error_kinds` (pure policy), `results` (`StormResult`, pure), `rss`
(memory reading), `storm` (`Storm`, the asyncio runner) and `bench` (`AsyncBenchmark`,
pytest-benchmark for coroutines). The fixtures are in `pytest_ws_resilience.plugin`.
"""
