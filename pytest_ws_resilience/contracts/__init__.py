"""Event contracts: which events a run must emit, in what order, how often and how fast.

Generic and pure (no I/O): a contract names events by a frame field, so it fits any
protocol; a server's own contracts live with its vocabulary (the reference server's
`AGENT_EVENTS` is in `pytest_ws_resilience.testing.vocabulary`). By job:

- `contract`: `EventContract`, the declaration, validated once;
- `checker`: `ContractChecker`, the sans-I/O engine fed one frame at a time;
- `rules`: the four rules (missing, duplicated, out of order, late), judged once per run;
- `result`: `ObservedEvent`, `ContractViolation`, `ContractResult` and its transcript.

`WsClient.expect_contract` is the asyncio glue that feeds a checker while a client waits.
"""
