"""Property-based fuzzing of application messages with Hypothesis (issue 14, item 1).

What is generated (`frames`, `mutations`, `strategies`, with `schema_compat` for
hypothesis-jsonschema), how one exchange is judged (`properties`), what a run reports
(`result`) and which budget it has (`profiles`) are free of I/O; `runner` drives
Hypothesis' engine in a thread of its own and does the socket work in the test's event
loop; `fuzzer` is what the ``ws_fuzz`` fixture (`pytest_ws_resilience.plugin.
fuzz_fixture`) hands to a test. See docs/fuzzing.md.
"""
