"""Property-based fuzzing of application messages with Hypothesis (issue 14, item 1).

What is generated (`frames`, `mutations`, `strategies`), how one exchange is judged
(`properties`), what a run reports (`result`), which budget it has (`profiles`) are
pure; `runner` drives Hypothesis' engine in a thread of its own and does the socket
work in the test's event loop. The ``ws_fuzz`` fixture is `pytest_ws_resilience.plugin.
fuzz_fixture`. Hypothesis is imported by `mutations`, `strategies` and `runner` only.
"""
