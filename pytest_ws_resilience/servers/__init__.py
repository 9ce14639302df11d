"""The servers a run talks to, and the one rule that says when one is up.

Every kind of server (the embedded reference server, the user's ASGI app in a thread or
a subprocess, a local command, a Docker container) answers one small interface
(`probe.ReadinessTarget`) and is waited for by the same rule (`readiness`, pure) through
the same wait (`probe`, real handshakes). `under_test` picks the server of a run; the
ASGI app is imported by `asgi_import`, run by `asgi_thread` or `asgi_process` and picked
by `asgi_app`; `handle`, the backends, `sharing` and `reaper` run the services a test
needs (their specs are `pytest_ws_resilience.config.services`). No pytest here: the glue
is `pytest_ws_resilience.plugin`.
"""
