"""The servers a run talks to, and the one rule that says when one is up.

Every kind of server (the embedded reference server, the user's ASGI app in a thread or
a subprocess, a local command, a Docker container) is waited for by the same readiness
rule (`readiness`, pure) through the same probe (`probe`, real handshakes). `under_test`
picks the server of a run; `spec`, `handle`, the backends, `sharing` and `reaper` run
the services a test needs. No pytest here: the glue is `pytest_ws_resilience.plugin`.
"""
